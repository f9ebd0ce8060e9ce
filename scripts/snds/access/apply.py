"""Running an access plan on the PostgreSQL server: all changes in one transaction, each one audited.

PostgreSQL's role and grant statements are transactional: a failing change leaves the rights as they were, and
the failure is audited (`access.apply`, outcome `failed`) after the rollback.
"""

from __future__ import annotations

from datetime import date

from snds import audit
from snds.access.plan import Change
from snds.engine import Connection


class AccessApplyError(Exception):
    """A change failed: nothing of the plan was applied."""


def apply_changes(con: Connection, changes: list[Change], day: date) -> int:
    """Run every change (with its SQL), audit each as `access.<action>`; returns how many ran."""
    audit.create_audit_trail(con)
    con.execute("begin")
    current = None
    try:
        for current in changes:
            con.execute(current.sql)
            audit.record(con, f"access.{current.action}", " ".join(current.names), "done", _detail(current, day))
    except Exception as error:
        con.execute("rollback")
        failed = current.describe() if current else "?"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        audit.record(con, "access.apply", failed, "failed", {"error": first, "changes": len(changes)})
        raise AccessApplyError(f"{failed}: {first}; nothing was applied") from None
    con.execute("commit")
    for change in changes:  # a denied login's open sessions end now that the plan holds (not undone by a rollback)
        if change.action == "deny_login":
            con.execute("select pg_terminate_backend(pid) from pg_stat_activity where usename = ?", [change.names[0]])
    return len(changes)


def _detail(change: Change, day: date) -> dict[str, object]:
    return {"names": list(change.names), "sql": change.sql, "declared_on": day.isoformat()}
