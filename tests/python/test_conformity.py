"""Conformity validation on real DuckDB data: one query per table, a clean delivery passes, every planted fault is
reported under its check with its count, a monthly volume drop is seen, a rejected delivery is not promoted."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from snds import config
from snds.catalog.committed import load_tables
from snds.cli import main
from snds.conformity.checks import Rules, month_column, project_rules, table_checks
from snds.conformity.validate import compile_queries, validate_delivery
from snds.dbt import InlineCompiler, dbt_database, run_dbt
from snds.ingest import ingest_delivery
from snds.keys import store
from snds.keys.material import derive_platform_key, pseudonym
from snds.landing import init_landing
from snds.reference_delivery import build_reference_delivery
from snds.synth import SynthSpec, synthesize, truth_path

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Landed:
    database: Path
    target: Path
    root: Path
    rules: Rules
    secret: bytes

    def validate(self, delivery: str) -> tuple[int, dict]:
        """`snds validate` as a data manager runs it: exit code and the JSON report."""
        reports = self.root / "reports" / delivery
        result = CliRunner().invoke(
            main, ["validate", delivery, "--database", str(self.database), "--report-dir", str(reports)]
        )
        return result.exit_code, json.loads((reports / "conformity.json").read_text())


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Landed]:
    """Code lists, a clean synthetic delivery D1 (validated), and FAULTY: the same persons with planted faults."""
    root = tmp_path_factory.mktemp("conformity")
    with dbt_database(root / "warehouse.duckdb") as database:
        tables = load_tables()
        rules = project_rules(tables)
        init_landing(database, tables)
        codes = build_reference_delivery(config.reference_dir(), root / "REFERENCE", tables)
        ingest_delivery(codes.directory, database, tables)
        validate_delivery(database, codes.directory.name, rules, root / "target")  # the code lists become usable
        secret = secrets.token_bytes(32)
        with duckdb.connect(str(database)) as con:
            store.init_platform(con, secret)
        for name, faults in (("D1", False), ("FAULTY", True)):
            spec = SynthSpec(200, (2019, 2020), seed=7)
            synthesize(root / name, spec, tables, config.reference_dir(), 0.002, conformity_faults=faults)
            ingest_delivery(root / name, database, tables)
        yield Landed(database, root / "target", root, rules, secret)


def test_each_table_compiles_to_one_query_over_its_rows(landed: Landed) -> None:
    rules = landed.rules
    names = ("ER_PRS_F", "ER_PHA_F", "IR_BEN_R", "T_MCO19B", "T_MCO19C", "T_MCO19D", "KI_CCI_R")
    checks = {n: table_checks(rules.tables[n], rules) for n in names}
    months = {n: month_column(rules.tables[n], rules) for n in names}
    queries = compile_queries(InlineCompiler(landed.target, landed.database), "D1", checks, months)
    assert set(queries) == set(names)
    for name, sql in queries.items():
        assert len(sqlglot.parse(sql, read="duckdb")) == 1, name
        reads = re.findall(r'"landing"\."(\w+)"', sql)
        assert reads.count(name) == 1, name  # one scan of the table ...
        parents = {c.arguments["parent"] for c in checks[name] if c.kind == "foreign_key"}
        others = [r for r in reads if r != name and r != "deliveries" and r not in parents]
        assert all(rules.tables[r].product == "NOMENCLATURES" for r in others), others  # ... plus key sets
    assert len(checks["ER_PRS_F"]) > 150
    assert {c.kind for c in checks["T_MCO19C"]} >= {"foreign_key", "date_in_year", "cleaning_flag", "key_unique"}


def test_a_clean_delivery_passes_every_error_check(landed: Landed) -> None:
    exit_code, report = landed.validate("D1")
    assert exit_code == 0 and report["status"] == "validated" and report["errors"] == 0, report["errors"]
    assert report["checks"] > 1000 and report["check_kinds"] >= 13
    assert set(report["categories"]) == {"completeness", "conformance", "relational", "plausibility", "cleaning"}
    assert report["tables"]["IR_BEN_R"]["counted"]["unknown_date:BEN_DCD_DTE"] > 0  # the 1600 sentinel, counted
    truth = json.loads(truth_path(landed.root / "D1").read_text())["conformity_faults"]
    assert truth == [
        {"kind": "information_only_line", "table": "ER_PRS_F", "check": "cleaning_flag:information_only_line:DPN_QLF",
         "count": report["tables"]["ER_PRS_F"]["flags"]["information_only_line:DPN_QLF"]},
    ]  # fmt: skip
    assert truth[0]["count"] > 0
    html = (landed.root / "reports" / "D1" / "conformity.html").read_text()
    assert "validated" in html and "T_MCO19C" in html


def _reported(report: dict) -> dict[tuple[str, str], int]:
    """Every non-zero count of the report, by (table, check), whatever its outcome."""
    counts = {}
    for table, entry in report["tables"].items():
        counts |= {(table, f["check"]): f["failing"] for f in entry["failed"]}
        counts |= {(table, check): n for check, n in (entry["counted"] | entry["tolerated"]).items()}
        counts |= {(table, f"cleaning_flag:{flag}"): n for flag, n in entry["flags"].items()}
    return {key: n for key, n in counts.items() if n}


def test_every_planted_fault_is_reported_under_its_check_and_table_with_its_count(landed: Landed) -> None:
    exit_code, report = landed.validate("FAULTY")
    assert exit_code == 1 and report["status"] == "rejected"
    planted = json.loads(truth_path(landed.root / "FAULTY").read_text())["conformity_faults"]
    assert len(planted) >= 12 and len({p["check"].split(":")[0] for p in planted}) >= 9
    reported = _reported(report)
    for fault in planted:
        assert reported.get((fault["table"], fault["check"])) == fault["count"], fault
    errors = {(t, f["check"]) for t, e in report["tables"].items() for f in e["failed"] if f["severity"] == "error"}
    assert errors and errors <= {(p["table"], p["check"]) for p in planted}


def test_examples_show_platform_pseudonyms_never_delivered_identifiers(landed: Landed) -> None:
    report = json.loads((landed.root / "reports" / "FAULTY" / "conformity.json").read_text())
    short = next(f for f in report["tables"]["KI_CCI_R"]["failed"] if f["check"] == "pseudonym_format:BEN_NIR_ANO")
    column = short["examples"]["columns"].index("BEN_NIR_ANO")
    key = derive_platform_key(landed.secret, "person")
    assert [row[column] for row in short["examples"]["rows"]] == [pseudonym(key, "SHORT", 17)]
    with duckdb.connect(str(landed.database), read_only=True) as con:
        delivered = {r[0] for r in con.execute("select BEN_NIR_PSA from landing.IR_BEN_R").fetchall()}
    for name in ("conformity.json", "conformity.html"):
        text = (landed.root / "reports" / "FAULTY" / name).read_text()
        assert "SHORT" not in text.replace("pseudonym_format", "")
        assert not [nir for nir in delivered if nir in text], name
    assert "examples" in (landed.root / "reports" / "FAULTY" / "conformity.html").read_text()


def test_a_rejected_delivery_is_recorded_and_not_promoted(landed: Landed) -> None:
    with duckdb.connect(str(landed.database), read_only=True) as con:
        status = dict(con.execute("select DELIVERY_ID, STATUS from landing.deliveries").fetchall())
        events = con.execute("select OBJECT, OUTCOME from audit.events where ACTION = 'validate'").fetchall()
    assert status["FAULTY"] == "rejected" and status["D1"] == "validated"
    assert ("FAULTY", "rejected") in events
    html = (landed.root / "reports" / "FAULTY" / "conformity.html").read_text()
    assert "not promoted into the base" in html and "key_unique:ETA_NUM+RSA_NUM" in html
    # the next build: staging reads D1 only (FAULTY's stays, with their duplicate, stay in landing)
    selection = "promoted_deliveries pseudonymisation_keys person_pseudonyms professional_pseudonyms T_MCO19B"
    with dbt_database(landed.database):
        run_dbt("build", "--select", selection, target_path=landed.target)
    with duckdb.connect(str(landed.database)) as con:  # dbt's in-process connection is read-write
        promoted = con.execute("select DELIVERY_ID from landing.promoted_deliveries order by 1").fetchall()
        landed_rows = dict(
            con.execute("select DELIVERY_ID, count(*) from landing.T_MCO19B group by DELIVERY_ID").fetchall()
        )
        base_rows = con.execute("select count(*) from snds.T_MCO19B").fetchone()[0]
    assert ("FAULTY",) not in promoted and ("D1",) in promoted
    assert base_rows == landed_rows["D1"] < landed_rows["FAULTY"]


def test_a_month_whose_volume_collapses_is_reported(landed: Landed) -> None:
    """THIN: D1's claims again, but one month almost empty; compared with D1 (the previous validated delivery)."""
    with duckdb.connect(str(landed.database)) as con:
        con.execute(
            "insert into landing.deliveries select * replace ('THIN' as DELIVERY_ID, now() as LOADED_AT, "
            "'loaded' as STATUS) from landing.deliveries where DELIVERY_ID = 'D1'"
        )
        con.execute(
            "insert into landing.delivery_files select * replace ('THIN' as DELIVERY_ID) "
            "from landing.delivery_files where DELIVERY_ID = 'D1' and TABLE_NAME = 'ER_PRS_F'"
        )
        con.execute(
            "insert into landing.ER_PRS_F select * replace ('THIN' as DELIVERY_ID) from landing.ER_PRS_F "
            "where DELIVERY_ID = 'D1' and (FLX_DIS_DTD <> date '2019-06-01' or DCT_ORD_NUM % 10 = 0)"
        )
    report = validate_delivery(landed.database, "THIN", landed.rules, landed.target)
    volume = next(f for f in report["tables"]["ER_PRS_F"]["failed"] if f["kind"] == "volume_month")
    assert volume["severity"] == "warn" and report["status"] == "validated"  # a warning: the data manager decides
    moved = {row[0]: row[1] for row in volume["examples"]["rows"]}
    assert moved["2019-06-01"] == report["tables"]["ER_PRS_F"]["volumes"]["2019-06-01"] < 20
    assert volume["failing"] == len(moved) < 4  # the collapsed month, and at most the partial edge months
