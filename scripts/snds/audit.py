"""The append-only audit trail (`audit.events`): every delivery, key operation, build and export."""

from __future__ import annotations

import getpass
import json
from datetime import datetime

import duckdb

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


def create_audit_trail(con: duckdb.DuckDBPyConnection) -> None:
    for statement in AUDIT_DDL:
        con.execute(statement)


def record(con: duckdb.DuckDBPyConnection, action: str, obj: str, outcome: str, detail: dict) -> None:
    """One event, by the operating system user running the command."""
    con.execute(
        "insert into audit.events values (?, ?, ?, ?, ?, ?)",
        [datetime.now(), getpass.getuser(), action, obj, outcome, json.dumps(detail, sort_keys=True)],
    )
