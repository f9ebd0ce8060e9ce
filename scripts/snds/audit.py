"""The append-only audit trail (`audit.events`): every delivery, key operation, build, import, export and closure.

`snds audit --project ID` reads a project's life back from it (`project_events`, `summary`).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from snds.engine import Connection

AUDIT_DDL = (
    "create schema if not exists audit",
    """create table if not exists audit.events (
    EVENT_AT timestamp not null,
    ACTOR varchar(128) not null,
    ACTION varchar(64) not null,
    OBJECT varchar(255) not null,
    OUTCOME varchar(32) not null,
    DETAIL varchar
)""",
)


def create_audit_trail(con: Connection) -> None:
    for statement in AUDIT_DDL:
        con.execute(statement)


def record(con: Connection, action: str, obj: str, outcome: str, detail: dict) -> None:
    """One event, by the operating system user running the command."""
    con.execute(
        "insert into audit.events values (?, ?, ?, ?, ?, ?)",
        [datetime.now(), getpass.getuser(), action, obj, outcome, json.dumps(detail, sort_keys=True)],
    )


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str
    action: str
    object: str
    outcome: str
    detail: dict[str, Any]

    @property
    def summary(self) -> str:
        return summary(self.action, self.detail)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(sep=" "),
            "actor": self.actor,
            "action": self.action,
            "object": self.object,
            "outcome": self.outcome,
            "summary": self.summary,
            "detail": self.detail,
        }


def events(con: Connection, project_id: str | None = None, limit: int | None = None) -> list[Event]:
    """The trail in time order: a project's events (its builds, imports, exports, closure, and its key's `keys.*`
    events, whose object is `project:<ID>`), or the whole trail; with `limit`, the latest events only."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'audit' and table_name = 'events'"
    ).fetchone()
    if not found or not found[0]:
        return []
    where, parameters = "", []
    if project_id is not None:
        where, parameters = "where OBJECT = ? or OBJECT = ?", [project_id, f"project:{project_id}"]
    latest = f" limit {int(limit)}" if limit is not None else ""
    rows = con.execute(
        f"select * from (select EVENT_AT, ACTOR, ACTION, OBJECT, OUTCOME, DETAIL from audit.events {where} "
        f"order by EVENT_AT desc{latest}) order by EVENT_AT",
        parameters,
    ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], r[4], _parsed(r[5])) for r in rows]


def _parsed(detail: str | None) -> dict[str, Any]:
    try:
        value = json.loads(detail or "{}")
    except json.JSONDecodeError:
        return {"text": detail}
    return value if isinstance(value, dict) else {"value": value}


def _short(value: Any, size: int = 12) -> str:
    return str(value)[:size] if value is not None else "?"


def summary(action: str, detail: dict[str, Any], width: int = 110) -> str:
    """One line of what an event's detail says, for a table."""
    problems = detail.get("problems") or detail.get("reasons")
    if isinstance(problems, list) and problems:
        text = str(problems[0]) + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    elif "error" in detail:
        text = str(detail["error"])
    elif action == "project.build":
        text = (
            f"definition {_short(detail.get('definition_sha256'))}, dbt invocation "
            f"{_short(detail.get('dbt_invocation_id'), 8)}, commit {_short(detail.get('git_commit'))}"
        )
    elif action == "project.import":
        text = (
            f"{detail.get('name')}: {detail.get('rows_in')} rows in, {detail.get('rows_loaded')} loaded, "
            f"{detail.get('rows_quarantined')} quarantined; {detail.get('file')} sha256 {_short(detail.get('sha256'))}"
            + (f"; {detail['identifier']} pseudonymised" if detail.get("identifier") else "")
        )
    elif action == "project.export":
        files = [f for f in detail.get("files") or [] if isinstance(f, dict)]
        names = ", ".join(str(r.get("name")) for r in detail.get("recipients") or [] if isinstance(r, dict))
        text = f"{len(files)} files, {sum(int(f.get('rows') or 0) for f in files)} rows, to {detail.get('destination')}"
        text += f"; for {names}" if names else ""
    elif action == "project.close":
        key = detail.get("key_retired")
        text = f"{detail.get('reason')}; {len(detail.get('dropped') or [])} tables dropped; " + (
            f"key {key} retired" if key else "no active key"
        )
    elif "key_id" in detail:
        text = f"key {detail['key_id']}"
    else:
        text = ", ".join(f"{k} {_short(v, 40)}" for k, v in detail.items() if not isinstance(v, dict | list))
        lists = [f"{len(v)} {k}" for k, v in detail.items() if isinstance(v, list)]
        text = "; ".join(t for t in (text, ", ".join(lists)) if t)
    return text if len(text) <= width else text[: width - 3] + "..."
