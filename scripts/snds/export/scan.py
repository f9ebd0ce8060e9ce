"""The pseudonym scan of an export: every value of every file against the platform's correspondences.

This module reads the written files themselves (DuckDB's `read_parquet` and `read_csv`; an XPT file through
pyreadstat), not the tables they were written from: what is checked is what would leave. A value is a hit when,
as text, it equals an identifier the CNAM delivered or a platform pseudonym, of a person or of a professional
(`keys.person_pseudonyms`, `keys.professional_pseudonyms`, both columns each) or a pseudonym of the previous
platform key (`keys.pseudonym_renewals`, while a renewal runs). An export needs zero hits; a hit is reported by
file, column and count, never by value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.sql import sql_literal

# (table of the keys schema, its columns holding a CNAM identifier or a platform pseudonym)
CORRESPONDENCES = (
    ("person_pseudonyms", ("delivered_identifier", "platform_pseudonym")),
    ("professional_pseudonyms", ("delivered_identifier", "platform_pseudonym")),
    ("pseudonym_renewals", ("previous_pseudonym", "pseudonym")),
)
REQUIRED = ("person_pseudonyms", "professional_pseudonyms")
PSEUDONYMS_TABLE = "export_scan_pseudonyms"


class ScanUnavailable(RuntimeError):
    """The correspondences are not in the database: nothing can be checked, so nothing may leave."""


@dataclass(frozen=True)
class Hit:
    file: str
    column: str
    count: int


def load_pseudonyms(con: duckdb.DuckDBPyConnection) -> int:
    """Every identifier and pseudonym of the correspondences, once, in a temporary table; returns how many."""
    listed = con.execute("select table_name from information_schema.tables where table_schema = 'keys'")
    present = {row[0] for row in listed.fetchall()}
    missing = [t for t in REQUIRED if t not in present]
    if missing:
        raise ScanUnavailable(
            f"no keys.{', keys.'.join(missing)} in the database: the pseudonym scan cannot run (dbt build the base)"
        )
    parts = [
        f"select cast({column} as varchar) as v from keys.{table} where {column} is not null"
        for table, columns in CORRESPONDENCES
        if table in present
        for column in columns
    ]
    union = " union all ".join(parts)
    con.execute(f"create or replace temp table {PSEUDONYMS_TABLE} as select distinct v from ({union})")
    found = con.execute(f"select count(*) from {PSEUDONYMS_TABLE}").fetchall()[0]
    return int(found[0]) if found else 0


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _count_hits(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]]) -> list[int]:
    """Hits per column of `relation`, each column given as (name, SQL expression of its text): one pass over the
    file, every non-null value as a row (unpivot) probing the correspondences' values, hashed once."""
    if not columns:
        return []
    texts = ", ".join(f"{text} as c{n}" for n, (_, text) in enumerate(columns))
    found = con.execute(
        f"select position, count(*) from (unpivot (select {texts} from {relation}) on columns(*) "
        f"into name position value v) as cell join {PSEUDONYMS_TABLE} as known on cell.v = known.v group by position"
    ).fetchall()
    hits = {int(position[1:]): int(count) for position, count in found}
    return [hits.get(n, 0) for n in range(len(columns))]


def scan_file(con: duckdb.DuckDBPyConnection, path: Path, file_format: str) -> list[Hit]:
    """The hits of one written file (Parquet, CSV or XPT): columns with at least one value that is a pseudonym."""
    literal = sql_literal(str(path))
    if file_format == "xpt":
        return _scan_xpt(con, path)
    if file_format == "parquet":
        relation = f"read_parquet({literal})"
    else:  # csv: every value as the text the file holds
        relation = f"read_csv({literal}, delim=';', header=true, all_varchar=true, quote='\"', escape='\"')"
    names = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
    columns = [(name, f"cast({_quoted(name)} as varchar)") for name in names]
    return [
        Hit(path.name, name, n) for (name, _), n in zip(columns, _count_hits(con, relation, columns), strict=True) if n
    ]


def _scan_xpt(con: duckdb.DuckDBPyConnection, path: Path) -> list[Hit]:
    import pyreadstat

    frame, _ = pyreadstat.read_xport(str(path))
    view = "export_scan_xpt"
    con.register(view, frame)
    try:
        columns = []
        for name in frame.columns:
            text = f"cast({_quoted(name)} as varchar)"
            if frame[name].dtype.kind == "f":  # SAS numbers are doubles: 10000002.0 is written 10000002
                value = _quoted(name)
                text = (
                    f"(case when {value} = trunc({value}) and abs({value}) < 1e18 "
                    f"then cast(cast({value} as bigint) as varchar) else cast({value} as varchar) end)"
                )
            columns.append((str(name), text))
        return [
            Hit(path.name, name, n) for (name, _), n in zip(columns, _count_hits(con, view, columns), strict=True) if n
        ]
    finally:
        con.unregister(view)


def file_columns(con: duckdb.DuckDBPyConnection, path: Path, file_format: str) -> list[str]:
    """The column names the file itself declares (Parquet schema, CSV header, XPT variables)."""
    if file_format == "xpt":
        import pyreadstat

        _, meta = pyreadstat.read_xport(str(path), metadataonly=True)
        return list(meta.column_names)
    literal = sql_literal(str(path))
    if file_format == "parquet":
        return [row[0] for row in con.execute(f"describe select * from read_parquet({literal})").fetchall()]
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
    return [name.strip('"') for name in header.split(";")] if header else []
