"""The platform on a real multi-user server: the embedded PostgreSQL 16 (`pgserver`), started by this module.

Keys are loaded through `snds keys --target postgres`, and the keyed hash, compiled by dbt for the `postgres`
target (the macro project: no model is needed), runs on the server over the key store. Deliveries are ingested
into the server as into DuckDB. Access rights come from declarations (`snds access plan|apply|review`) and are
proved by connecting as each declared person.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from hmac_vectors import VECTORS, hmac_vector_sql
from postgres_fixture import running_server, snds
from snds import config, postgres_server
from snds.access.declarations import ACCESS_DIR
from snds.catalog.committed import load_tables
from snds.cli import main
from snds.dbt import InlineCompiler
from snds.engine import EngineError, PostgresConnection, connect_postgres
from snds.ingest import IngestReport, ingest_delivery
from snds.keys.material import derive_platform_key, hmac_hex, pseudonym, read_secret, write_new_secret
from snds.synth import SynthSpec, synthesize

pytestmark = pytest.mark.slow

DAY = "2026-12-01"
PROJECT_TABLES = {"project_p_t2d": "cohort", "project_p_mi": "cohort"}  # stand-ins for the extracts
PLATFORM_TABLES = ("snds.ER_PRS_F", "landing.ER_PRS_F", "keys.key_material", "audit.events")


@dataclass(frozen=True)
class Server:
    running: postgres_server.RunningServer
    target: Path
    secret: Path
    declarations: Path

    def cli(self, *args: str) -> str:
        return snds(*args)

    def reads(self, login: str) -> set[str]:
        """The tables `login` can select from, connected as `login` (empty when the login is refused)."""
        try:
            con = connect_postgres(login)
        except EngineError as refused:
            assert "not permitted to log in" in str(refused)
            return set()
        readable = set()
        try:
            for table in (*(f"{s}.{t}" for s, t in PROJECT_TABLES.items()), *PLATFORM_TABLES):
                try:
                    con.execute(f"select count(*) from {table}").fetchone()
                    readable.add(table)
                except Exception as error:
                    assert "permission denied" in str(error)
        finally:
            con.close()
        return readable


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("postgres")
    with running_server(root) as running:
        here = Server(running, root / "target", root / "platform.secret", root / "access")
        write_new_secret(here.secret)
        yield here


@pytest.fixture(scope="module")
def keyed(server: Server) -> Server:
    server.cli("keys", "init", "--target", "postgres", "--from-file", str(server.secret))
    for project in ("P_T2D", "P_MI"):
        server.cli("keys", "init", "--target", "postgres", "--project", project)
    return server


def test_the_server_is_started_once_and_reached_by_its_variables(server: Server) -> None:
    again = postgres_server.start(server.running.data_dir)
    assert again == server.running == postgres_server.status(server.running.data_dir)
    with connect_postgres() as con:
        version = con.execute("select current_setting('server_version_num')::int").fetchone()
    assert version and version[0] >= 160000
    status = json.loads(server.cli("postgres", "status", "--data-dir", str(server.running.data_dir), "--json"))
    assert status["environment"][postgres_server.HOST_VARIABLE] == str(server.running.socket_dir)


def test_hmac_and_pseudonyms_on_postgres_equal_python(keyed: Server) -> None:
    """Python's values are DuckDB's (test_pseudonymisation.py): the three engines agree on every test vector."""
    key = derive_platform_key(read_secret(keyed.secret, None), "person")
    compiler = InlineCompiler(keyed.target, dbt_target="postgres", macros_only=True)
    with connect_postgres() as con:
        rows = sorted(con.execute(compiler.compile(hmac_vector_sql("", "keys.key_material"))).fetchall())
    assert rows == [(i, hmac_hex(key, v), pseudonym(key, v, 17)) for i, v in enumerate(VECTORS)]


def test_the_key_store_on_postgres_is_audited_and_refuses_a_second_key(keyed: Server) -> None:
    result = CliRunner().invoke(main, ["keys", "init", "--target", "postgres", "--project", "P_T2D"])
    assert result.exit_code == 1 and "already has a key" in result.output
    listed = json.loads(keyed.cli("keys", "list", "--target", "postgres", "--json"))
    assert {(k["scope"], k["domain"]) for k in listed} == {
        ("platform", "person"), ("platform", "professional"), ("project:P_T2D", "person"), ("project:P_MI", "person")
    }  # fmt: skip
    with connect_postgres() as con:
        kinds = con.execute(
            "select data_type from information_schema.columns where table_name = 'key_material' "
            "and column_name = 'ipad'"
        ).fetchone()
        events = con.execute("select ACTION, OUTCOME from audit.events where ACTION like 'keys.%' order by EVENT_AT")
        trail = events.fetchall()
    assert kinds == ("bytea",)
    assert trail == [("keys.init", "done")] * 3 + [("keys.init", "refused")]


@pytest.fixture(scope="module")
def granted(keyed: Server) -> dict:
    """The demo's declarations applied on DAY, over stand-ins of a project's extracts and of the platform's tables."""
    shutil.copytree(ACCESS_DIR, keyed.declarations, ignore=shutil.ignore_patterns("*.json"))
    with connect_postgres() as con:
        for table in (*(f"{s}.{t}" for s, t in PROJECT_TABLES.items()), *PLATFORM_TABLES[:2]):
            con.execute(f"create schema if not exists {table.split('.')[0]}")
            con.execute(f"create table {table} (NUM_ENQ varchar(17))")
    return json.loads(keyed.cli("access", "apply", "--declarations", str(keyed.declarations), "--on", DAY, "--json"))


