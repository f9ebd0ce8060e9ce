"""The key store: `keys.key_material` (DuckDB or PostgreSQL), written only by `snds keys`, every change audited.

Life of the platform key: `init` loads version 1 (active); `rotate` loads the next version (active) and keeps
the current one as `previous`; the next `dbt build` re-pseudonymises the base under the new key (and the
`keys.pseudonym_renewals` view maps old to new pseudonyms); `retire` then destroys the previous key's material,
and the renewal view goes empty. Project keys are random: nobody ever needs to know them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from snds import audit, identifiers
from snds.audit import create_audit_trail
from snds.engine import BINARY_TYPE, Connection, engine_of
from snds.keys.material import DOMAINS, KeyRefused, derive_platform_key, fingerprint, pads, random_key

PLATFORM = "platform"
CORRESPONDENCES = ("person_pseudonyms", "professional_pseudonyms")

KEY_STORE_DDL = (
    "create schema if not exists keys",
    """create table if not exists keys.key_material (
    KEY_ID varchar(64) not null,
    KEY_SCOPE varchar(64) not null,
    KEY_DOMAIN varchar(16) not null,
    KEY_STATUS varchar(16) not null,
    FINGERPRINT varchar(16) not null,
    IPAD {binary},
    OPAD {binary},
    CREATED_AT timestamp not null,
    RETIRED_AT timestamp,
    primary key (KEY_ID, KEY_DOMAIN)
)""",
)


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    scope: str
    domain: str
    status: str
    fingerprint: str
    created_at: str
    retired_at: str | None


def create_key_store(con: Connection) -> None:
    for statement in KEY_STORE_DDL:
        con.execute(statement.format(binary=BINARY_TYPE[engine_of(con)]))


def project_scope(project_id: str) -> str:
    try:
        return f"project:{identifiers.project_id(project_id)}"
    except identifiers.InvalidIdentifier as error:
        raise KeyRefused(str(error)) from None


def list_keys(con: Connection) -> list[KeyInfo]:
    rows = con.execute(
        "select KEY_ID, KEY_SCOPE, KEY_DOMAIN, KEY_STATUS, FINGERPRINT, CREATED_AT, RETIRED_AT "
        "from keys.key_material order by KEY_SCOPE, CREATED_AT, KEY_ID, KEY_DOMAIN"
    ).fetchall()
    return [KeyInfo(r[0], r[1], r[2], r[3], r[4], str(r[5]), None if r[6] is None else str(r[6])) for r in rows]


def init_platform(con: Connection, secret: bytes) -> str:
    """Load the first platform key; refused when one exists (rotate it instead)."""
    with _transaction(con, "keys.init", PLATFORM) as event:
        if _keys_with(con, PLATFORM, ("active", "previous")):
            raise KeyRefused("a platform key is already loaded; use `snds keys rotate` to renew it")
        key_id = _next_id(con, PLATFORM)
        _insert(con, key_id, PLATFORM, {d: derive_platform_key(secret, d) for d in DOMAINS})
        event["key_id"] = key_id
    return key_id


def rotate_platform(con: Connection, secret: bytes) -> str:
    """Make a new platform key active and keep the current one as `previous` until it is retired."""
    with _transaction(con, "keys.rotate", PLATFORM) as event:
        active = _keys_with(con, PLATFORM, ("active",))
        if not active:
            raise KeyRefused("no platform key is loaded; use `snds keys init` first")
        if _keys_with(con, PLATFORM, ("previous",)):
            raise KeyRefused(
                "a previous platform key is still kept; build the base (`dbt build`) and run `snds keys retire` first"
            )
        keys = {d: derive_platform_key(secret, d) for d in DOMAINS}
        used = {k.fingerprint for k in list_keys(con) if k.scope == PLATFORM}
        if {fingerprint(k) for k in keys.values()} & used:
            # An earlier secret would bring back pseudonyms that a renewal retired.
            raise KeyRefused("this secret gives keys that were already used; a rotation needs a new secret")
        con.execute(
            "update keys.key_material set KEY_STATUS = 'previous' where KEY_SCOPE = ? and KEY_STATUS = 'active'",
            [PLATFORM],
        )
        key_id = _next_id(con, PLATFORM)
        _insert(con, key_id, PLATFORM, keys)
        event.update(previous_key_id=active[0].key_id, key_id=key_id)
    return key_id


def retire_previous_platform_key(con: Connection) -> str:
    """Destroy the previous platform key, once the base has been re-pseudonymised under the active one."""
    with _transaction(con, "keys.retire", PLATFORM) as event:
        previous = _keys_with(con, PLATFORM, ("previous",))
        if not previous:
            raise KeyRefused("no previous platform key to retire")
        active_id = _keys_with(con, PLATFORM, ("active",))[0].key_id
        stale = _correspondences_not_under(con, active_id) or _tables_with_other_pseudonyms(con)
        if stale:
            listed = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
            raise KeyRefused(
                f"{listed} not yet rebuilt under {active_id}: run `dbt build` first, "
                "so that no table of the base still needs the previous key"
            )
        _retire(con, PLATFORM, "previous")
        event["key_id"] = previous[0].key_id
    return previous[0].key_id


def init_project(con: Connection, project_id: str) -> str:
    """A random key for one research project's pseudonyms (NUM_ENQ ...)."""
    scope = project_scope(project_id)
    with _transaction(con, "keys.init", scope) as event:
        if _keys_with(con, scope, ("active",)):
            raise KeyRefused(f"project {project_id} already has a key")
        if _keys_with(con, scope, ("retired",)):
            raise KeyRefused(
                f"project {project_id} was closed (its key retired): a closed project never gets a key again"
            )
        key_id = _next_id(con, scope)
        _insert(con, key_id, scope, {"person": random_key()})
        event["key_id"] = key_id
    return key_id


