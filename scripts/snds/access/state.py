"""The rights a PostgreSQL database holds now, read from its catalog, in the shape of `rights.Rights`.

Only what the platform manages is read: group roles named `snds_...`, the persons of `snds_users`, their
memberships and the grants they hold on schemas and tables (direct grants, as `aclexplode` lists them; default
privileges from `pg_default_acl`). Oracle is not read: no server runs here, and its plan is a script that converges
from any state (see `plan.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from snds.access.rights import ROLE_PREFIX, USERS_ROLE, Rights
from snds.engine import Connection

_PREFIX_LIKE = ROLE_PREFIX.replace("_", "\\_") + "%"  # `_` is a wildcard of like
# A role the platform manages (the alias `g`): a group role, or a person of snds_users.
_MANAGED = (
    f"(g.rolname like '{_PREFIX_LIKE}' or g.oid in (select member from pg_auth_members where roleid = "
    f"(select oid from pg_roles where rolname = '{USERS_ROLE}')))"
)

SCHEMAS = "select nspname from pg_namespace"
ROLES = "select rolname, rolcanlogin from pg_roles"
GROUP_ROLES = f"select rolname from pg_roles where rolname like '{_PREFIX_LIKE}' and not rolcanlogin"
LOGINS = (
    "select m.rolname, m.rolcanlogin from pg_auth_members a join pg_roles r on r.oid = a.roleid "
    f"join pg_roles m on m.oid = a.member where r.rolname = '{USERS_ROLE}'"
)
MEMBERSHIPS = (
    "select r.rolname, m.rolname from pg_auth_members a join pg_roles r on r.oid = a.roleid "
    f"join pg_roles m on m.oid = a.member where r.rolname like '{_PREFIX_LIKE}'"
)
SCHEMA_GRANTS = (
    "select lower(acl.privilege_type), n.nspname, g.rolname from pg_namespace n "
    "cross join lateral aclexplode(n.nspacl) acl join pg_roles g on g.oid = acl.grantee "
    f"where acl.grantee <> n.nspowner and {_MANAGED}"  # an owner's own rights are not grants
)
# (schema, role, tables of the schema, tables the role may select, whether new tables will be readable)
TABLE_READS = f"""
with tables as (
    select c.oid, n.nspname, c.relacl, c.relowner from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'v', 'm', 'p') and n.nspname not in ('pg_catalog', 'information_schema')
),
readable as (
    select t.nspname, g.rolname, count(distinct t.oid) as tables
    from tables t cross join lateral aclexplode(t.relacl) acl join pg_roles g on g.oid = acl.grantee
    where acl.privilege_type = 'SELECT' and acl.grantee <> t.relowner and {_MANAGED}
    group by t.nspname, g.rolname
),
defaults as (
    select n.nspname, g.rolname from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace
    cross join lateral aclexplode(d.defaclacl) acl join pg_roles g on g.oid = acl.grantee
    where d.defaclobjtype = 'r' and acl.privilege_type = 'SELECT' and acl.grantee <> d.defaclrole and {_MANAGED}
)
select coalesce(r.nspname, d.nspname), coalesce(r.rolname, d.rolname),
    (select count(*) from tables t where t.nspname = coalesce(r.nspname, d.nspname)
        and t.relowner <> (select oid from pg_roles where rolname = coalesce(r.rolname, d.rolname))),
    coalesce(r.tables, 0), d.rolname is not null
from readable r full join defaults d on d.nspname = r.nspname and d.rolname = r.rolname
"""


@dataclass(frozen=True)
class FoundRights:
    rights: Rights  # table_reads: every table of the schema readable, and the tables to come
    roles: frozenset[str]  # every role of the server, managed or not
    can_login: dict[str, bool]  # every role's login right
    partial_reads: frozenset[tuple[str, str]]  # (schema, role) that read some of a schema's tables, or those to come


def found_rights(con: Connection) -> FoundRights:
    reads = con.execute(TABLE_READS).fetchall()
    roles = dict(con.execute(ROLES).fetchall())
    rights = Rights(
        schemas=frozenset(r[0] for r in con.execute(SCHEMAS).fetchall()),
        group_roles=frozenset(r[0] for r in con.execute(GROUP_ROLES).fetchall()),
        logins={r[0]: bool(r[1]) for r in con.execute(LOGINS).fetchall()},
        memberships=frozenset((r[0], r[1]) for r in con.execute(MEMBERSHIPS).fetchall()),
        schema_grants=frozenset((r[0], r[1], r[2]) for r in con.execute(SCHEMA_GRANTS).fetchall()),
        table_reads=frozenset((s, role) for s, role, tables, readable, later in reads if readable == tables and later),
    )
    return FoundRights(rights, frozenset(roles), roles, frozenset((s, role) for s, role, *_ in reads))


def role_exists(con: Connection, role: str) -> bool:
    found = con.execute("select count(*) from pg_roles where rolname = ?", [role]).fetchone()
    return bool(found and found[0])
