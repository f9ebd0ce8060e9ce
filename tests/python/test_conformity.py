"""Conformity validation on real DuckDB data: one query per table, a clean delivery passes, every planted fault is
reported under its check with its count, a monthly volume drop is seen, a rejected delivery is not promoted, a
fully quarantined delivery is rejected with its reasons, every result is in the warehouse."""

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
from dbt.contracts.graph.manifest import Manifest

from snds import config
from snds.catalog.committed import load_tables
from snds.cli import main
from snds.conformity import validate as validate_module
from snds.conformity.checks import Rules, month_column, project_rules, table_checks
from snds.conformity.validate import compile_queries, conformity_compiler, validate_delivery
from snds.dbt import BUILD_OPTIONS, DbtError, InlineCompiler, dbt_database, run_dbt
from snds.ingest import ingest_delivery
from snds.ingest.verify import write_manifest
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
    manifest: Manifest  # the session's parse of the project

    def validate(self, delivery: str) -> tuple[int, dict]:
        """`snds validate` as a data manager runs it: exit code and the JSON report. The command compiles the checks
        with the session's parse of the project rather than its own (a full parse: 45 s here)."""
        reports = self.root / "reports" / delivery
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(validate_module, "InlineCompiler", self._compiler)
            result = CliRunner().invoke(
                main, ["validate", delivery, "--database", str(self.database), "--report-dir", str(reports), "--json"]
            )
        report = json.loads((reports / "conformity.json").read_text())
        assert json.loads(result.stdout) == report  # --json prints the report, validated or rejected
        return result.exit_code, report

    def _compiler(
        self,
        target_path: Path,
        database: Path,
        dbt_target: str | None = None,
        manifest: Manifest | None = None,
        sources_only: bool = False,
    ) -> InlineCompiler:
        assert dbt_target is None  # the DuckDB file: the session's parse is of the default target
        return InlineCompiler(target_path, database, manifest=manifest or self.manifest, sources_only=sources_only)

    def hand_made(self, name: str, lines: dict[str, list[dict[str, str] | str]]) -> str:
        """A tiny delivery written by hand (per table: lines as {column: value} or raw text), ingested."""
        directory = self.root / name
        directory.mkdir()
        for table, rows in lines.items():
            columns = [c.name for c in self.rules.tables[table].columns]
            text = [row if isinstance(row, str) else ";".join(row.get(c, "") for c in columns) for row in rows]
            (directory / f"{table}.csv").write_text("\n".join([";".join(columns), *text]) + "\n", encoding="utf-8")
        write_manifest(directory, [(f"{table}.csv", table) for table in lines])
        ingest_delivery(directory, self.database, self.rules.tables)
        return name


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Manifest) -> Iterator[Landed]:
    """Code lists, a clean synthetic delivery D1 (validated), and FAULTY: the same persons with planted faults."""
    root = tmp_path_factory.mktemp("conformity")
    with dbt_database(root / "warehouse.duckdb") as database:
        tables = load_tables()
        rules = project_rules(tables)
        init_landing(database, tables)
        codes = build_reference_delivery(config.reference_dir(), root / "REFERENCE", tables)
        ingest_delivery(codes.directory, database, tables)
        validate_delivery(database, codes.directory.name, rules, root / "target", manifest=dbt_manifest)  # code lists
        secret = secrets.token_bytes(32)
        with duckdb.connect(str(database)) as con:
            store.init_platform(con, secret)
        for name, faults in (("D1", False), ("FAULTY", True)):
            spec = SynthSpec(200, (2019, 2020), seed=7)
            synthesize(root / name, spec, tables, config.reference_dir(), 0.002, conformity_faults=faults)
            ingest_delivery(root / name, database, tables)
        yield Landed(database, root / "target", root, rules, secret, dbt_manifest)


@pytest.fixture(scope="module")
def compiler(landed: Landed) -> InlineCompiler:
    """The project parsed once for the tests that compile snippets."""
    return conformity_compiler(landed.target, landed.database, manifest=landed.manifest)


