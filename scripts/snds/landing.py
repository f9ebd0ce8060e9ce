"""The `landing` schema: one typed table per SNDS physical table, as the catalog declares it (DuckDB or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snds import engine
from snds.audit import create_audit_trail
from snds.catalog.committed import CatalogTable
from snds.engine import Connection, engine_of, stored_name
from snds.keys.store import create_key_store

LANDING_SCHEMA = "landing"
# Provenance of every landed row: which delivery, which file of it.
PROVENANCE_COLUMNS = (("DELIVERY_ID", "varchar(128)"), ("DELIVERY_FILE", "varchar(255)"))

BOOKKEEPING_DDL = (
    "create schema if not exists landing",
    """create table if not exists landing.deliveries (
    DELIVERY_ID varchar(128) primary key,
    MANIFEST_SHA256 varchar(64) not null,
    STATUS varchar(16) not null,
    LOADED_AT timestamp not null,
    FILE_COUNT integer not null,
    ROW_COUNT bigint not null,
    LOADED_COUNT bigint not null,
    QUARANTINED_COUNT bigint not null
)""",
    """create table if not exists landing.delivery_files (
    DELIVERY_ID varchar(128) not null,
    FILE_NAME varchar(255) not null,
    TABLE_NAME varchar(128) not null,
    ENCODING varchar(16) not null,
    SHA256 varchar(64) not null,
    BYTE_COUNT bigint not null,
    ROW_COUNT bigint not null,
    LOADED_COUNT bigint not null,
    QUARANTINED_COUNT bigint not null,
    primary key (DELIVERY_ID, FILE_NAME)
)""",
    # What each delivery brings under its tables' delivery policies (catalog): for an append table, one row per
    # flow month it holds (PERIOD_START, the month's first day); for a replaced table, one row (PERIOD_START null).
    # EXTRACTED_ON: the manifest's extraction date, else the day of loading. Ingestion refuses what breaks a policy.
    """create table if not exists landing.delivery_periods (
    DELIVERY_ID varchar(128) not null,
    TABLE_NAME varchar(128) not null,
    DELIVERY_POLICY varchar(16) not null,
    PERIOD_START date,
    EXTRACTED_ON date not null
)""",
    # Incremental staging (macros/staging): which promoted deliveries each model has applied, and under which
    # definition and keys it was built (a change of either rebuilds it: drop_stale_increments). Written by the
    # models' own hooks and the run's on-run-end hook; no primary key, as a hook deletes and inserts a model's rows
    # in one transaction.
    """create table if not exists landing.applied_deliveries (
    MODEL_NAME varchar(128) not null,
    DELIVERY_ID varchar(128) not null,
    APPLIED_AT timestamp not null
)""",
    """create table if not exists landing.model_builds (
    MODEL_NAME varchar(128) not null,
    DEFINITION_SHA256 varchar(64) not null,
    KEY_IDS varchar(256),
    BUILT_AT timestamp not null
)""",
    # One row per problem of a quarantined line: per failing column, or one for the whole line (COLUMN_NAME null:
    # field count, encoding). REASON is in the platform's words and never quotes the value; RAW_TEXT keeps the
    # delivered line, in the database only.
    """create table if not exists landing.quarantine (
    DELIVERY_ID varchar(128) not null,
    TABLE_NAME varchar(128) not null,
    FILE_NAME varchar(255) not null,
    LINE_NUMBER bigint,
    COLUMN_NAME varchar(128),
    REASON_CODE varchar(32) not null,
    EXPECTED varchar(64),
    REASON varchar(4000) not null,
    RAW_TEXT varchar
)""",
    # Rows per month of the tables with a volume rule, per validated delivery (what the next one is compared with).
    """create table if not exists landing.delivery_volumes (
    DELIVERY_ID varchar(128) not null,
    TABLE_NAME varchar(128) not null,
    TEMPLATE varchar(128) not null,
    VOLUME_MONTH date,
    ROW_COUNT bigint not null
)""",
    # `snds validate`: one row per validation of a delivery (the latest is its report), then what it found.
    """create table if not exists landing.validations (
    DELIVERY_ID varchar(128) not null,
    VALIDATED_AT timestamp not null,
    STATUS varchar(16) not null,
    primary key (DELIVERY_ID, VALIDATED_AT)
)""",
    # Per delivered table: the ingestion's counts (landing.delivery_files) and the rows the checks read.
    """create table if not exists landing.conformity_tables (
    DELIVERY_ID varchar(128) not null,
    VALIDATED_AT timestamp not null,
    TABLE_NAME varchar(128) not null,
    ROW_COUNT bigint not null,
    LOADED_COUNT bigint not null,
    QUARANTINED_COUNT bigint not null,
    ROWS_CHECKED bigint not null,
    OUTCOME varchar(8) not null,
    primary key (DELIVERY_ID, VALIDATED_AT, TABLE_NAME)
)""",
    # One row per check: TABLE_NAME null for a check of the whole delivery; OUTCOME pass, info, warn, error or
    # skipped (NOTE says why; no counts). TARGET is what threshold column patterns match (column, A+B, A->PARENT).
    """create table if not exists landing.conformity_results (
    DELIVERY_ID varchar(128) not null,
    VALIDATED_AT timestamp not null,
    CHECK_ORDER integer not null,
    TABLE_NAME varchar(128),
    CHECK_NAME varchar(512) not null,
    CHECK_KIND varchar(64) not null,
    CATEGORY varchar(32) not null,
    TARGET varchar(512) not null,
    ROWS_CHECKED bigint,
    FAILING bigint,
    SEVERITY varchar(8) not null,
    MAX_FAILING_SHARE double precision not null,
    OUTCOME varchar(8) not null,
    NOTE varchar(4000),
    primary key (DELIVERY_ID, VALIDATED_AT, CHECK_ORDER)
)""",
    # The examples of failed checks as a report shows them (identifiers as platform pseudonyms), one value a row.
    """create table if not exists landing.conformity_examples (
    DELIVERY_ID varchar(128) not null,
    VALIDATED_AT timestamp not null,
    CHECK_ORDER integer not null,
    EXAMPLE_ROW integer not null,
    COLUMN_POSITION integer not null,
    COLUMN_NAME varchar(128) not null,
    SHOWN_VALUE varchar(4000)
)""",
)


class LandingError(Exception):
    """The landing schema cannot be brought in line with the catalog."""


@dataclass(frozen=True)
class LandingReport:
    created: int
    unchanged: int
    recreated: int


def landing_columns(table: CatalogTable) -> list[tuple[str, str]]:
    """A landing table's (name, type): the catalog's columns, then the provenance columns."""
    return [(c.name, c.data_type) for c in table.columns] + list(PROVENANCE_COLUMNS)


def create_table_sql(table: CatalogTable, schema: str = LANDING_SCHEMA, name: str | None = None) -> str:
    """The table's DDL, names unquoted (each engine folds them its way: the dbt sources read them unquoted)."""
    columns = ",\n".join(f"    {column} {data_type}" for column, data_type in landing_columns(table))
    return f"create table {schema + '.' if schema else ''}{name or table.name} (\n{columns}\n)"


