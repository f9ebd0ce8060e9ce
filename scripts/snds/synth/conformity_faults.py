"""Plant known conformity faults in a synthetic delivery: rows that load, but break a named check.

Each fault is listed with the table, the check (as `snds validate` names it) and the number of rows the check
must count, so a test can compare the report with the truth. Ingestion faults (rows that must be quarantined)
are planted separately, by `snds.synth.faults`.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.conformity.checks import Rules, parent_table
from snds.formats import DATE_FORMAT
from snds.synth.faults import BLOCK, rewritten

Edit = Callable[[dict[str, str]], None]


def _set(column: str, value: str) -> Edit:
    def edit(row: dict[str, str]) -> None:
        row[column] = value

    return edit


def _end_before_start(row: dict[str, str]) -> None:
    start = datetime.strptime(row["EXE_SOI_DTD"], DATE_FORMAT)
    row["EXE_SOI_DTF"] = (start - timedelta(days=3)).strftime(DATE_FORMAT)


def _link(catalog: dict[str, CatalogTable], table: str, parent_template: str) -> str:
    """A link's target as the check names it: `COLUMNS->PARENT_TABLE`."""
    link = next(k for k in catalog[table].links if k.parent_template == parent_template)
    parent = parent_table(link, catalog[table], Rules(catalog, 0, ()))
    if parent is None:
        raise ValueError(f"{table} has no {parent_template} table to link to")
    return f"{'+'.join(link.columns)}->{parent.name}"


def _faults(year: int, catalog: dict[str, CatalogTable]) -> list[tuple[str, str, str, list[Edit], bool]]:
    """(kind, table, check, one edit per faulty row, whether the faulty rows are added as copies)."""
    yy = f"{year % 100:02d}"
    stays, links, diagnoses = f"T_MCO{yy}B", f"T_MCO{yy}C", f"T_MCO{yy}D"
    return [
        ("duplicate_stay", stays, "key_unique:ETA_NUM+RSA_NUM", [lambda _: None] * 2, True),
        (
            "orphan_pharmacy_line",
            "ER_PHA_F",
            f"foreign_key:{_link(catalog, 'ER_PHA_F', 'ER_PRS_F')}",
            [_set("DCT_ORD_NUM", str(999_999_000 + i)) for i in range(3)],
            False,
        ),
        (
            "orphan_diagnosis",
            diagnoses,
            f"foreign_key:{_link(catalog, diagnoses, 'T_MCOaaB')}",
            [_set("RSA_NUM", f"X{i:09d}") for i in range(2)],
            False,
        ),
        (
            "unlinked_person",
            links,
            f"foreign_key:{_link(catalog, links, 'IR_BEN_R')}",
            [_set("NIR_ANO_17", "ZZZZZZZZZZZZZZZZ1")],
            False,
        ),
        (
            "discharge_out_of_year",
            links,
            "date_in_year:EXE_SOI_DTF",
            [_set("EXE_SOI_DTF", f"15JUN{year + 2}:00:00:00")],
            False,
        ),
        ("link_quality", links, "cleaning_flag:link_quality:NIR_RET", [_set("NIR_RET", "1")] * 2, False),
        ("unknown_sex_code", "IR_BEN_R", "code_list:BEN_SEX_COD", [_set("BEN_SEX_COD", "7")] * 2, False),
        ("end_before_start", "ER_PRS_F", "start_before_end:EXE_SOI_DTD+EXE_SOI_DTF", [_end_before_start] * 2, False),
        (
            "birth_after_care",
            "ER_PRS_F",
            "birth_before_event:BEN_NAI_ANN+EXE_SOI_DTD",
            [_set("BEN_NAI_ANN", "2099")],
            False,
        ),
        ("negative_amount", "ER_PRS_F", "negative_amount:BSE_REM_MNT", [_set("BSE_REM_MNT", "-12.50")], False),
        ("missing_person", "ER_PRS_F", "not_null:BEN_NIR_PSA", [_set("BEN_NIR_PSA", "")], False),
        ("short_pseudonym", "KI_CCI_R", "pseudonym_format:BEN_NIR_ANO", [_set("BEN_NIR_ANO", "SHORT")], False),
        ("error_group", stays, "cleaning_flag:error_group:GRG_GHM", [_set("GRG_GHM", "90Z00Z")] * 2, False),
    ]