def _has(con: PostgresConnection, check: str) -> bool:
    row = con.execute(f"select {check}").fetchone()
    return bool(row and row[0])


def test_each_person_reads_what_their_rights_give_and_nothing_else(keyed: Server, granted: dict) -> None:
    assert len(granted["applied"]) > 40
    assert keyed.reads("amartin") == {"project_p_t2d.cohort"}  # researcher of P_T2D
    assert keyed.reads("bdupont") == {"project_p_mi.cohort"}  # data manager of P_MI
    assert keyed.reads("cleroy") == {"snds.ER_PRS_F", "landing.ER_PRS_F", "audit.events"}  # platform operator
    assert keyed.reads("dmoreau") == set()  # right ended on 2026-06-30: the login is refused
    with connect_postgres() as con:
        assert _has(con, "has_table_privilege('snds_pseudonymisation', 'keys.key_material', 'select')")
        roles = [r for (r,) in con.execute("select rolname from pg_roles where rolname like 'snds%'").fetchall()]
        readers = [r for r in roles if _has(con, f"has_table_privilege('{r}', 'keys.key_material', 'select')")]
        assert readers == ["snds_pseudonymisation"]
        assert _has(con, "has_schema_privilege('bdupont', 'project_p_mi', 'create')")
        assert not _has(con, "has_schema_privilege('amartin', 'project_p_t2d', 'create')")


def test_a_table_built_after_apply_is_readable_by_its_project_only(keyed: Server, granted: dict) -> None:
    with connect_postgres() as con:
        con.execute("create table project_p_t2d.built_later (NUM_ENQ varchar(17))")
    with connect_postgres("amartin") as con:
        assert con.execute("select count(*) from project_p_t2d.built_later").fetchone() == (0,)
    with connect_postgres("bdupont") as con, pytest.raises(Exception, match="permission denied"):
        con.execute("select count(*) from project_p_t2d.built_later")


def test_a_second_plan_is_empty_and_every_change_was_audited(keyed: Server, granted: dict) -> None:
    planned = json.loads(keyed.cli("access", "plan", "--declarations", str(keyed.declarations), "--on", DAY, "--json"))
    assert planned["changes"] == []
    with connect_postgres() as con:
        audited = con.execute(
            "select ACTION, OBJECT from audit.events where ACTION like 'access.%' and OUTCOME = 'done' "
            "order by EVENT_AT"
        ).fetchall()
    assert [f"{action.removeprefix('access.')} {what}" for action, what in audited] == granted["applied"]


