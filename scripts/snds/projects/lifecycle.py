"""The end of a research project: `snds project close ID` (or `--expired`), and the one rule every later step obeys.

Closing drops the project's schema (`project_<id>`: extracts, cohort, imports) and its restricted steps in `keys`
(`<id>__*`), retires its key (its material is destroyed: the project's pseudonyms can never be computed again, and
`snds keys init --project` refuses a closed project), and appends `project.close` to `audit.events`. The audit trail
stays: it is what says, for ever, that the project was closed and when.

`closed_on` is the one place that says whether a project is closed: `snds project build`, `snds project import` and
the export call it, and the build's guard (`macros/access/project_guard.sql`) reads the same events, so that a plain
`dbt build` is refused alike.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from snds import audit, engine, identifiers
from snds.keys import store

CLOSE_ACTION = "project.close"


class ProjectClosed(Exception):
    """The project was closed: nothing may be built, imported or exported for it any more."""

    def __init__(self, project_id: str, day: date) -> None:
        self.project_id, self.day = project_id, day
        super().__init__(closed_message(project_id, day))


class NothingToClose(Exception):
    """The project has no schema, no restricted table and no key in this database: nothing to close."""


@dataclass
class Closure:
    project_id: str
    closed_on: date
    reason: str
    schema: str
    dropped: list[str] = field(default_factory=list)  # schema.table, the project's schema and its keys tables
    key_id: str | None = None  # the key retired now (None: it had none active)

    def as_json(self) -> dict:
        return {
            "project": self.project_id,
            "closed_on": self.closed_on.isoformat(),
            "reason": self.reason,
            "schema": self.schema,
            "dropped": self.dropped,
            "key_retired": self.key_id,
        }


def closed_message(project_id: str, day: date) -> str:
    """The reason every refusal gives."""
    return f"project {project_id} closed on {day.isoformat()}"


def closed_on_with(con: engine.Connection, project_id: str) -> date | None:
    """The day the project was closed (its `project.close` event in `audit.events`), or None."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'events'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute(
        "select min(EVENT_AT) from audit.events where ACTION = ? and OBJECT = ? and OUTCOME = 'done'",
        [CLOSE_ACTION, project_id],
    ).fetchone()
    return row[0].date() if row and row[0] is not None else None


def closed_on(database: Path, project_id: str, target: str = engine.EMBEDDED) -> date | None:
    """The day the project was closed in `target`'s database, or None (also when there is no DuckDB file yet).

    Raises warehouse.WarehouseError when the file cannot be read (held by another run beyond the wait), EngineError
    when the server cannot be reached.
    """
    if target == engine.EMBEDDED and not database.is_file():
        return None
    with engine.connect(target, database) as con:
        return closed_on_with(con, project_id)


def ensure_open(con: duckdb.DuckDBPyConnection, project_id: str) -> None:
    """ProjectClosed (its message: "project P closed on DATE") when the project was closed."""
    day = closed_on_with(con, project_id)
    if day is not None:
        raise ProjectClosed(project_id, day)


def close_project(con: duckdb.DuckDBPyConnection, project_id: str, reason: str, defined: bool = True) -> Closure:
    """Retire the project's key, drop its schema and its restricted tables, record `project.close`.

    The key is retired first (its own audited transaction, `keys.retire`): should the drops fail afterwards, the
    project can no longer be built, and closing it again finishes the work. Raises ProjectClosed when it was
    closed already, NothingToClose when the database holds nothing of a project that has no definition (`defined`:
    projects/<ID>.yml exists; a defined project never built is closed all the same, so that it never is), and
    InvalidIdentifier for an unsafe id.
    """
    identifiers.project_id(project_id)
    audit.create_audit_trail(con)
    store.create_key_store(con)
    ensure_open(con, project_id)
    schema = identifiers.project_schema(project_id)
    restricted = _restricted_tables(con, project_id)
    scope = store.project_scope(project_id)
    keys = [k for k in store.list_keys(con) if k.scope == scope]
    has_schema = con.execute(
        "select count(*) from information_schema.schemata where schema_name = ?", [schema]
    ).fetchone()
    if not defined and not (has_schema and has_schema[0]) and not restricted and not keys:
        raise NothingToClose(
            f"unknown project {project_id}: no definition, and nothing of it here (no schema {schema}, no table "
            f"keys.{project_id.lower()}__*, no key)"
        )
    closure = Closure(project_id, datetime.now().date(), reason, schema)
    if any(k.status == "active" for k in keys):
        closure.key_id = store.retire_project(con, project_id)
    tables = con.execute(
        "select table_name from information_schema.tables where table_schema = ? order by table_name", [schema]
    ).fetchall()
    con.execute("begin")
    try:
        for name, kind in restricted:
            con.execute(f'drop {kind} keys."{name}"')
        con.execute(f'drop schema if exists "{schema}" cascade')
        closure.dropped = [f"{schema}.{t[0]}" for t in tables] + [f"keys.{name}" for name, _ in restricted]
        audit.record(con, CLOSE_ACTION, project_id, "done", {**closure.as_json(), "who": getpass.getuser()})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("checkpoint")  # the dropped tables' blocks are freed in the file now, not at the next write
    return closure


def _restricted_tables(con: duckdb.DuckDBPyConnection, project_id: str) -> list[tuple[str, str]]:
    """The project's steps in `keys` (`<id>__*`, any case) as (name, `table` or `view`), views first."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_schema = 'keys'"
    ).fetchall()
    prefix = f"{project_id.lower()}__"
    found = [(name, "view" if kind == "VIEW" else "table") for name, kind in rows if name.lower().startswith(prefix)]
    return sorted(found, key=lambda t: (t[1] != "view", t[0]))
