"""Plant known conformity faults in a synthetic delivery: rows that load, but break a named check.

Each fault is listed with the table, the check (as `snds validate` names it) and the number of rows the check
must count, so a test can compare the report with the truth. Ingestion faults (rows that must be quarantined)
are planted separately, by `snds.synth.faults`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.conformity.checks import Rules, parent_table
from snds.formats import DATE_FORMAT

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


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, header, delimiter=";", quotechar='"', lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def plant_conformity_faults(
    out: Path, catalog: dict[str, CatalogTable], rows: dict[str, int], year: int
) -> list[dict[str, str | int]]:
    """Edit (or copy) distinct rows of the delivery's files, updating `rows`; return what validation must count."""
    planted: list[dict[str, str | int]] = []
    used: dict[str, int] = {}  # rows already edited per table: every fault gets rows of its own
    for kind, table, check, edits, copies in _faults(year, catalog):
        path = out / f"{table}.csv"
        header, data = _read(path)
        start = used.get(table, 0)
        if len(data) < start + len(edits):
            raise ValueError(f"{table} has too few rows to plant {kind}: generate more patients")
        targets = [dict(r) for r in data[start : start + len(edits)]] if copies else data[start : start + len(edits)]
        for edit, row in zip(edits, targets, strict=True):
            edit(row)
        if copies:
            data += targets
        used[table] = start + len(edits)
        _write(path, header, data)
        rows[path.name] = len(data)
        count = 2 * len(edits) if kind == "duplicate_stay" else len(edits)  # a duplicated key fails both rows
        planted.append({"kind": kind, "table": table, "check": check, "count": count})
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