def test_each_table_compiles_to_one_query_over_its_rows(landed: Landed, compiler: InlineCompiler) -> None:
    rules = landed.rules
    names = ("ER_PRS_F", "ER_PHA_F", "IR_BEN_R", "T_MCO19B", "T_MCO19C", "T_MCO19D", "KI_CCI_R")
    checks = {n: table_checks(rules.tables[n], rules) for n in names}
    months = {n: month_column(rules.tables[n], rules) for n in names}
    queries = compile_queries(compiler, "D1", checks, months)
    assert set(queries) == set(names)
    for name, sql in queries.items():
        assert len(sqlglot.parse(sql, read="duckdb")) == 1, name
        reads = re.findall(r"\blanding\.(\w+)", sql)  # sources are unquoted on every engine
        assert reads.count(name) == 1, name  # one scan of the table ...
        parents = {c.arguments["parent"] for c in checks[name] if c.kind == "foreign_key"}
        others = [r for r in reads if r != name and r != "deliveries" and r not in parents]
        assert all(rules.tables[r].product == "NOMENCLATURES" for r in others), others  # ... plus key sets
    assert len(checks["ER_PRS_F"]) > 150
    assert {c.kind for c in checks["T_MCO19C"]} >= {"foreign_key", "date_in_year", "cleaning_flag", "key_unique"}
    # each count is named (read by name, not by position)
    assert "as rows_checked" in queries["ER_PRS_F"] and not re.search(r"\bas c\d+\b", queries["ER_PRS_F"])


def test_the_delivery_identifier_reaches_sql_only_as_a_checked_literal(compiler: InlineCompiler) -> None:
    assert compiler.compile("{{ conformity_delivery('D1') }}").strip() == "'D1'"
    for forged in ("D1' or '1' = '1", "D1\n-- snds:conformity:query x\nselect 1", "../D1"):
        with pytest.raises(DbtError, match="not a checked identifier"):
            compiler.compile(f"{{{{ conformity_delivery({json.dumps(forged)}) }}}}")


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
    # FAULTY holds the flow months of D1: once D1 is validated, its DCIR tables break their delivery policy too
    policy = {(t, c) for t, c in errors if c == "delivery_policy:append"}
    assert {t for t, _ in policy} <= {"ER_PRS_F", "ER_PHA_F", "ER_BIO_F", "ER_CAM_F", "ER_ETE_F"}
    assert errors - policy and errors - policy <= {(p["table"], p["check"]) for p in planted}


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
    selection = "+pending_deliveries pseudonymisation_keys person_pseudonyms professional_pseudonyms T_MCO19B"
    with dbt_database(landed.database):
        run_dbt("build", *BUILD_OPTIONS, "--select", selection, target_path=landed.target, manifest=landed.manifest)
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
    report = validate_delivery(landed.database, "THIN", landed.rules, landed.target, manifest=landed.manifest)
    volume = next(f for f in report["tables"]["ER_PRS_F"]["failed"] if f["kind"] == "volume_month")
    assert volume["severity"] == "warn" and report["status"] == "validated"  # a warning: the data manager decides
    moved = {row[0]: int(row[1]) for row in volume["examples"]["rows"]}  # examples are shown as text
    assert moved["2019-06-01"] == report["tables"]["ER_PRS_F"]["volumes"]["2019-06-01"] < 20
    assert volume["failing"] == len(moved) < 4  # the collapsed month, and at most the partial edge months


def _field_count_lines(count: int) -> list[str]:
    return ["910000001;0000000001"] * count  # two fields where the table has dozens: the whole line is bad


@pytest.fixture(scope="module")
def all_bad(landed: Landed) -> tuple[int, dict]:
    """ALLBAD: every data line of every file has the wrong field count; validated once (exit code, report)."""
    return landed.validate(
        landed.hand_made("ALLBAD", {"T_MCO21B": _field_count_lines(3), "T_MCO21C": _field_count_lines(2)})
    )


