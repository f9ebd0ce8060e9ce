"""Small-cell suppression: no suppressed count can be worked out from what is shown, checked by brute force."""

from __future__ import annotations

import random

import pytest

from snds.projects.small_cells import Sum, SuppressionError, determined, suppress

THRESHOLD = 11


def feasible_values(counts: dict, sums: list[Sum], hidden: frozenset) -> dict:
    """Values each hidden cell can take, given the shown cells, the sums and counts >= 0: a search that fills in
    what one sum forces and tries every value of a cell nothing forces (it stops once each cell has two)."""
    bound = max(counts.values())
    seen: dict = {cell: set() for cell in hidden}

    def search(known: dict) -> None:
        known = dict(known)
        changed = True
        while changed:
            changed = False
            for s in sums:
                unknown = [c for c in s.cells if c not in known]
                signed = sum(known[p] for p in s.parts if p in known)
                if not unknown:
                    if known[s.total] != signed:
                        return
                elif len(unknown) == 1:
                    cell = unknown[0]
                    value = signed if cell == s.total else known[s.total] - signed
                    if not 0 <= value <= bound:
                        return
                    known[cell], changed = value, True
        free = sorted((c for c in hidden if c not in known), key=repr)
        if not free:
            for cell in hidden:
                seen[cell].add(known[cell])
            return
        for value in range(bound + 1):
            if all(len(values) > 1 for values in seen.values()):
                return
            search({**known, free[0]: value})

    search({cell: value for cell, value in counts.items() if cell not in hidden})
    return seen


def attrition(persons: list[int]) -> tuple[dict, list[Sum]]:
    counts = {("persons", 1): persons[0]}
    sums = []
    for step in range(2, len(persons) + 1):
        counts[("persons", step)] = persons[step - 1]
        counts[("excluded", step)] = persons[step - 2] - persons[step - 1]
        sums.append(Sum(("persons", step - 1), (("persons", step), ("excluded", step))))
    return counts, sums


def two_way(grid: list[list[int]]) -> tuple[dict, list[Sum]]:
    """A table with its row totals, column totals and grand total."""
    counts: dict = {}
    sums = []
    rows, columns = range(len(grid)), range(len(grid[0]))
    for r in rows:
        for c in columns:
            counts[(r, c)] = grid[r][c]
    for r in rows:
        counts[(r, "all")] = sum(grid[r])
        sums.append(Sum((r, "all"), tuple((r, c) for c in columns)))
    for c in columns:
        counts[("all", c)] = sum(grid[r][c] for r in rows)
        sums.append(Sum(("all", c), tuple((r, c) for r in rows)))
    counts[("all", "all")] = sum(map(sum, grid))
    sums.append(Sum(("all", "all"), tuple(("all", c) for c in columns)))
    sums.append(Sum(("all", "all"), tuple((r, "all") for r in rows)))
    return counts, sums


def assert_protected(counts: dict, sums: list[Sum], hidden: frozenset) -> None:
    assert {cell for cell, value in counts.items() if 0 < value < THRESHOLD} <= hidden
    assert not {cell for cell in hidden if counts[cell] == 0}, "a zero is shown, never hidden"
    for cell, values in feasible_values(counts, sums, hidden).items():
        assert len(values) > 1, f"{cell} can be worked out from the shown cells"
    for s in sums:  # hidden parts of a shown total do not form a small group together
        grouped = sum(counts[p] for p in s.parts if p in hidden)
        assert s.total in hidden or grouped == 0 or grouped >= THRESHOLD


def test_nothing_small_nothing_hidden():
    counts, sums = attrition([500, 300, 120])
    assert suppress(counts, sums, THRESHOLD) == frozenset()


def test_a_small_exclusion_hides_a_neighbour_so_it_cannot_be_subtracted():
    counts, sums = attrition([168, 163, 64])  # step 2 excludes 5 persons
    hidden = suppress(counts, sums, THRESHOLD)
    assert ("excluded", 2) in hidden and len(hidden) >= 2
    assert_protected(counts, sums, hidden)


def test_a_chain_of_small_steps_is_protected_along_the_chain():
    counts, sums = attrition([40, 34, 30, 29])
    hidden = suppress(counts, sums, THRESHOLD)
    assert_protected(counts, sums, hidden)


def test_one_small_cell_in_a_two_way_table_hides_a_rectangle():
    counts, sums = two_way([[20, 30, 4], [25, 15, 40]])
    hidden = suppress(counts, sums, THRESHOLD)
    assert (0, 2) in hidden
    assert len({c for c in hidden if "all" not in c}) >= 4  # a cell alone in its row or column would be recomputed
    assert_protected(counts, sums, hidden)


def test_zeros_are_shown_and_cannot_hide_a_small_cell():
    counts, sums = two_way([[0, 30, 3], [0, 15, 40]])
    hidden = suppress(counts, sums, THRESHOLD)
    assert (0, 0) not in hidden and (1, 0) not in hidden
    assert_protected(counts, sums, hidden)


def test_hidden_parts_of_a_shown_total_never_add_up_to_a_small_group():
    counts = {"total": 40, "a": 3, "b": 4, "c": 33}
    sums = [Sum("total", ("a", "b", "c"))]
    hidden = suppress(counts, sums, THRESHOLD)
    assert hidden == {"a", "b", "c"}  # a + b = 7 would be a small group: c is hidden too
    assert_protected(counts, sums, hidden)


@pytest.mark.parametrize("seed", range(12))
def test_random_small_tables_are_protected(seed):
    rng = random.Random(seed)
    grid = [[rng.choice([0, 1, 2, 5, 9, 12, 15, 30]) for _ in range(3)] for _ in range(2)]
    counts, sums = two_way(grid)
    hidden = suppress(counts, sums, THRESHOLD)
    assert_protected(counts, sums, hidden)


def test_determined_sees_a_combination_of_sums_not_only_one_sum():
    # a = t - b and b = u - c, with t, u and c shown: a is determined though no one sum shows it alone
    sums = [Sum("t", ("a", "b")), Sum("u", ("b", "c"))]
    assert determined(sums, frozenset({"a", "b"})) == {"a", "b"}
    assert determined(sums, frozenset({"a", "b", "c", "t"})) == set()


def test_an_inconsistent_table_is_refused():
    with pytest.raises(SuppressionError, match="does not add up"):
        suppress({"t": 10, "a": 3, "b": 4}, [Sum("t", ("a", "b"))], THRESHOLD)


def test_a_cell_that_only_a_combination_of_sums_gives_away_is_protected():
    # t = a + b, u = b + c, v = a + c: every sum has two hidden cells, yet a = (t - u + v) / 2
    counts = {"a": 3, "b": 12, "c": 12, "t": 15, "u": 24, "v": 15}
    sums = [Sum("t", ("a", "b")), Sum("u", ("b", "c")), Sum("v", ("a", "c"))]
    hidden = suppress(counts, sums, THRESHOLD)
    assert {"a", "b", "c"} < hidden
    assert_protected(counts, sums, hidden)
