"""Plant known bad rows in a synthetic delivery, each listed with the reason ingestion must give."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from snds.catalog.committed import CatalogTable
from snds.catalog.sqltypes import DATE, NUMERIC

TARGET_PREFIXES = ("IR_BEN_R", "ER_PRS_F", "T_MCO")
KINDS = ("wrong_field_count", "impossible_date", "text_in_numeric", "string_too_long", "undecodable_bytes")
BLOCK = 1 << 22  # bytes read at a time when a delivery file is rewritten
REASON_CODES = {  # the codes of landing.quarantine (snds.ingest.values and snds.ingest.load)
    "wrong_field_count": "field_count",
    "impossible_date": "impossible_date",
    "text_in_numeric": "not_a_number",
    "string_too_long": "too_long",
    "undecodable_bytes": "encoding",
}


def _bad_line(kind: str, template: list[bytes], table: CatalogTable) -> tuple[bytes, str | None] | None:
    columns = table.columns
    fields = list(template)

    def first(predicate) -> int | None:  # noqa: ANN001
        return next((i for i, c in enumerate(columns) if predicate(c) and not c.name.startswith("BEN_NIR")), None)

    if kind == "wrong_field_count":
        return b";".join(fields[:-2]), None
    if kind == "impossible_date":
        i = first(lambda c: c.sql_type.is_temporal)
        if i is None:
            return None
        fields[i] = b"31/02/2019" if columns[i].sql_type.kind == DATE else b"31FEB2019:00:00:00"
    elif kind == "text_in_numeric":
        i = first(lambda c: c.sql_type.kind == NUMERIC)
        if i is None:
            return None
        fields[i] = b"abc"
    elif kind == "string_too_long":
        i = first(lambda c: c.max_chars is not None and c.max_chars < 100)
        if i is None:
            return None
        fields[i] = b"X" * ((columns[i].max_chars or 0) + 5)
    else:
        i = first(lambda c: c.max_chars is not None)
        if i is None:
            return None
        fields[i] = b"\xff\xfe"
    return b";".join(fields), columns[i].name


def plant_faults(
    out: Path, catalog: dict[str, CatalogTable], rows: dict[str, int], rate: float, seed: int
) -> list[dict]:
    """Insert bad rows in the target files (updating `rows`) and return what ingestion must report. Each file is
    streamed once by blocks into its new version: a few GB at a million persons, never held in memory."""
    faults: list[dict] = []
    for name in sorted(rows):
        table_name = name.removesuffix(".csv")
        if not table_name.startswith(TARGET_PREFIXES) or not rows[name] or not table_name.endswith(("_R", "_F", "B")):
            continue
        path, count = out / name, rows[name]
        with path.open("rb") as source:
            source.readline()
            template = source.readline().rstrip(b"\n").split(b";")
        wanted = max(len(KINDS), round(rate * count))
        bad: list[tuple[bytes, dict]] = []
        for n in range(wanted):
            kind = KINDS[n % len(KINDS)]
            made = _bad_line(kind, template, catalog[table_name])
            if made is not None:
                fault = {"table": table_name, "file": name, "kind": kind, "reason_code": REASON_CODES[kind]}
                bad.append((made[0], fault | {"column": made[1]}))
        step = max(1, count // (len(bad) + 1))
        after = range((-(1 + seed)) % step, count, step)[: len(bad)]  # the data lines each bad row follows
        placed = [*after, *([count - 1] * (len(bad) - len(after)))]  # the rest at the end
        for k, (line, (_, fault)) in enumerate(zip(placed, bad, strict=True), start=1):
            faults.append(fault | {"line": line + 2 + k})  # the header is line 1, k bad rows before and this one
        _insert_lines(path, [(line, text) for line, (text, _) in zip(placed, bad, strict=True)])
        rows[name] = count + len(bad)
    return faults


def _insert_lines(path: Path, inserts: list[tuple[int, bytes]]) -> None:
    """Rewrite `path` with each (data line index, text) inserted after that data line, in order, copying the file
    by blocks (newlines counted by `bytes.count`, not by a Python loop over lines)."""
    with rewritten(path) as (source, target):
        target.write(source.readline())  # the header
        copier = _LineCopier(source, target)
        done = 0
        for line, text in inserts:
            copier.copy(line + 1 - done)
            done = line + 1
            target.write(text + b"\n")
        copier.rest()


@contextmanager
def rewritten(path: Path) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The file to read and its new version to write, which replaces it when the block ends without error."""
    partial = path.with_name(path.name + ".partial")
    with path.open("rb") as source, partial.open("wb") as target:
        yield source, target
    partial.replace(path)


class _LineCopier:
    def __init__(self, source: BinaryIO, target: BinaryIO) -> None:
        self.source, self.target, self.pending = source, target, b""

    def copy(self, lines: int) -> None:
        """Copy the next `lines` lines."""
        while lines > 0:
            if not self.pending:
                self.pending = self.source.read(BLOCK)
                if not self.pending:
                    raise ValueError(f"{self.source.name}: fewer lines than its row count")
            found = self.pending.count(b"\n")
            if found < lines:
                self.target.write(self.pending)
                lines -= found
                self.pending = b""
                continue
            end = -1
            for _ in range(lines):
                end = self.pending.index(b"\n", end + 1)
            self.target.write(self.pending[: end + 1])
            self.pending = self.pending[end + 1 :]
            lines = 0

    def rest(self) -> None:
        self.target.write(self.pending)
        shutil.copyfileobj(self.source, self.target, BLOCK)
