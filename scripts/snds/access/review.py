"""The yearly review of access rights (`snds access review`): who can read what, since when, until when, what
they did; a JSON file and a self-contained HTML page.

What a person can read comes from the server (their group roles, through nested memberships, and the schemas
those roles read), not from the declarations: the review shows the rights as enforced, next to the rights as
declared, and the changes a plan would still make (none when the two agree). "Since" is the day the audit
recorded the grant of the role; the activity is the person's events in the audit trail and their logins and refused
logins as the server's log records them (`log_connections`, which `snds postgres start` turns on; read through the
connection with `pg_read_file`, the last LOG_WINDOW bytes). A server that does not record them is said so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from snds import audit, postgres_server
from snds.access.declarations import Person
from snds.access.plan import Change
from snds.access.rights import group_role
from snds.access.state import FoundRights
from snds.engine import ENGINE_ERRORS, Connection

LOG_WINDOW = 8 << 20  # the bytes of the server's log read, from its end
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)? \S+ \[(\d+)\] (?:LOG|FATAL):  (.*)$")
_AUTHORIZED = re.compile(r"connection authorized: user=(\S+) database=(\S+)")
_REFUSED = re.compile(r'role "([^"]+)" is not permitted to log in')


@dataclass(frozen=True)
class Login:
    at: str
    login: str
    outcome: str  # "login" or "refused login"


def server_logins(con: Connection) -> tuple[list[Login], str]:
    """The logins and refused logins of the server's log, and where they come from (or why there are none)."""
    setting = con.execute("select current_setting('log_connections')").fetchone()
    if not setting or setting[0] != "on":
        return [], "logins are not recorded by this server (log_connections is off)"
    try:
        size = con.execute("select size from pg_stat_file(?)", [postgres_server.LOG_FILE]).fetchone()
        start = max(int(size[0]) - LOG_WINDOW, 0) if size else 0
        text = con.execute("select pg_read_file(?, ?, ?)", [postgres_server.LOG_FILE, start, LOG_WINDOW]).fetchone()
    except ENGINE_ERRORS:
        return [], "logins: the server's log cannot be read by this account"
    # The server authorises a connection before it checks the role may log in: a refusal follows, same process.
    logins: list[Login] = []
    latest: dict[str, int] = {}  # process -> the index of its latest login
    for line in (text[0] if text else "").splitlines():
        matched = _LOG_LINE.match(line)
        if matched is None:
            continue
        at, process, message = matched.groups()
        if found := _AUTHORIZED.match(message):
            latest[process] = len(logins)
            logins.append(Login(at, found.group(1), "login"))
        elif found := _REFUSED.match(message):
            refused = Login(at, found.group(1), "refused login")
            if process in latest and logins[latest[process]].login == refused.login:
                logins[latest.pop(process)] = refused
            else:
                logins.append(refused)
    return logins, f"logins from the server's log (its last {LOG_WINDOW >> 20} MiB)"


def review(
    con: Connection, people: list[Person], found: FoundRights, pending: list[Change], target: str, day: date
) -> dict[str, Any]:
    events = audit.events(con)
    logins, logins_note = server_logins(con)
    granted = _grant_days(events)
    memberships = found.rights.memberships
    reads = {(schema, role) for schema, role in found.rights.table_reads | found.partial_reads}
    declared = {p.login for p in people}
    persons = []
    for person in people:
        roles = _roles_of(person.login, memberships)
        persons.append(
            {
                "login": person.login,
                "name": person.name,
                "organisation": person.organisation,
                "identifier_kind": person.identifier_kind,
                "can_log_in": found.can_login.get(person.login, False),
                "rights": [_right(person.login, r, day, granted, roles) for r in person.rights],
                "reads": sorted({schema for schema, role in reads if role in roles}),
                "activity": sorted(
                    [_event(e) for e in events if e.actor == person.login]
                    + [{"at": x.at, "action": x.outcome, "object": ""} for x in logins if x.login == person.login],
                    key=lambda entry: entry["at"],
                ),
            }
        )
    undeclared = sorted(found.rights.logins.keys() - declared)
    return {
        "target": target,
        "on": day.isoformat(),
        "generated_at": datetime.now().isoformat(timespec="seconds"),
        "people": persons,
        "undeclared": [
            {
                "login": login,
                "can_log_in": found.can_login.get(login, False),
                "roles": sorted(_roles_of(login, memberships)),
            }
            for login in undeclared
        ],
        "pending_changes": [c.describe() for c in pending],
        "logins": logins_note,
    }


def _roles_of(login: str, memberships: Iterable[tuple[str, str]]) -> set[str]:
    """Every group role `login` holds, directly or through another role."""
    held: set[str] = set()
    frontier = {login}
    while frontier:
        found = {role for role, member in memberships if member in frontier} - held
        held |= found
        frontier = found
    return held


def _right(login: str, right: Any, day: date, granted: dict[tuple[str, str], str], roles: set[str]) -> dict[str, Any]:
    role = group_role(right)
    status = "active" if right.active_on(day) else ("ended" if right.end < day else "future")
    return {
        "role": right.role,
        "project": right.project,
        "from": right.start.isoformat(),
        "until": right.end.isoformat(),
        "status": status,
        "database_role": role,
        "held": role in roles,
        "since": granted.get((role, login)),
    }


def _grant_days(events: list[audit.Event]) -> dict[tuple[str, str], str]:
    """(role, member) -> the day of the latest grant the audit recorded."""
    days: dict[tuple[str, str], str] = {}
    for event in events:
        names = event.detail.get("names")
        if event.action == "access.grant_role" and event.outcome == "done" and isinstance(names, list):
            days[(str(names[0]), str(names[1]))] = event.at.date().isoformat()
    return days


def _event(event: audit.Event) -> dict[str, str]:
    return {"at": event.at.isoformat(sep=" ", timespec="seconds"), "action": event.action, "object": event.object}
