"""Read the committed catalog (seeds/catalog/*.csv): what the rest of the tooling relies on at run time.

The dictionary is needed only to regenerate the catalog; ingestion, landing set-up and checks read
these files, so the project runs without the reference present.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path

from snds.catalog.policies import SNAPSHOT_POLICY, TablePolicy
from snds.catalog.sqltypes import SqlType
from snds.config import PROJECT_ROOT

SEEDS_DIR = PROJECT_ROOT / "seeds" / "catalog"


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    data_type: str
    oracle_type: str
    declared_length: str
    identifier_class: str
    identifier_kind: str
    nomenclature: str = ""  # linked code list (`IR_SEX_V`, or `IR_SEX_V:SEX_COD` naming the code column)

    @cached_property
    def sql_type(self) -> SqlType:
        return SqlType.parse(self.data_type)

    @property
    def max_chars(self) -> int | None:
        """The length of a `varchar(n)` column, None for other types."""
        return self.sql_type.length


@dataclass(frozen=True)
class CatalogLink:
    """Columns of a table that reference a parent template's columns (declared by the dictionary)."""

    columns: tuple[str, ...]
    parent_template: str
    parent_columns: tuple[str, ...]


@dataclass(frozen=True)
class CatalogTable:
    name: str
    product: str
    template: str
    year: int | None
    structure_id: str
    primary_key: tuple[str, ...]
    columns: tuple[CatalogColumn, ...]
    links: tuple[CatalogLink, ...] = ()
    policy: TablePolicy = SNAPSHOT_POLICY


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_tables(seeds_dir: Path = SEEDS_DIR) -> dict[str, CatalogTable]:
    """Every physical table of the catalog with its ordered columns, by table name."""
    structures: dict[str, list[CatalogColumn]] = {}
    for row in _rows(seeds_dir / "snds_structure_columns.csv"):
        structures.setdefault(row["structure_id"], []).append(
            CatalogColumn(
                row["column_name"],
                row["data_type"],
                row["oracle_type"],
                row["declared_length"],
                row["identifier_class"],
                row["identifier_kind"],
            )
        )
    links = {
        (row["template"], row["column_name"]): row["nomenclature"]
        for row in _rows(seeds_dir / "snds_template_columns.csv")
        if row["nomenclature"]
    }
    declared: dict[str, list[CatalogLink]] = {}
    for row in _rows(seeds_dir / "snds_template_foreign_keys.csv"):
        declared.setdefault(row["template"], []).append(
            CatalogLink(tuple(row["columns"].split()), row["parent_template"], tuple(row["parent_columns"].split()))
        )
    linked: dict[tuple[str, str], tuple[CatalogColumn, ...]] = {}  # yearly tables share a template and a structure

    def columns(template: str, structure_id: str) -> tuple[CatalogColumn, ...]:
        key = (template, structure_id)
        if key not in linked:
            linked[key] = tuple(
                replace(c, nomenclature=code_list) if (code_list := links.get((template, c.name))) else c
                for c in structures[structure_id]
            )
        return linked[key]

    return {
        row["table_name"]: CatalogTable(
            name=row["table_name"],
            product=row["product"],
            template=row["template"],
            year=int(row["year"]) if row["year"] else None,
            structure_id=row["structure_id"],
            primary_key=tuple(row["primary_key"].split()),
            columns=columns(row["template"], row["structure_id"]),
            links=tuple(declared.get(row["template"], ())),
            policy=TablePolicy(row["delivery_policy"], row["period_column"]),
        )
        for row in _rows(seeds_dir / "snds_tables.csv")
    }


def find_table(catalog: dict[str, CatalogTable], name: str) -> CatalogTable | None:
    """The table spelt `name`, else the only table whose name differs from it by case alone, else None.

    Table names keep the dictionary's spelling (`T_MCO19GVxx`); SQL names are case-insensitive, so a name
    written in another case (`T_MCO19GVXX` in a manifest) still finds its table, as long as only one matches.
    """
    table = catalog.get(name)
    if table is not None:
        return table
    folded = name.casefold()
    matches = [t for t in catalog.values() if t.name.casefold() == folded]
    return matches[0] if len(matches) == 1 else None


@cache
def committed_tables() -> dict[str, CatalogTable]:
    """The committed catalog (seeds/catalog), read once per process: it changes only with `snds catalog`. Callers
    must not change the mapping."""
    return load_tables()
