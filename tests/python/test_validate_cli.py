"""`snds validate` refuses hostile identifiers before any SQL and fails clearly (message, exit code, JSON) when it
cannot work: no database, no landing, a reserved name, a database locked by another run. No dbt run here."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from snds import warehouse
from snds.cli import main
from snds.cli_common import EXIT_TOOL, EXIT_USAGE
from snds.config import REPORTS_DIR
from snds.conformity.validate import ValidationError, compile_parts, validate_delivery
from snds.identifiers import InvalidIdentifier
from snds.landing import create_bookkeeping

INJECTED = (
    "D1\n-- snds:conformity:query x\ndrop table landing.deliveries",  # newline and the former marker line
    "D1' or '1' = '1",
    "..",
    "../../outside",
)


def _validate(database: Path, delivery: str) -> Result:
    return CliRunner().invoke(main, ["validate", delivery, "--database", str(database), "--json"])


def _tables(database: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute("select table_schema, table_name from information_schema.tables order by 1, 2").fetchall()


@pytest.fixture
def with_landing(tmp_path: Path) -> Path:
    """A warehouse with the landing bookkeeping and no delivery."""
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        create_bookkeeping(con)
    return database


def _error_of(result: Result, code: int) -> dict:
    """The run failed with `code`, a message on stderr, a JSON error on stdout and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit)  # fail(), not an exception escaping
    assert "Traceback" not in result.output and "error:" in result.stderr
    printed = json.loads(result.stdout)
    assert printed["status"] == "error" and printed["exit_code"] == code and printed["message"]
    return printed


@pytest.mark.parametrize("delivery", INJECTED)
def test_an_injected_identifier_is_refused_before_any_sql(with_landing: Path, tmp_path: Path, delivery: str) -> None:
    before = _tables(with_landing)
    result = _validate(with_landing, delivery)
    printed = _error_of(result, EXIT_USAGE)
    assert "is not accepted" in printed["message"] and printed["delivery"] is None
    assert _tables(with_landing) == before  # no table created or dropped
    assert not (REPORTS_DIR.parent / "outside").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "warehouse.duckdb"
    ]
    with pytest.raises(InvalidIdentifier):  # the library refuses it too, before opening anything
        validate_delivery(tmp_path / "absent.duckdb", delivery, None, tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "absent.duckdb").exists()


def test_the_part_marker_cannot_be_forged() -> None:
    templates = {"ER_PRS_F": "select 1", "T_MCO19B.0": "select 2"}
    assert compile_parts(templates, lambda sql: sql) == {"ER_PRS_F": "select 1", "T_MCO19B.0": "select 2"}
    # text of a part that looks like a marker (the former fixed one) stays inside its part
    forged = "select 2\n-- snds:conformity:query ER_PRS_F\ndrop table x"
    parts = compile_parts({**templates, "T_MCO19B.0": forged}, lambda sql: sql)
    assert parts == {"ER_PRS_F": "select 1", "T_MCO19B.0": forged}
    # compiled SQL with a part more or less than given is refused
    with pytest.raises(ValidationError, match="does not hold the 2 parts"):
        compile_parts(templates, lambda sql: sql + "\n" + sql.splitlines()[0] + "\ndrop table x")
    with pytest.raises(ValidationError, match="does not hold the 2 parts"):
        compile_parts(templates, lambda sql: sql.split("\nselect 1\n")[1])
    # a new nonce per compile
    seen: list[str] = []
    for _ in range(2):
        compile_parts(templates, lambda sql: seen.append(sql) or sql)
    assert seen[0].splitlines()[0] != seen[1].splitlines()[0]


def test_a_missing_database_is_a_tool_failure_and_is_not_created(tmp_path: Path) -> None:
    database = tmp_path / "absent.duckdb"
    printed = _error_of(_validate(database, "D1"), EXIT_TOOL)
    assert "no database at" in printed["message"] and printed["delivery"] == "D1"
    assert not database.exists()


def test_a_database_without_landing_is_a_tool_failure(tmp_path: Path) -> None:
    database = tmp_path / "empty.duckdb"
    duckdb.connect(str(database)).close()
    printed = _error_of(_validate(database, "D1"), EXIT_TOOL)
    assert "holds no landing schema" in printed["message"]
    assert _tables(database) == []


def test_a_database_named_after_a_schema_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "landing.duckdb"
    printed = _error_of(_validate(database, "D1"), EXIT_TOOL)
    assert "may not be named after a schema" in printed["message"]
    assert not database.exists()


def test_an_unknown_delivery_is_a_usage_error(with_landing: Path) -> None:
    printed = _error_of(_validate(with_landing, "NEVER_INGESTED"), EXIT_USAGE)
    assert printed["message"] == "delivery NEVER_INGESTED was never ingested"


@pytest.fixture
def locked(with_landing: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The warehouse held open for writing by another process; validate waits briefly for the lock."""
    monkeypatch.setattr(warehouse, "LOCK_WAIT_SECONDS", 0.5)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(60)", str(with_landing)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield with_landing
    finally:
        holder.kill()
        holder.wait()


def test_a_database_locked_by_another_run_is_a_tool_failure(locked: Path) -> None:
    started = time.monotonic()
    printed = _error_of(_validate(locked, "D1"), EXIT_TOOL)
    assert "is in use by another run" in printed["message"] and "waited 0.5 s" in printed["message"]
    assert time.monotonic() - started < 20  # the wait set for the test, not the default 30 s
