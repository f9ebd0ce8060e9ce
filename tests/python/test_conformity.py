"""Conformity validation on real DuckDB data: one query per table, a clean delivery passes, faults are found."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from conftest import dbt_database
from snds import config
from snds.catalog.committed import load_tables
from snds.cli import main
from snds.conformity.checks import code_lists, table_checks
from snds.conformity.validate import compile_queries, run_checks, summarise
from snds.ingest import ingest_delivery
from snds.landing import init_landing
from snds.reference_delivery import build_reference_delivery
from snds.synth import SynthSpec, synthesize

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Landed:
    database: Path
    target: Path
    reports: Path


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landed]:
    """Code lists, a clean synthetic delivery D1, and a delivery BAD with planted conformity faults."""
    root = tmp_path_factory.mktemp("conformity")
    with dbt_database(root / "warehouse.duckdb") as database:
        tables = load_tables()
        init_landing(database, tables)
        codes = build_reference_delivery(config.reference_dir(), root / "REFERENCE", tables)
        ingest_delivery(codes.directory, database, tables)
        synthesize(root / "D1", SynthSpec(200, (2019, 2020), seed=7), tables, config.reference_dir(), 0.0)
        ingest_delivery(root / "D1", database, tables)
        with duckdb.connect(str(database)) as con:
            con.execute(
                "insert into landing.deliveries select * replace ('BAD' as DELIVERY_ID) "
                "from landing.deliveries where DELIVERY_ID = 'D1'"
            )
            for table in ("T_MCO19B", "T_MCO19C"):
                con.execute(
                    "insert into landing.delivery_files select * replace ('BAD' as DELIVERY_ID) "
                    f"from landing.delivery_files where DELIVERY_ID = 'D1' and TABLE_NAME = '{table}'"
                )
                con.execute(
                    f"insert into landing.{table} select * replace ('BAD' as DELIVERY_ID) "
                    f"from landing.{table} where DELIVERY_ID = 'D1'"
                )
            # one stay delivered twice (key ETA_NUM + RSA_NUM), one person link that is not a 17-character pseudonym
            con.execute("insert into landing.T_MCO19B select * from landing.T_MCO19B where DELIVERY_ID = 'BAD' limit 1")
            con.execute(
                "update landing.T_MCO19C set NIR_ANO_17 = 'TOO_SHORT' where DELIVERY_ID = 'BAD' and rowid = "
                "(select min(rowid) from landing.T_MCO19C where DELIVERY_ID = 'BAD')"
            )
        yield Landed(database, root / "target", root / "reports")


def test_each_table_compiles_to_one_query_over_its_rows(landed: Landed) -> None:
    tables = load_tables()
    nomenclatures = code_lists(tables)
    names = ("ER_PRS_F", "ER_PHA_F", "IR_BEN_R", "T_MCO19B", "T_MCO19C", "KI_CCI_R")
    checks = {n: table_checks(tables[n], nomenclatures, 17) for n in names}
    queries = compile_queries("D1", checks, landed.target)
    assert set(queries) == set(names)
    for name, sql in queries.items():
        assert len(sqlglot.parse(sql, read="duckdb")) == 1, name
        reads = re.findall(r'"landing"\."(\w+)"', sql)
        assert reads.count(name) == 1, name  # one scan of the table; the other reads are code lists
        assert all(tables[r].product == "NOMENCLATURES" for r in reads if r != name)
    assert len(checks["ER_PRS_F"]) > 150


def test_a_clean_delivery_passes_every_error_check(landed: Landed) -> None:
    report = summarise("D1", run_checks(landed.database, "D1", load_tables(), 17, landed.target))
    assert report["status"] == "validated" and report["errors"] == 0
    assert report["checks"] > 1000 and report["check_kinds"] == 8
    assert report["tables"]["IR_BEN_R"]["counted"]["unknown_date:BEN_DCD_DTE"] > 0  # the 1600 sentinel, counted


def test_planted_faults_are_reported_under_their_check_and_block_the_delivery(landed: Landed) -> None:
    result = CliRunner().invoke(
        main, ["validate", "BAD", "--database", str(landed.database), "--report-dir", str(landed.reports)]
    )
    assert result.exit_code == 1 and "rejected" in result.output
    report = json.loads((landed.reports / "conformity.json").read_text())
    errors = {
        (table, f["check"], f["failing"])
        for table, entry in report["tables"].items()
        for f in entry["failed"]
        if f["severity"] == "error"
    }
    assert errors == {("T_MCO19B", "key_unique:ETA_NUM+RSA_NUM", 2), ("T_MCO19C", "pseudonym_format:NIR_ANO_17", 1)}
    with duckdb.connect(str(landed.database)) as con:
        status = con.execute("select DELIVERY_ID, STATUS from landing.deliveries order by 1").fetchall()
        events = con.execute("select OBJECT, OUTCOME from audit.events where ACTION = 'validate'").fetchall()
    assert ("BAD", "rejected") in status and ("BAD", "rejected") in events
