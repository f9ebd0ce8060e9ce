"""The platform's chain on PostgreSQL ends in the same research cohort as on DuckDB.

The run's DuckDB warehouse (`project_warehouse`: a synthetic delivery and the code list IR_CIP_V, validated, the
example projects built by dbt) is the reference. Its deliveries go to the embedded PostgreSQL server through the
platform's own commands with `--target postgres`: ingest, validate, promote, `access apply` (the database roles the
projects' grants name), `project build P_T2D`. The key material is copied from the DuckDB warehouse first, as a
platform moving from one engine to the other loads the same secret and keys: equal pseudonyms need equal keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from postgres_fixture import running_server, snds
from project_warehouse import Warehouse
from snds.catalog.pseudonymisation import DOMAINS, correspondence_model
from snds.cli import main
from snds.conformity.validate import read_report
from snds.engine import connect_postgres
from snds.keys.store import create_key_store

pytestmark = pytest.mark.slow

DAY = "2026-12-01"  # the access declarations' rights are read on this day
DELIVERIES = ("CODES", "D2019")  # in the order project_warehouse validated them
PROJECT_TABLES = ("cohort", "attrition", "profile", "ER_PHA_F", "T_MCO19B", "T_MCO20B", "IR_BEN_R")


@dataclass(frozen=True)
class Engines:
    duck: Warehouse  # this module's copy of the run's warehouse
    reports: dict[str, dict]  # `snds validate --target postgres --json` of each delivery
    pages: Path
    before_access: Result  # `snds project build P_T2D --target postgres` before `snds access apply`


@pytest.fixture(scope="module")
def engines(projects_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    root = tmp_path_factory.mktemp("postgres_project")
    duck = projects_warehouse.copy(root / "duckdb")
    with running_server(root / "postgres"):
        snds("landing", "init", "--target", "postgres")
        with duckdb.connect(str(duck.database), read_only=True) as source, connect_postgres() as server:
            create_key_store(server)
            keys = source.execute("select * from keys.key_material").fetchall()
            server.executemany(f"insert into keys.key_material values ({', '.join('?' * 9)})", keys)
        reports = {}
        for delivery in DELIVERIES:
            snds("ingest", str(duck.deliveries / delivery), "--target", "postgres")
            shown = ("--json", "--report-dir", str(root / "reports" / delivery))
            reports[delivery] = json.loads(snds("validate", delivery, "--target", "postgres", *shown))
        snds("promote", *DELIVERIES, "--target", "postgres")
        build = ("project", "build", "P_T2D", "--target", "postgres", "--report-dir", str(root / "pages"))
        before_access = CliRunner().invoke(main, list(build))
        snds("access", "apply", "--on", DAY)
        snds(*build)
        yield Engines(duck, reports, root / "pages", before_access)


def _rows(rows: list[tuple]) -> list[tuple]:
    """Rows comparable across engines: PostgreSQL's numeric counts as integers, sorted."""
    plain = [tuple(int(v) if isinstance(v, Decimal) and v == int(v) else v for v in row) for row in rows]
    return sorted(plain, key=lambda row: tuple((value is None, str(value)) for value in row))


def _both(engines: Engines, sql: str) -> tuple[list[tuple], list[tuple]]:
    with connect_postgres() as server:
        on_postgres = server.execute(sql).fetchall()
    return _rows(on_postgres), _rows(engines.duck.query(sql))


def test_validation_on_postgres_reports_what_duckdb_reports(engines: Engines) -> None:
    with duckdb.connect(str(engines.duck.database), read_only=True) as con:
        for delivery in DELIVERIES:
            on_duckdb = read_report(con, delivery)
            on_postgres = engines.reports[delivery]
            assert on_postgres["status"] == "validated" and on_postgres["checks"] > 0
            assert on_postgres | {"validated_at": None} == on_duckdb | {"validated_at": None}


def test_p_t2d_on_postgres_equals_duckdb_person_for_person(engines: Engines) -> None:
    cohort = "select NUM_ENQ, index_date, end_of_followup from project_p_t2d.cohort"
    on_postgres, persons = _both(engines, cohort)
    assert len(persons) >= 20, "too small a cohort to prove anything"
    assert on_postgres == persons
    for table in PROJECT_TABLES[1:]:
        on_postgres, on_duckdb = _both(engines, f"select * from project_p_t2d.{table}")
        assert on_postgres == on_duckdb and on_duckdb, table
    page = json.loads((engines.pages / "P_T2D.project.json").read_text())  # read from the server
    assert page["attrition"][-1]["persons"] in (None, len(persons))  # None: suppressed as a small count


def test_the_platform_pseudonyms_on_postgres_equal_duckdb(engines: Engines) -> None:
    for domain in DOMAINS:
        on_postgres, on_duckdb = _both(engines, f"select * from keys.{correspondence_model(domain)}")
        assert on_postgres == on_duckdb and on_duckdb, domain
    applied = "select distinct MODEL_NAME, DELIVERY_ID from landing.applied_deliveries"
    on_postgres, on_duckdb = _both(engines, applied)
    assert {delivery for _, delivery in on_postgres} == set(DELIVERIES)
    assert set(on_postgres) >= set(on_duckdb)  # the promotion builds every descendant of what they delivered


def test_the_built_cohort_is_readable_by_its_researcher_only(engines: Engines) -> None:
    with connect_postgres("amartin") as researcher:  # P_T2D's researcher in access/
        assert researcher.execute("select count(*) from project_p_t2d.cohort").fetchone()[0] >= 20
        for table in ("snds.ER_PRS_F", "landing.ER_PRS_F", "keys.person_pseudonyms"):
            with pytest.raises(Exception, match="permission denied"):
                researcher.execute(f"select count(*) from {table}")
    with connect_postgres("bdupont") as other, pytest.raises(Exception, match="permission denied"):
        other.execute("select count(*) from project_p_t2d.cohort")  # P_MI's data manager


def test_a_project_is_not_built_before_its_readers_role_exists(engines: Engines) -> None:
    refused = engines.before_access
    assert refused.exit_code == 1 and "run `snds access apply` first; nothing is built" in refused.output
