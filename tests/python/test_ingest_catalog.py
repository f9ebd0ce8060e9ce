"""Every table of the catalog ingests: one generated file per physical table, its header and one typed row."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from snds.catalog.committed import CatalogTable, load_tables
from snds.catalog.sqltypes import DATE, DOUBLE, NUMERIC, TIMESTAMP, VARCHAR, SqlType
from snds.ingest import ingest_delivery
from snds.ingest.verify import write_manifest

pytestmark = pytest.mark.slow

# One valid text per kind of type, as a CNAM file writes it.
_SAMPLE = {VARCHAR: "A", NUMERIC: "1", DOUBLE: "1.5", DATE: "01/01/2019", TIMESTAMP: "01JAN2019:00:00:00"}


def _sample(sql_type: SqlType) -> str:
    return _SAMPLE[sql_type.kind]


def test_every_catalog_table_ingests(tmp_path: Path) -> None:
    tables: dict[str, CatalogTable] = load_tables()
    directory = tmp_path / "WHOLE_CATALOG"
    directory.mkdir()
    files = []
    for table in tables.values():
        header = ";".join(c.name for c in table.columns)
        row = ";".join(_sample(c.sql_type) for c in table.columns)
        name = f"{table.name}.csv"
        (directory / name).write_text(f"{header}\n{row}\n", encoding="utf-8")
        files.append((name, table.name))
    write_manifest(directory, files)
    database = tmp_path / "warehouse.duckdb"
    report = ingest_delivery(directory, database, tables)
    counts = report.tables()
    assert set(counts) == set(tables) and len(counts) > 2400
    assert all(c == {"rows": 1, "loaded": 1, "quarantined": 0} for c in counts.values())
    with duckdb.connect(str(database)) as con:
        sizes = dict(
            con.execute(
                "select table_name, estimated_size from duckdb_tables() where schema_name = 'landing'"
            ).fetchall()
        )
    assert {name: sizes.get(name) for name in tables} == dict.fromkeys(tables, 1)
    print(f"{len(tables)} tables ingested, one row each")