def create_bookkeeping(con: Connection) -> None:
    """Deliveries, their files, the quarantine, the audit trail and the key store (idempotent)."""
    for statement in BOOKKEEPING_DDL:
        con.execute(statement)
    create_audit_trail(con)
    create_key_store(con)


_COLUMNS = (
    "select table_name, column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
    "from information_schema.columns where table_schema = ? and table_name not in "
    "('deliveries', 'delivery_files', 'quarantine', 'delivery_volumes') order by table_name, ordinal_position"
)
_EXPECTED = "snds_expected_columns"  # a temporary table of the columns a landing table should have (PostgreSQL)


def _type_text(data_type: str, length: int | None, precision: int | None, scale: int | None) -> str:
    """A column's type as information_schema spells it, with its length or precision (PostgreSQL gives them apart;
    DuckDB writes `DECIMAL(10,2)` whole and keeps no varchar length)."""
    if length:
        return f"{data_type}({length})"
    if data_type == "numeric":
        return f"numeric({precision},{scale})"
    return data_type


def _existing_columns(con: Connection) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each landing table as the database spells it, with its (column, type) list, by case-folded name: SQL names
    are case-insensitive, so a table spelt otherwise than in the catalog is found, and seen to differ."""
    existing: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for table, column, *kind in con.execute(_COLUMNS, [LANDING_SCHEMA]).fetchall():
        existing.setdefault(table.casefold(), (table, []))[1].append((column, _type_text(*kind)))
    return existing


def _expected_columns(con: Connection, table: CatalogTable) -> list[tuple[str, str]]:
    if engine_of(con) == "postgres":  # the engine's own spelling, from a temporary table of the catalog's columns
        con.execute(create_table_sql(table, schema="", name=_EXPECTED).replace("create table", "create temp table"))
        try:
            own = "table_schema = (select nspname from pg_namespace where oid = pg_my_temp_schema())"
            rows = con.execute(_COLUMNS.replace("table_schema = ?", own)).fetchall()
            return [(column, _type_text(*kind)) for name, column, *kind in rows if name == _EXPECTED]
        finally:
            con.execute(f"drop table {_EXPECTED}")
    casts = ", ".join(f"cast(null as {data_type}) as {name}" for name, data_type in landing_columns(table))
    described = con.execute(f"select {casts} limit 0").description or []
    return [(name, str(type_code)) for name, type_code, *_ in described]


def ensure_landing_tables(
    con: Connection,
    tables: list[CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
) -> LandingReport:
    """Within the caller's transaction: create missing tables, recreate empty ones that no longer match.

    A non-empty table that no longer matches the catalog is an error: data is never dropped silently.
    """
    created = unchanged = recreated = 0
    existing = _existing_columns(con)
    for table in tables:
        spelt, current = existing.get(table.name.casefold(), (table.name, None))
        if current is None:
            con.execute(create_table_sql(table))
            created += 1
        elif spelt == stored_name(con, table.name) and current == _expected_columns(con, table):
            unchanged += 1
        else:
            rows = con.execute(f"select count(*) from {LANDING_SCHEMA}.{table.name}").fetchone()
            if rows and rows[0]:
                raise LandingError(
                    f"landing.{spelt} holds {rows[0]} rows but its name or columns differ from the catalog; "
                    "migrate or drop it explicitly"
                )
            con.execute(f"drop table {LANDING_SCHEMA}.{table.name}")
            con.execute(create_table_sql(table))
            recreated += 1
        progress(1)
    return LandingReport(created, unchanged, recreated)


def init_landing(
    database: Path | None,
    tables: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
    target: str = "duckdb",
) -> LandingReport:
    """Bring the whole landing schema in line with the catalog, in one transaction (the DuckDB file `database`, or
    the PostgreSQL server)."""
    with engine.connect(target, database, create=True) as con:
        create_bookkeeping(con)
        con.execute("begin")
        try:
            report = ensure_landing_tables(con, list(tables.values()), progress)
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")
    return report
