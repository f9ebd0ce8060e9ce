"""An access plan: the changes that bring the database's rights to the declared ones, and their SQL.

On PostgreSQL the plan is the difference between the declared rights and those the server holds
(`state.found_rights`): run it (`apply`) and the next plan is empty. On Oracle, where no server runs here, the
plan is a script that converges from any state: every declared right is granted, every creation and revocation
is guarded by the data dictionary, and what the declarations say has ended (a right past its last day, a person
without an active right) is revoked or locked. The SQL comes from the dispatched macro `access_statements`,
compiled by dbt for the target.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from snds import postgres_server
from snds.access.declarations import Person
from snds.access.rights import USERS_ROLE, Rights, group_role
from snds.access.state import FoundRights
from snds.dbt import ORACLE_OFFLINE_TARGET, InlineCompiler

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")  # a role, login or schema the plan may name (checked again by the macro)
CHANGE_MARKER = re.compile(r"^-- snds access change (\d+): .*$", re.MULTILINE)
# The order in which changes run: what a grant needs exists first; revocations after the grants they replace.
ORDER = (
    "create_schema", "create_role", "create_login", "allow_login", "grant_role", "grant_schema", "grant_reads",
    "revoke_reads", "revoke_schema", "revoke_role", "deny_login",
)  # fmt: skip


class AccessPlanError(Exception):
    """The server holds something the plan will not touch: the message says what."""


@dataclass(frozen=True)
class Change:
    action: str
    names: tuple[str, ...]
    sql: str = ""

    def describe(self) -> str:
        return f"{self.action} {' '.join(self.names)}"


def platform_user(target: str) -> str:
    """The account dbt builds with: it owns the tables, and it is the one that reads `keys`."""
    if target == "postgres":
        return os.environ.get(postgres_server.USER_VARIABLE) or postgres_server.SUPERUSER
    return (os.environ.get("SNDS_ORACLE_USER") or "snds").lower()


def changes_on_server(declared: Rights, found: FoundRights, owner: str) -> list[Change]:
    """What brings `found` to `declared` (PostgreSQL): every difference, nothing else."""
    now = found.rights
    adopted = sorted(
        login for login in declared.logins if (login in found.roles and login not in now.logins) or login == owner
    )
    if adopted:
        raise AccessPlanError(
            f"{', '.join(adopted)}: a role of the server that the declarations do not manage (not in {USERS_ROLE}, "
            "or the platform's own account); rename the declaration or the role"
        )
    changes = [Change("create_schema", (s,)) for s in declared.schemas - now.schemas]
    changes += [Change("create_role", (r,)) for r in declared.group_roles - found.roles]
    for login, allowed in declared.logins.items():
        if login not in found.roles:
            changes.append(Change("create_login", (login, "allowed" if allowed else "denied")))
        elif found.can_login.get(login) != allowed:
            changes.append(Change("allow_login" if allowed else "deny_login", (login,)))
    for login in now.logins.keys() - declared.logins.keys():
        if found.can_login.get(login):
            changes.append(Change("deny_login", (login,)))  # no longer declared: locked, kept in snds_users
    undeclared_users = {(USERS_ROLE, login) for login in now.logins.keys() - declared.logins.keys()}
    changes += [Change("grant_role", m) for m in declared.memberships - now.memberships]
    changes += [Change("revoke_role", m) for m in now.memberships - declared.memberships - undeclared_users]
    changes += [Change("grant_schema", g) for g in declared.schema_grants - now.schema_grants]
    changes += [Change("revoke_schema", g) for g in now.schema_grants - declared.schema_grants]
    changes += [Change("grant_reads", (*r, owner)) for r in declared.table_reads - now.table_reads]
    changes += [Change("revoke_reads", (*r, owner)) for r in found.partial_reads - declared.table_reads]
    return _ordered(changes)


def changes_from_any_state(declared: Rights, people: list[Person], owner: str) -> list[Change]:
    """Every declared right, and the revocation of every right the declarations say has ended (Oracle)."""
    changes = [Change("create_schema", (s,)) for s in declared.schemas]
    changes += [Change("create_role", (r,)) for r in declared.group_roles]
    changes += [Change("create_login", (p, "allowed" if ok else "denied")) for p, ok in declared.logins.items()]
    changes += [Change("grant_role", m) for m in declared.memberships]
    changes += [Change("grant_schema", g) for g in declared.schema_grants]
    changes += [Change("grant_reads", (*r, owner)) for r in declared.table_reads]
    ended = {(group_role(r), p.login) for p in people for r in p.rights}
    changes += [Change("revoke_role", m) for m in ended - declared.memberships]
    return _ordered(changes)


def _ordered(changes: list[Change]) -> list[Change]:
    return sorted(set(changes), key=lambda c: (ORDER.index(c.action), c.names))


def with_sql(changes: list[Change], compiler: InlineCompiler) -> list[Change]:
    """The changes with their SQL, compiled by dbt for the compiler's target in one invocation."""
    if not changes:
        return []
    strange = sorted({n for c in changes for n in c.names if not NAME.fullmatch(n)})
    if strange:  # names read from the server, never written into the template unchecked
        raise AccessPlanError(f"names the plan cannot use: {', '.join(ascii(n)[:40] for n in strange[:5])}")
    listed = ", ".join("[" + ", ".join(f"'{part}'" for part in (c.action, *c.names)) + "]" for c in changes)
    compiled = compiler.compile(f"{{{{ access_statements([{listed}]) }}}}")
    blocks = CHANGE_MARKER.split(compiled)[1:]  # number, block, number, block ...
    by_number = {int(blocks[i]): blocks[i + 1].strip() for i in range(0, len(blocks), 2)}
    if sorted(by_number) != list(range(1, len(changes) + 1)):
        raise RuntimeError("the compiled access plan does not hold one block per change")
    return [Change(c.action, c.names, by_number[n]) for n, c in enumerate(changes, start=1)]


def script(changes: list[Change], target: str, day: date) -> str:
    """The plan as one SQL script, a comment before each change."""
    lines = [f"-- snds access plan for {target} on {day.isoformat()}: {len(changes)} changes"]
    for number, change in enumerate(changes, start=1):
        lines += [f"-- {number}. {change.describe()}", change.sql, ""]
    return "\n".join(lines).rstrip() + "\n"


def compiler_for(target: str, target_path: Path) -> InlineCompiler:
    """dbt's compiler of access statements for `target` (they call macros only: the macro project's parse)."""
    dbt_target = ORACLE_OFFLINE_TARGET if target == "oracle" else target
    return InlineCompiler(target_path, dbt_target=dbt_target, macros_only=True)
