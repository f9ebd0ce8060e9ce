"""The nomenclatures reach `landing` through the ingestion path, as a delivery of their own."""

from __future__ import annotations

from pathlib import Path

import duckdb

from snds import config
from snds.catalog.committed import load_tables
from snds.ingest import ingest_delivery
from snds.reference_delivery import build_reference_delivery


def test_code_lists_load_through_ingestion(tmp_path: Path) -> None:
    tables = load_tables()
    delivery = build_reference_delivery(config.reference_dir(), tmp_path / "REFERENCE", tables)
    assert delivery.files > 500 and set(delivery.missing) == {"IR_MIR_D", "IR_PHA_R", "IR_PTF_R"}
    database = tmp_path / "warehouse.duckdb"
    report = ingest_delivery(delivery.directory, database, tables)
    totals = report.tables()
    assert sum(t["rows"] for t in totals.values()) == delivery.rows
    assert all(t["rows"] == t["loaded"] + t["quarantined"] for t in totals.values())
    with duckdb.connect(str(database)) as con:
        sexes = con.execute("select SEX_COD, SEX_LIB from landing.IR_SEX_V order by SEX_COD").fetchall()
        # CSARR labels span several lines in the dictionary: one row each in the delivery.
        csarr = con.execute("select count(*) from landing.CSARR where contains(libelle, chr(10))").fetchone()
    assert [(int(code), label) for code, label in sexes][:2] == [
        (0, "INCONNU OU PERSONNE MORALE SANS CIVILITE"),
        (1, "MASCULIN"),
    ]
    assert csarr == (0,)
