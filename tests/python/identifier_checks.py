"""Look for the CNAM's identifiers where only platform pseudonyms may be."""

from __future__ import annotations

import duckdb

from snds.catalog.build import Catalog
from snds.catalog.conventions import load_conventions


def delivered_identifiers(con: duckdb.DuckDBPyConnection, catalog: Catalog, domain: str) -> set[str]:
    """Every value of every direct identifier column of one domain (person, professional) in landing, but the PMSI's
    placeholders for an unknown patient: they identify nobody, and staging keeps them as delivered."""
    values: set[str] = set()
    for table in catalog.tables:
        for column in table.pseudonymised_columns(domain):
            rows = con.execute(
                f"select distinct {column.name} from landing.{table.name} where {column.name} is not null"
            )
            values.update(v for (v,) in rows.fetchall())
    placeholders = load_conventions().pseudonyms.person_placeholders if domain == "person" else ()
    return values.difference(placeholders)


def surviving_identifiers(
    con: duckdb.DuckDBPyConnection, identifiers: set[str], only_columns: set[str] | None = None, schema: str = "snds"
) -> list[str]:
    """`table.column` of the text columns of `schema` (or only those named) that hold one of `identifiers`."""
    con.execute(
        "create or replace temp table delivered_identifiers as select unnest(?::varchar[]) as value",
        [sorted(identifiers)],
    )
    columns = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and data_type = 'VARCHAR' order by table_name, column_name",
        [schema],
    ).fetchall()
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        if only_columns is None or column.upper() in only_columns:
            by_table.setdefault(table, []).append(column)
    survivors = []
    for table, names in by_table.items():  # one scan of each table: its text values, one row per column
        listed = ", ".join(f'"{c}"' for c in names)
        found = con.execute(
            f'select distinct column_name from (unpivot {schema}."{table}" on {listed} '
            "into name column_name value column_value) where column_value in (select value from delivered_identifiers)"
        ).fetchall()
        survivors += sorted(f"{table}.{column}" for (column,) in found)
    return survivors


def identifier_columns(catalog: Catalog, domain: str) -> set[str]:
    return {c.name.upper() for t in catalog.tables for c in t.pseudonymised_columns(domain)}