def test_a_fully_quarantined_delivery_is_rejected_and_its_tables_reported_with_their_reasons(
    landed: Landed, all_bad: tuple[int, dict]
) -> None:
    exit_code, report = all_bad
    assert exit_code == 1 and report["status"] == "rejected"
    assert report["quarantine"] == {"rows": 5, "loaded": 0, "quarantined": 5}
    assert [(c["check"], c["outcome"]) for c in report["delivery_checks"]] == [("quarantined_rows:delivery", "error")]
    for table, lines in (("T_MCO21B", 3), ("T_MCO21C", 2)):
        entry = report["tables"][table]
        counts = (entry["delivered"], entry["loaded"], entry["quarantined"], entry["outcome"])
        assert counts == (lines, 0, lines, "error")
        failed = {f["check"]: (f["outcome"], f["failing"], f["checked"]) for f in entry["failed"]}
        assert failed == {"quarantined_rows": ("error", lines, lines), "rows_loaded": ("error", 1, 1)}
        [group] = entry["quarantine"]
        assert (group["file"], group["column"], group["lines"]) == (f"{table}.csv", None, lines)
        assert group["first_lines"] == list(range(2, 2 + lines)) and group["reason"] and group["reason_code"]
    html = (landed.root / "reports" / "ALLBAD" / "conformity.html").read_text()
    assert "T_MCO21C.csv" in html and "whole line" in html and "no row of this table was loaded" in html


def test_a_link_to_a_fully_quarantined_parent_is_checked_not_skipped_as_never_delivered(landed: Landed) -> None:
    child = {"ETA_NUM": "910000001", "RSA_NUM": "0000000001", "NIR_ANO_17": "xxxxxxxxxxxxxxxxx"}
    delivery = landed.hand_made("ORPHANS", {"T_MCO22B": _field_count_lines(2), "T_MCO22C": [child]})
    exit_code, report = landed.validate(delivery)
    assert exit_code == 1
    stays = report["tables"]["T_MCO22C"]
    link = "foreign_key:ETA_NUM+RSA_NUM->T_MCO22B"
    assert link not in {s["check"] for s in stays["skipped"]}
    assert {f["check"]: (f["outcome"], f["failing"]) for f in stays["failed"]}[link] == ("error", 1)
    assert report["tables"]["T_MCO22B"]["outcome"] == "error"  # fully quarantined: in the report


def test_every_result_is_in_the_warehouse_with_named_columns(all_bad: tuple[int, dict], landed: Landed) -> None:
    _, report = all_bad
    with duckdb.connect(str(landed.database)) as con:  # read-write: dbt's in-process connection may be open
        cursor = con.execute(
            """select TABLE_NAME, CHECK_NAME, CHECK_KIND, CATEGORY, ROWS_CHECKED, FAILING, SEVERITY, OUTCOME
            from landing.conformity_results
            where DELIVERY_ID = 'ALLBAD' and OUTCOME <> 'skipped'
              and VALIDATED_AT = (select max(VALIDATED_AT) from landing.validations where DELIVERY_ID = 'ALLBAD')"""
        )
        names = [d[0] for d in cursor.description]
        results = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        tables = con.execute(
            "select TABLE_NAME, ROW_COUNT, LOADED_COUNT, QUARANTINED_COUNT, OUTCOME from landing.conformity_tables "
            "where DELIVERY_ID = 'ALLBAD' order by TABLE_NAME"
        ).fetchall()
    assert len(results) == report["checks"]
    loaded = {r["TABLE_NAME"]: (r["OUTCOME"], r["FAILING"]) for r in results if r["CHECK_KIND"] == "rows_loaded"}
    assert loaded == {"T_MCO21B": ("error", 1), "T_MCO21C": ("error", 1)}
    delivery = [r for r in results if r["TABLE_NAME"] is None]
    assert [(r["CHECK_NAME"], r["CATEGORY"], r["ROWS_CHECKED"], r["FAILING"], r["SEVERITY"]) for r in delivery] == [
        ("quarantined_rows:delivery", "conformance", 5, 5, "error")
    ]
    assert tables == [("T_MCO21B", 3, 0, 3, "error"), ("T_MCO21C", 2, 0, 2, "error")]