def retire_project(con: Connection, project_id: str) -> str:
    """Destroy a closed project's key: its pseudonyms can never be computed again."""
    scope = project_scope(project_id)
    with _transaction(con, "keys.retire", scope) as event:
        active = _keys_with(con, scope, ("active",))
        if not active:
            raise KeyRefused(f"project {project_id} has no active key")
        _retire(con, scope, "active")
        event["key_id"] = active[0].key_id
    return active[0].key_id


# --- internals -------------------------------------------------------------------------------------------


class _transaction:
    """One transaction per key operation, with its audit event (refusals are audited too)."""

    def __init__(self, con: Connection, action: str, scope: str) -> None:
        self.con, self.action, self.scope = con, action, scope
        self.detail: dict[str, str] = {}

    def __enter__(self) -> dict[str, str]:
        create_audit_trail(self.con)
        create_key_store(self.con)
        self.con.execute("begin")
        return self.detail

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        if error is None:
            audit.record(self.con, self.action, self.scope, "done", self.detail)
            self.con.execute("commit")
            return
        self.con.execute("rollback")
        if isinstance(error, KeyRefused):
            audit.record(self.con, self.action, self.scope, "refused", {"error": str(error)})


def _keys_with(con: Connection, scope: str, statuses: tuple[str, ...]) -> list[KeyInfo]:
    return [k for k in list_keys(con) if k.scope == scope and k.status in statuses]


def _next_id(con: Connection, scope: str) -> str:
    row = con.execute("select count(distinct KEY_ID) from keys.key_material where KEY_SCOPE = ?", [scope]).fetchone()
    return f"{scope}-v{(row[0] if row else 0) + 1}"


def _insert(con: Connection, key_id: str, scope: str, keys: dict[str, bytes]) -> None:
    now = datetime.now()
    for domain, key in keys.items():
        material = pads(key)
        con.execute(
            "insert into keys.key_material values (?, ?, ?, 'active', ?, ?, ?, ?, null)",
            [key_id, scope, domain, fingerprint(key), material.ipad, material.opad, now],
        )


def _retire(con: Connection, scope: str, status: str) -> None:
    con.execute(
        "update keys.key_material set KEY_STATUS = 'retired', IPAD = null, OPAD = null, RETIRED_AT = ? "
        "where KEY_SCOPE = ? and KEY_STATUS = ?",
        [datetime.now(), scope, status],
    )


def _tables_in(con: Connection, schema: str) -> set[str]:
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [schema])
    return {r[0].upper() for r in rows.fetchall()}


def _correspondences_not_under(con: Connection, key_id: str) -> list[str]:
    built = _tables_in(con, "keys")
    stale = []
    for name in CORRESPONDENCES:
        if name.upper() not in built:
            stale.append(f"keys.{name}")
            continue
        other = con.execute(f"select count(*) from keys.{name} where key_id <> ?", [key_id]).fetchone()
        if other and other[0]:
            stale.append(f"keys.{name}")
    return stale


def _tables_with_other_pseudonyms(con: Connection) -> list[str]:
    """`snds` columns holding a pseudonym that the active correspondences do not give (or placeholders)."""
    from snds.catalog.committed import load_tables
    from snds.catalog.conventions import IdentifierClass, load_conventions

    placeholders = list(load_conventions().pseudonyms.person_placeholders)
    built = _tables_in(con, "snds")
    stale = []
    for table in load_tables().values():
        if table.name.upper() not in built:
            continue
        for column in table.columns:
            domain = IdentifierClass(column.identifier_class).pseudonym_domain
            if domain is None:
                continue
            found = con.execute(
                f"select count(*) from snds.{table.name} where {column.name} is not null "
                f"and {column.name} not in (select platform_pseudonym from keys.{domain}_pseudonyms) "
                f"and {column.name} not in (select unnest(?::varchar[]))",
                [placeholders],
            ).fetchone()
            if found and found[0]:
                stale.append(f"snds.{table.name}")
                break
    return stale


def as_json(keys: list[KeyInfo]) -> list[dict[str, str | None]]:
    return [asdict(k) for k in keys]
