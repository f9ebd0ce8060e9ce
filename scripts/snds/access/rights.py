"""The database rights that access declarations stand for, on a given day: roles, memberships, schema grants.

One group role per research project and role (`snds_<id>_reader`, `snds_<id>_manager`), one for the platform
operators, one for pseudonymisation (the only one that reads `keys`), and `snds_users`, which every declared
person belongs to (so that a person no longer declared is still found, and locked). Persons get rights only
through the group roles; a group role reads whole schemas (every table, now and later).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from snds.access.declarations import DATA_MANAGER, PLATFORM_OPERATOR, RESEARCHER, Person, Right
from snds.identifiers import project_schema

ROLE_PREFIX = "snds_"  # every group role the platform manages, and nothing else, starts with it
USERS_ROLE = "snds_users"
OPERATOR_ROLE = "snds_platform_operator"
PSEUDONYMISATION_ROLE = "snds_pseudonymisation"
OPERATOR_SCHEMAS = ("landing", "snds", "int", "marts", "audit")  # never keys, never a project's
KEYS_SCHEMA = "keys"
USAGE, CREATE = "usage", "create"  # the schema privileges granted


def project_role(project_id: str, role: str) -> str:
    """The group role of a project's researchers (`reader`) or data managers (`manager`)."""
    suffix = {RESEARCHER: "reader", DATA_MANAGER: "manager"}[role]
    return f"{ROLE_PREFIX}{project_id.lower()}_{suffix}"


def group_role(right: Right) -> str:
    """The group role a declared right stands for."""
    return OPERATOR_ROLE if right.role == PLATFORM_OPERATOR else project_role(str(right.project), right.role)


@dataclass(frozen=True)
class Rights:
    """A state of the database's rights, declared or found: the same shape either way, so that plans are diffs."""

    schemas: frozenset[str] = frozenset()
    group_roles: frozenset[str] = frozenset()
    logins: dict[str, bool] = field(default_factory=dict)  # person -> may log in
    memberships: frozenset[tuple[str, str]] = frozenset()  # (group role, member)
    schema_grants: frozenset[tuple[str, str, str]] = frozenset()  # (privilege, schema, role)
    table_reads: frozenset[tuple[str, str]] = frozenset()  # (schema, role): select on every table, now and later


def declared_rights(people: Iterable[Person], project_ids: Iterable[str], day: date, platform_user: str) -> Rights:
    """What the declarations give on `day`; every project gets its roles, whoever holds them."""
    projects = sorted(project_ids)
    schemas = {*OPERATOR_SCHEMAS, KEYS_SCHEMA, *(project_schema(p) for p in projects)}
    roles = {USERS_ROLE, OPERATOR_ROLE, PSEUDONYMISATION_ROLE}
    memberships = {(PSEUDONYMISATION_ROLE, platform_user)}
    grants = {(USAGE, KEYS_SCHEMA, PSEUDONYMISATION_ROLE)} | {(USAGE, s, OPERATOR_ROLE) for s in OPERATOR_SCHEMAS}
    reads = {(KEYS_SCHEMA, PSEUDONYMISATION_ROLE)} | {(s, OPERATOR_ROLE) for s in OPERATOR_SCHEMAS}
    for project in projects:
        reader, manager = project_role(project, RESEARCHER), project_role(project, DATA_MANAGER)
        roles |= {reader, manager}
        memberships.add((reader, manager))
        grants |= {(USAGE, project_schema(project), reader), (CREATE, project_schema(project), manager)}
        reads.add((project_schema(project), reader))
    logins = {}
    for person in people:
        active = person.active_rights(day)
        logins[person.login] = bool(active)
        memberships.add((USERS_ROLE, person.login))
        for right in active:
            memberships.add((group_role(right), person.login))
    return Rights(
        frozenset(schemas), frozenset(roles), logins, frozenset(memberships), frozenset(grants), frozenset(reads)
    )
