"""Expand the dictionary into the physical tables of the base, and group them into structures.

- PMSI templates (`T_MCOaaB`) become one table per year (`T_MCO06B` ... `T_MCO23B`) in which the
  table exists; each year keeps the columns that existed that year.
- DCIR fact tables (`ER_PRS_F`) get yearly archives (`ER_PRS_F_2015`) with that year's columns; the
  table itself holds the columns that exist today.
- Every other table and every nomenclature is one physical table with its current columns.
- A structure is an ordered set of (column name, type, length): tables sharing one share a structure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from snds.catalog.conventions import Conventions, IdentifierClass
from snds.catalog.dictionary import DictColumn, DictTable
from snds.catalog.policies import TablePolicy
from snds.catalog.sqltypes import SqlType
from snds.catalog.types import TypeMapper, holding_pseudonym

_PMSI_TEMPLATE = re.compile(r"^(T_[A-Z]{3})aa(.+)$")
_DICTIONARY_SCOPE = "dictionary"


@dataclass(frozen=True)
class Column:
    spec: DictColumn
    sql_type: SqlType  # ANSI type used by the models on both engines
    identifier: IdentifierClass
    in_primary_key: bool

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def data_type(self) -> str:
        return str(self.sql_type)

    @property
    def oracle_type(self) -> str:
        return self.sql_type.oracle


@dataclass(frozen=True)
class PhysicalTable:
    name: str
    template: DictTable
    year: int | None
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    structure_id: str
    policy: TablePolicy

    @property
    def product(self) -> str:
        return self.template.product

    def pseudonymised_columns(self, domain: str) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.identifier.pseudonym_domain == domain)


@dataclass(frozen=True)
class Catalog:
    templates: tuple[DictTable, ...]
    tables: tuple[PhysicalTable, ...]

    def table(self, name: str) -> PhysicalTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    @property
    def structures(self) -> dict[str, list[PhysicalTable]]:
        grouped: dict[str, list[PhysicalTable]] = {}
        for table in self.tables:
            grouped.setdefault(table.structure_id, []).append(table)
        return grouped

    def stats(self) -> dict[str, int]:
        return {
            "templates": len(self.templates),
            "physical_tables": len(self.tables),
            "nomenclatures": sum(t.template.is_nomenclature for t in self.tables),
            "structures": len(self.structures),
            "columns": sum(len(t.columns) for t in self.tables),
        }


def build_catalog(dictionary: list[DictTable], conventions: Conventions) -> Catalog:
    mapper = TypeMapper(((_scope(t), c) for t in dictionary for c in t.columns), conventions.defaults)
    tables: list[PhysicalTable] = []
    for template in dictionary:
        for name, year in _physical_names(template, conventions):
            columns = _columns_for(template, year, mapper, conventions)
            if not columns:
                continue
            key = tuple(k for k in template.primary_key if any(c.name == k for c in columns))
            if len(key) != len(template.primary_key):
                key = ()  # a key column absent that year: the declared key does not apply
            policy = conventions.delivery_policy(template.product, year, [c.name for c in columns])
            tables.append(PhysicalTable(name, template, year, columns, key, _structure_id(columns), policy))
    tables.sort(key=lambda t: t.name)
    return Catalog(tuple(dictionary), tuple(tables))


def _scope(table: DictTable) -> str:
    # Nomenclatures are sized from their own data; dictionary tables share one namespace of columns.
    return table.name if table.is_nomenclature else _DICTIONARY_SCOPE


def _physical_names(template: DictTable, conventions: Conventions) -> Iterator[tuple[str, int | None]]:
    pmsi = _PMSI_TEMPLATE.match(template.name)
    if pmsi:
        for year in conventions.pmsi_years.years():
            if template.years.contains(year):
                yield f"{pmsi.group(1)}{year % 100:02d}{pmsi.group(2)}", year
        return
    yield template.name, None
    if conventions.dcir_archive_pattern.match(template.name):
        for year in conventions.dcir_archive_years.years():
            if template.years.contains(year):
                yield f"{template.name}_{year}", year


def _columns_for(
    template: DictTable, year: int | None, mapper: TypeMapper, conventions: Conventions
) -> tuple[Column, ...]:
    scope = _scope(template)
    columns = []
    for spec in template.columns:
        exists = spec.years.is_current if year is None else spec.years.contains(year)
        if not exists:
            continue
        sql_type = mapper.sql_type(scope, spec)
        identifier = conventions.identifier_class(spec.name)
        if identifier.pseudonym_domain:
            sql_type = holding_pseudonym(sql_type, spec.name, conventions.pseudonyms.length)
        columns.append(
            Column(
                spec=spec,
                sql_type=sql_type,
                identifier=identifier,
                in_primary_key=spec.name in template.primary_key,
            )
        )
    return tuple(columns)


def _structure_id(columns: tuple[Column, ...]) -> str:
    shape = "\n".join(f"{c.name}|{c.spec.logical_type}|{c.data_type}|{c.spec.length or ''}" for c in columns)
    return "S" + hashlib.sha256(shape.encode()).hexdigest()[:8]