def _read_head(path: Path, rows: int) -> tuple[list[str], list[dict[str, str]], int]:
    """The header, the first `rows` data rows and the byte offset just after them (one row per line, as the
    generator writes them)."""
    with path.open("rb") as handle:
        lines = [handle.readline() for _ in range(rows + 1)]
        offset = handle.tell()
    reader = csv.DictReader(io.StringIO(b"".join(lines).decode("utf-8"), newline=""), delimiter=";")
    return list(reader.fieldnames or []), list(reader), offset


def _splice(
    path: Path, header: list[str], head: list[dict[str, str]], offset: int, added: list[dict[str, str]]
) -> None:
    """Rewrite `path` as: the header and the (edited) head rows, the rest of the file from `offset` copied as it is,
    then the `added` rows; streamed, never whole in memory."""

    def rows(values: list[dict[str, str]], with_header: bool) -> bytes:
        text = io.StringIO()
        writer = csv.DictWriter(text, header, delimiter=";", quotechar='"', lineterminator="\n")
        if with_header:
            writer.writeheader()
        writer.writerows(values)
        return text.getvalue().encode("utf-8")

    with rewritten(path) as (source, target):
        target.write(rows(head, with_header=True))
        source.seek(offset)
        shutil.copyfileobj(source, target, BLOCK)
        target.write(rows(added, with_header=False))


def plant_conformity_faults(
    out: Path, catalog: dict[str, CatalogTable], rows: dict[str, int], year: int
) -> list[dict[str, str | int]]:
    """Edit (or copy) distinct rows of the delivery's files, updating `rows`; return what validation must count.
    Only the first rows of a file are read and edited; the rest is copied by blocks."""
    faults = _faults(year, catalog)
    needed: dict[str, int] = {}
    for _, table, _, edits, _ in faults:
        needed[table] = needed.get(table, 0) + len(edits)
    heads: dict[str, tuple[list[str], list[dict[str, str]], int, list[dict[str, str]]]] = {}
    planted: list[dict[str, str | int]] = []
    used: dict[str, int] = {}  # rows already edited per table: every fault gets rows of its own
    for kind, table, check, edits, copies in faults:
        if table not in heads:
            heads[table] = (*_read_head(out / f"{table}.csv", needed[table]), [])
        _, head, _, added = heads[table]
        start = used.get(table, 0)
        if len(head) < start + len(edits):
            raise ValueError(f"{table} has too few rows to plant {kind}: generate more patients")
        targets = [dict(r) for r in head[start : start + len(edits)]] if copies else head[start : start + len(edits)]
        for edit, row in zip(edits, targets, strict=True):
            edit(row)
        if copies:
            added += targets
        used[table] = start + len(edits)
        count = 2 * len(edits) if kind == "duplicate_stay" else len(edits)  # a duplicated key fails both rows
        planted.append({"kind": kind, "table": table, "check": check, "count": count})
    for table, (header, head, offset, added) in heads.items():
        path = out / f"{table}.csv"
        _splice(path, header, head, offset, added)
        rows[path.name] += len(added)
    return planted


def count_flagged(con: duckdb.DuckDBPyConnection, out: Path, table: str, column: str, value: str) -> int:
    """Rows of a delivered file whose column holds a value (the flags the generator plants at random), counted by
    DuckDB's reader as it streams the file (ER_PRS_F is several GB at a million persons)."""
    quoted = '"' + column.replace('"', '""') + '"'
    found = con.execute(
        f"select count(*) from read_csv(?, delim=';', header=true, all_varchar=true, quote='\"') where {quoted} = ?",
        [str(out / f"{table}.csv"), value],
    ).fetchall()
    return int(found[0][0])