def test_a_data_managers_own_table_is_granted_to_the_project_and_keeps_its_owners_rights(
    keyed: Server, granted: dict
) -> None:
    with connect_postgres("bdupont") as con:
        con.execute("create table project_p_mi.my_subset (NUM_ENQ varchar(17))")
    args = ("--declarations", str(keyed.declarations), "--on", DAY, "--json")
    assert json.loads(keyed.cli("access", "plan", *args))["changes"] == [
        "grant_reads project_p_mi snds_p_mi_reader postgres"  # its readers too; never a revocation of the owner's
    ]
    keyed.cli("access", "apply", *args)
    assert json.loads(keyed.cli("access", "plan", *args))["changes"] == []
    with connect_postgres() as con:
        assert _has(con, "has_table_privilege('snds_p_mi_reader', 'project_p_mi.my_subset', 'select')")
        assert _has(con, "has_table_privilege('bdupont', 'project_p_mi.my_subset', 'select, insert')")


def test_an_ended_or_changed_right_is_gone_after_apply(keyed: Server, granted: dict) -> None:
    operator = keyed.declarations / "cleroy.yml"
    operator.write_text(operator.read_text().replace("until: 2026-12-31", "until: 2026-11-30"))
    manager = keyed.declarations / "bdupont.yml"
    manager.write_text(manager.read_text().replace("role: data_manager", "role: researcher"))
    args = ("--declarations", str(keyed.declarations), "--on", DAY, "--json")
    planned = json.loads(keyed.cli("access", "plan", *args))["changes"]
    assert sorted(planned) == [
        "deny_login cleroy",
        "grant_role snds_p_mi_reader bdupont",
        "revoke_role snds_p_mi_manager bdupont",
        "revoke_role snds_platform_operator cleroy",
    ]
    assert json.loads(keyed.cli("access", "apply", *args))["applied"] == planned
    assert keyed.reads("cleroy") == set()
    assert keyed.reads("bdupont") == {"project_p_mi.cohort"}
    with connect_postgres() as con:
        assert not _has(con, "has_schema_privilege('bdupont', 'project_p_mi', 'create')")
        revoked = con.execute(
            "select count(*) from audit.events where ACTION = 'access.revoke_role' and OBJECT = ?",
            ["snds_platform_operator cleroy"],
        ).fetchone()
    assert revoked == (1,)


def test_a_right_granted_by_hand_is_revoked_by_the_next_apply(keyed: Server, granted: dict) -> None:
    with connect_postgres() as con:
        con.execute("grant usage on schema keys to snds_p_t2d_reader")
        con.execute("grant select on keys.key_material to snds_p_t2d_reader")
    assert "keys.key_material" in keyed.reads("amartin")
    args = ("--declarations", str(keyed.declarations), "--on", DAY, "--json")
    planned = json.loads(keyed.cli("access", "plan", *args))["changes"]
    assert planned == [
        "revoke_reads keys snds_p_t2d_reader postgres",
        "revoke_schema usage keys snds_p_t2d_reader",
    ]
    keyed.cli("access", "apply", *args)
    assert keyed.reads("amartin") == {"project_p_t2d.cohort"}


