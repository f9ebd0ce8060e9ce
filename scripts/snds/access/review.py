"""The yearly review of access rights (`snds access review`): who can read what, since when, until when, what
they did; a JSON file and a self-contained HTML page.

What a person can read comes from the server (their group roles, through nested memberships, and the schemas
those roles read), not from the declarations: the review shows the rights as enforced, next to the rights as
declared, and the changes a plan would still make (none when the two agree). "Since" is the day the audit
recorded the grant of the role; the activity is the person's events in the audit trail. The embedded PostgreSQL
server does not record logins (`log_connections` is off): the review says so rather than showing none.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from snds import audit
from snds.access.declarations import PLATFORM_OPERATOR, Person
from snds.access.plan import Change
from snds.access.rights import OPERATOR_ROLE, project_role
from snds.access.state import FoundRights
from snds.engine import Connection

LOGINS_NOTE = "logins are not recorded by the embedded PostgreSQL server (log_connections is off)"


def review(
    con: Connection, people: list[Person], found: FoundRights, pending: list[Change], target: str, day: date
) -> dict[str, Any]:
    events = audit.events(con)
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
                "activity": [_event(e) for e in events if e.actor == person.login],
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
        "logins": LOGINS_NOTE,
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
    role = OPERATOR_ROLE if right.role == PLATFORM_OPERATOR else project_role(str(right.project), right.role)
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
