"""Small-cell suppression of published counts, with secondary suppression (statistical disclosure control).

A published table is a set of cells (counts of persons) tied by sums: a total is the sum of its parts (a step of
an attrition is the next step plus the persons it excluded; a year is the sum of its sexes, or of its age bands).
A count above 0 and below the threshold is suppressed (primary). Then, so that it cannot be recomputed from what
is still shown, more cells are suppressed (secondary) until:
- no suppressed cell is determined by the shown cells through the sums (any linear combination of them, not
  only one sum at a time: the suppressed cells' system is put in reduced row echelon form, exactly, in
  fractions; a cell is determined when a row of it is that cell alone);
- no sum with a shown total has suppressed parts that add up to a small count (the group they form together
  would be a small cell).
The cell added is a shown count above 0 of a sum that holds the exposed cell (zeros are shown: they cannot help
hide anything): the one of lowest rank (the caller ranks the cells it would rather keep, such as the cohort's size,
above the detail; by default a total ranks above a part), then the smallest, then the first in the table's order,
so the result is reproducible. Which cells were suppressed first is never published: every suppressed cell reads
alike.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

Cell = Hashable


@dataclass(frozen=True)
class Sum:
    """total = sum of parts."""

    total: Cell
    parts: tuple[Cell, ...]

    @property
    def cells(self) -> tuple[Cell, ...]:
        return (self.total, *self.parts)


class SuppressionError(ValueError):
    """The table is inconsistent (a sum does not add up) or names a cell it has no count for."""


def suppress(
    counts: Mapping[Cell, int], sums: Sequence[Sum], threshold: int, rank: Callable[[Cell], int] | None = None
) -> frozenset[Cell]:
    """The cells to hide: every count in [1, threshold) and what protects them (cells of low rank first)."""
    _check_table(counts, sums)
    totals = {s.total for s in sums}
    ranked = rank or (lambda cell: int(cell in totals))
    order = {cell: (ranked(cell), counts[cell], n) for n, cell in enumerate(counts)}
    hidden = {cell for cell, value in counts.items() if 0 < value < threshold}
    while True:
        found = determined(sums, hidden)
        if found:  # the smallest worked-out cell: hide the first shown cell (in order) that hides it again
            exposed = min(found, key=order.__getitem__)
            candidates = _candidates(counts, sums, hidden, exposed, order)
            freeing = (c for c in candidates if exposed not in determined(sums, hidden | {c}))
            hidden.add(next(freeing, candidates[0]))
            continue
        group = _small_group(counts, sums, hidden, threshold)
        if group is None:
            return frozenset(hidden)
        hidden.add(min((p for p in group.parts if p not in hidden and counts[p] > 0), key=order.__getitem__))


def determined(sums: Sequence[Sum], hidden: set[Cell] | frozenset[Cell]) -> set[Cell]:
    """The hidden cells that the shown cells determine through the sums."""
    columns = sorted(hidden, key=repr)
    index = {cell: n for n, cell in enumerate(columns)}
    rows = []
    for s in sums:
        row = [Fraction(0)] * len(columns)
        for cell, sign in ((s.total, 1), *((p, -1) for p in s.parts)):
            if cell in index:
                row[index[cell]] += sign
        if any(row):
            rows.append(row)
    return {columns[_single(row)] for row in _reduced_row_echelon(rows) if _single(row) is not None}


def _small_group(counts: Mapping[Cell, int], sums: Sequence[Sum], hidden: set[Cell], threshold: int) -> Sum | None:
    """A sum whose total is shown and whose hidden parts add up to a small count (a small group), or None."""
    for s in sums:
        grouped = sum(counts[p] for p in s.parts if p in hidden)
        if s.total not in hidden and 0 < grouped < threshold:
            return s
    return None


def _candidates(
    counts: Mapping[Cell, int], sums: Sequence[Sum], hidden: set[Cell], exposed: Cell, order: dict[Cell, tuple]
) -> list[Cell]:
    """Shown counts above 0 that could hide `exposed` again, in order: those of its sums, else those of any sum
    that holds a hidden cell."""
    for scope in ([s for s in sums if exposed in s.cells], [s for s in sums if hidden & set(s.cells)]):
        candidates = {cell for s in scope for cell in s.cells if cell not in hidden and counts[cell] > 0}
        if candidates:
            return sorted(candidates, key=order.__getitem__)
    raise SuppressionError("no shown count is left to protect a suppressed one")  # every cell is hidden or 0


def _check_table(counts: Mapping[Cell, int], sums: Sequence[Sum]) -> None:
    for s in sums:
        missing = [cell for cell in s.cells if cell not in counts]
        if missing:
            raise SuppressionError(f"sum of {s.total!r} names cells without a count: {missing!r}")
        if counts[s.total] != sum(counts[p] for p in s.parts):
            raise SuppressionError(f"sum of {s.total!r} does not add up: the table is inconsistent")
    negative = [cell for cell, value in counts.items() if value < 0]
    if negative:
        raise SuppressionError(f"negative counts: {negative!r}")


def _single(row: list[Fraction]) -> int | None:
    nonzero = [n for n, value in enumerate(row) if value]
    return nonzero[0] if len(nonzero) == 1 else None


def _reduced_row_echelon(rows: list[list[Fraction]]) -> list[list[Fraction]]:
    """Gauss-Jordan elimination in exact fractions (the tables are small: a few hundred cells at most)."""
    rows = [list(r) for r in rows]
    pivot_row = 0
    width = len(rows[0]) if rows else 0
    for column in range(width):
        pivot = next((r for r in range(pivot_row, len(rows)) if rows[r][column]), None)
        if pivot is None:
            continue
        rows[pivot_row], rows[pivot] = rows[pivot], rows[pivot_row]
        lead = rows[pivot_row][column]
        rows[pivot_row] = [value / lead for value in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][column]:
                factor = rows[r][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivot_row += 1
    return rows[:pivot_row]