def test_the_review_shows_who_reads_what_since_and_until_when(keyed: Server, granted: dict, tmp_path: Path) -> None:
    args = ("--declarations", str(keyed.declarations), "--on", DAY, "--out", str(tmp_path), "--json")
    written = json.loads(keyed.cli("access", "review", *args))
    report = json.loads(Path(written["json"]).read_text())
    people = {p["login"]: p for p in report["people"]}
    assert written["pending"] == 0 and report["pending_changes"] == []
    assert people["amartin"]["reads"] == ["project_p_t2d"] and people["amartin"]["can_log_in"]
    assert people["amartin"]["rights"][0] | {"since": None} == {
        "role": "researcher", "project": "P_T2D", "from": "2026-01-15", "until": "2027-01-14", "status": "active",
        "database_role": "snds_p_t2d_reader", "held": True, "since": None,
    }  # fmt: skip
    assert people["amartin"]["rights"][0]["since"] == date.today().isoformat()  # the day the audit saw the grant
    assert people["dmoreau"]["reads"] == [] and people["dmoreau"]["rights"][0]["status"] == "ended"
    assert people["cleroy"]["can_log_in"] is False
    actions = {login: [a["action"] for a in person["activity"]] for login, person in people.items()}
    assert report["logins"].startswith("logins from the server's log")
    assert "login" in actions["amartin"] and "refused login" not in actions["amartin"]
    assert "refused login" in actions["dmoreau"] and "login" not in actions["dmoreau"]  # its right had ended
    assert actions["cleroy"].index("login") < actions["cleroy"].index("refused login")  # before, then after
    assert "Camille Leroy" in Path(written["html"]).read_text()


@pytest.fixture(scope="module")
def ingested(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[IngestReport, dict, Path]:
    """One synthetic delivery with planted faults, ingested into a DuckDB file and into the PostgreSQL server."""
    root = tmp_path_factory.mktemp("postgres_ingest")
    tables = load_tables()
    synthesize(root / "D2019", SynthSpec(120, (2019,), seed=11), tables, config.reference_dir(), 0.01)
    duck = ingest_delivery(root / "D2019", root / "warehouse.duckdb", tables)
    postgres = json.loads(server.cli("ingest", str(root / "D2019"), "--target", "postgres", "--json"))
    return duck, postgres, root / "warehouse.duckdb"


def _rows(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple((value is None, str(value)) for value in row))


def test_ingestion_on_postgres_lands_and_quarantines_exactly_what_duckdb_does(ingested: tuple) -> None:
    duck, postgres, database = ingested
    assert postgres == duck.as_json() and postgres["status"] == "loaded"
    tables = postgres["tables"]
    assert sum(t["quarantined"] for t in tables.values()) > 0 and sum(t["loaded"] for t in tables.values()) > 1000
    quarantine = "select TABLE_NAME, FILE_NAME, LINE_NUMBER, COLUMN_NAME, REASON_CODE, EXPECTED, REASON, RAW_TEXT "
    quarantine += "from landing.quarantine"
    with duckdb.connect(str(database), read_only=True) as duck_con, connect_postgres() as pg_con:
        assert _rows(pg_con.execute(quarantine).fetchall()) == _rows(duck_con.execute(quarantine).fetchall())
        for table in tables:  # every value of every landed row, typed alike
            landed = f"select * from landing.{table}"
            assert _rows(pg_con.execute(landed).fetchall()) == _rows(duck_con.execute(landed).fetchall())
        periods = "select TABLE_NAME, DELIVERY_POLICY, PERIOD_START from landing.delivery_periods"
        assert _rows(pg_con.execute(periods).fetchall()) == _rows(duck_con.execute(periods).fetchall())


def test_ingesting_again_on_postgres_changes_nothing(server: Server, ingested: tuple) -> None:
    _, first, database = ingested
    again = json.loads(server.cli("ingest", str(database.parent / "D2019"), "--target", "postgres", "--json"))
    assert again["status"] == "unchanged" and again["tables"] == first["tables"]


def test_a_declared_login_that_is_a_role_the_platform_does_not_manage_is_refused(
    keyed: Server, granted: dict, tmp_path: Path
) -> None:
    with connect_postgres() as con:
        con.execute("create role dba_x login")
    shutil.copytree(keyed.declarations, tmp_path / "access")
    (tmp_path / "access" / "dba_x.yml").write_text(
        "login: dba_x\nname: A DBA\norganisation: Hosting\nrights:\n"
        "  - role: platform_operator\n    from: 2026-01-01\n    until: 2026-12-31\n"
    )
    refused = CliRunner().invoke(main, ["access", "plan", "--declarations", str(tmp_path / "access"), "--on", DAY])
    assert refused.exit_code == 1 and "dba_x: a role of the server that the declarations do not" in refused.output
