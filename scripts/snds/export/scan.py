"""The pseudonym scan of an export: every value of every file against the platform's correspondences.

This module reads the written files themselves (DuckDB's `read_parquet` and `read_csv`; an XPT file through
pyreadstat), not the tables they were written from: what is checked is what would leave. A value is a hit when,
as text, it equals an identifier the CNAM delivered or a platform pseudonym, of a person or of a professional
(`keys.person_pseudonyms`, `keys.professional_pseudonyms`, both columns each) or a pseudonym of the previous
platform key (`keys.pseudonym_renewals`, while a renewal runs). An export needs zero hits; a hit is reported by
file, column and count, never by value.

One query scans every file: each file's non-null values, as text, one row per value (unpivot), semi-joined to the
correspondences' columns; DuckDB builds its hash table on the smaller side (the files' values, for a project's
extracts), so the correspondences are read once and never copied.
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


class ScanUnavailable(RuntimeError):
    """The correspondences are not in the database: nothing can be checked, so nothing may leave."""


@dataclass(frozen=True)
class Hit:
    file: str
    column: str
    count: int


def scan_files(con: duckdb.DuckDBPyConnection, files: list[tuple[Path, str]]) -> list[Hit]:
    """The hits of the written files, each (path, format: parquet, csv or xpt): for each column of each file, how
    many of its values are an identifier or pseudonym of the correspondences (ScanUnavailable without them)."""
    listed = con.execute("select table_name from information_schema.tables where table_schema = 'keys'")
    present = {row[0] for row in listed.fetchall()}
    missing = [t for t in REQUIRED if t not in present]
    if missing:
        raise ScanUnavailable(
            f"no keys.{', keys.'.join(missing)} in the database: the pseudonym scan cannot run (dbt build the base)"
        )
    known = " union all ".join(
        f"select cast({column} as varchar) as v from keys.{table}"
        for table, columns in CORRESPONDENCES
        if table in present
        for column in columns
    )
    views: list[str] = []
    try:
        cells, names = [], []
        for index, (path, file_format) in enumerate(files):
            relation, columns = _relation(con, path, file_format, f"export_scan_{index}", views)
            names.append(columns)
            if columns:
                texts = ", ".join(f"{text} as c{n}" for n, (_, text) in enumerate(columns))
                cells.append(
                    f"select {index} as file_index, position, v from (unpivot (select {texts} from {relation}) "
                    "on columns(*) into name position value v)"
                )
        if not cells:
            return []
        found = con.execute(
            f"with known as ({known}), cells as ({' union all '.join(cells)}) "
            "select file_index, position, count(*) from cells where v in (select v from known) "
            "group by file_index, position order by file_index, position"
        ).fetchall()
    finally:
        for view in views:
            con.unregister(view)
    ordered = sorted((int(f), int(position[1:]), int(count)) for f, position, count in found)
    return [Hit(files[f][0].name, names[f][n][0], count) for f, n, count in ordered]


def _quoted(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _relation(
    con: duckdb.DuckDBPyConnection, path: Path, file_format: str, view: str, views: list[str]
) -> tuple[str, list[tuple[str, str]]]:
    """How to read one file, and its columns as (name, SQL expression of the value as text)."""
    literal = sql_literal(str(path))
    if file_format == "xpt":
        import pyreadstat

        frame, _ = pyreadstat.read_xport(str(path))
        con.register(view, frame)
        views.append(view)
        columns = []
        for name in frame.columns:
            value = _quoted(str(name))
            text = f"cast({value} as varchar)"
            if frame[name].dtype.kind == "f":  # SAS numbers are doubles: 10000002.0 is written 10000002
                text = (
                    f"(case when {value} = trunc({value}) and abs({value}) < 1e18 "
                    f"then cast(cast({value} as bigint) as varchar) else {text} end)"
                )
            columns.append((str(name), text))
        return view, columns
    if file_format == "parquet":
        relation = f"read_parquet({literal})"
    else:  # csv: every value as the text the file holds
        relation = f"read_csv({literal}, delim=';', header=true, all_varchar=true, quote='\"', escape='\"')"
    names = [row[0] for row in con.execute(f"describe select * from {relation}").fetchall()]
    return relation, [(name, f"cast({_quoted(name)} as varchar)") for name in names]


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
