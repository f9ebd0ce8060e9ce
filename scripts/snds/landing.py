"""The `landing` schema on DuckDB: one typed table per SNDS physical table, as the catalog declares it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable

LANDING_SCHEMA = "landing"


class LandingError(Exception):
    """The landing schema cannot be brought in line with the catalog."""


@dataclass(frozen=True)
class LandingReport:
    created: int
    unchanged: int
    recreated: int


def create_table_sql(table: CatalogTable, schema: str = LANDING_SCHEMA) -> str:
    columns = ",\n".join(f"    {c.name} {c.data_type}" for c in table.columns)
    return f"create table {schema}.{table.name} (\n{columns}\n)"


def _existing_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = ? order by table_name, ordinal_position",
        [LANDING_SCHEMA],
    ).fetchall()
    existing: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        existing.setdefault(table.upper(), []).append((column.upper(), data_type))
    return existing


def _expected_columns(con: duckdb.DuckDBPyConnection, table: CatalogTable) -> list[tuple[str, str]]:
    casts = ", ".join(f"cast(null as {c.data_type}) as {c.name}" for c in table.columns)
    described = con.execute(f"select {casts} limit 0").description or []
    return [(name.upper(), str(type_code)) for name, type_code, *_ in described]


def init_landing(
    database: Path,
    tables: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
) -> LandingReport:
    """Create every missing landing table; recreate empty ones whose columns no longer match the catalog.

    A non-empty table that no longer matches is an error: data is never dropped silently.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    created = unchanged = recreated = 0
    with duckdb.connect(str(database)) as con:
        con.execute(f"create schema if not exists {LANDING_SCHEMA}")
        existing = _existing_columns(con)
        con.execute("begin")
        for table in tables.values():
            current = existing.get(table.name.upper())
            if current is None:
                con.execute(create_table_sql(table))
                created += 1
            elif current == _expected_columns(con, table):
                unchanged += 1
            else:
                rows = con.execute(f"select count(*) from {LANDING_SCHEMA}.{table.name}").fetchone()
                if rows and rows[0]:
                    con.execute("rollback")
                    raise LandingError(
                        f"landing.{table.name} holds {rows[0]} rows but its columns differ from the catalog; "
                        "migrate or drop it explicitly"
                    )
                con.execute(f"drop table {LANDING_SCHEMA}.{table.name}")
                con.execute(create_table_sql(table))
                recreated += 1
            progress(1)
        con.execute("commit")
    return LandingReport(created, unchanged, recreated)
