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
    con.execute("create or replace temp table delivered_identifiers (value varchar)")
    con.executemany("insert into delivered_identifiers values (?)", [(v,) for v in sorted(identifiers)])
    columns = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and data_type = 'VARCHAR' order by table_name, column_name",
        [schema],
    ).fetchall()
    survivors = []
    for table, column in columns:
        if only_columns is not None and column.upper() not in only_columns:
            continue
        found = con.execute(
            f'select count(*) from {schema}."{table}" where "{column}" in (select value from delivered_identifiers)'
        ).fetchone()
        if found and found[0]:
            survivors.append(f"{table}.{column}")
    return survivors


def identifier_columns(catalog: Catalog, domain: str) -> set[str]:
    return {c.name.upper() for t in catalog.tables for c in t.pseudonymised_columns(domain)}
