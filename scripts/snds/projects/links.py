"""How an extracted table's rows find their person: the catalog's links, read once per table.

A row belongs to a person through a person column of its own (`BEN_NIR_PSA` in DCIR and the referentials,
`NIR_ANO_17` in the PMSI's C tables: the platform pseudonym, which the cohort's `person_id` is), through
`BEN_IDT_ANO` (causes of death, `IR_IBA_R`: looked up in `IR_BEN_R`), or through one link of the catalog to a
table of the same year that has a person column: a DCIR satellite to `ER_PRS_F` on the nine keys, a PMSI stay
table to its C table on the stay key. The linked table must be in the project's perimeter: the project reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from snds.catalog.committed import CatalogTable

PERSON_COLUMNS = ("BEN_NIR_PSA", "NIR_ANO_17")  # hold the platform pseudonym, the cohort's person_id
STABLE_PERSON_COLUMN = "BEN_IDT_ANO"  # found in IR_BEN_R, which holds both
BENEFICIARIES = "IR_BEN_R"


class LinkError(ValueError):
    """No way from a table's rows to their person within the perimeter."""


@dataclass(frozen=True)
class PersonLink:
    """`via` is None when the table holds `person_column`; else rows join `via` on `columns` = `via_columns`."""

    table: str
    person_column: str  # in `table` when `via` is None, else in `via`
    via: str | None = None
    columns: tuple[str, ...] = ()
    via_columns: tuple[str, ...] = ()


def _names(table: CatalogTable) -> set[str]:
    return {c.name.upper() for c in table.columns}


def _same_year(catalog: dict[str, CatalogTable], template: str, year: int | None) -> CatalogTable | None:
    found = [t for t in catalog.values() if t.template == template and t.year == year]
    return found[0] if len(found) == 1 else None


def person_link(table: CatalogTable, catalog: dict[str, CatalogTable], perimeter: set[str]) -> PersonLink:
    """The way from `table`'s rows to their person; LinkError naming what the perimeter lacks."""
    own = _names(table)
    for column in PERSON_COLUMNS:
        if column in own:
            return PersonLink(table.name, column)
    if STABLE_PERSON_COLUMN in own:
        if BENEFICIARIES not in perimeter:
            raise LinkError(f"{table.name} finds its persons through {BENEFICIARIES}: add it to the perimeter")
        return PersonLink(table.name, "BEN_NIR_PSA", BENEFICIARIES, (STABLE_PERSON_COLUMN,), (STABLE_PERSON_COLUMN,))
    candidates: list[tuple[CatalogTable, tuple[str, ...], tuple[str, ...]]] = []
    for link in table.links:  # to a parent: a satellite to its central table
        parent = _same_year(catalog, link.parent_template, table.year)
        if parent is not None:
            candidates.append((parent, link.columns, link.parent_columns))
    for other in catalog.values():  # from a child of the same year: a stay to its C table
        if other.year == table.year:
            for link in other.links:
                if link.parent_template == table.template:
                    candidates.append((other, link.parent_columns, link.columns))
    linked = [(t, mine, theirs) for t, mine, theirs in candidates if _names(t) & set(PERSON_COLUMNS)]
    for target, mine, theirs in linked:
        if target.name in perimeter:
            person = next(c for c in PERSON_COLUMNS if c in _names(target))
            return PersonLink(table.name, person, target.name, mine, theirs)
    if linked:
        names = " or ".join(sorted({t.name for t, _, _ in linked}))
        raise LinkError(f"{table.name} finds its persons through {names}: add it to the perimeter")
    raise LinkError(f"{table.name} has no person column and no link to a table that has one")
