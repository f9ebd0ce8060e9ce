"""The SNDS conventions the generator applies on top of the dictionary (see conventions.yml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from snds.catalog.policies import PolicyRule, TablePolicy, parse_rules, policy_for
from snds.catalog.types import Defaults


@dataclass(frozen=True)
class YearRange:
    first: int
    last: int

    def years(self) -> range:
        return range(self.first, self.last + 1)


GENERALISATIONS = ("keep", "suppress", "month", "year", "department")


@dataclass(frozen=True)
class IdentifierClass:
    name: str  # direct_person, direct_professional, potential, other
    kind: str = ""  # for potential identifiers: birth, residence, death, care_date
    generalisation: str = ""  # for potential identifiers: one of GENERALISATIONS

    @property
    def pseudonym_domain(self) -> str | None:
        """`person` or `professional` for a direct identifier (replaced by a pseudonym), else None."""
        return {"direct_person": "person", "direct_professional": "professional"}.get(self.name)


@dataclass(frozen=True)
class PseudonymConventions:
    length: int
    person_placeholders: tuple[str, ...]


OTHER = IdentifierClass("other")


@dataclass(frozen=True)
class Conventions:
    pmsi_years: YearRange
    dcir_archive_pattern: re.Pattern[str]
    dcir_archive_years: YearRange
    product_folders: dict[str, str]
    identifiers: dict[str, IdentifierClass]
    pseudonyms: PseudonymConventions
    defaults: Defaults
    delivery_policies: tuple[PolicyRule, ...]

    def delivery_policy(self, product: str, year: int | None, columns: list[str]) -> TablePolicy:
        return policy_for(self.delivery_policies, product, year is not None, columns)

    def identifier_class(self, column_name: str) -> IdentifierClass:
        return self.identifiers.get(column_name.upper(), OTHER)

    def folder(self, product: str) -> str:
        try:
            return self.product_folders[product]
        except KeyError:
            raise ValueError(f"product {product!r} has no folder in conventions.yml") from None


@cache
def load_conventions() -> Conventions:
    """The conventions of conventions.yml, read once."""
    raw = yaml.safe_load(resources.files("snds.catalog").joinpath("conventions.yml").read_text("utf-8"))
    identifiers: dict[str, IdentifierClass] = {}
    for class_name in ("direct_person", "direct_professional"):
        for column in raw["identifiers"][class_name]:
            identifiers[column] = IdentifierClass(class_name)
    for kind, columns in raw["identifiers"]["potential"].items():
        for column, generalisation in columns.items():
            if generalisation not in GENERALISATIONS:
                raise ValueError(f"{column}: generalisation {generalisation!r} is not one of {GENERALISATIONS}")
            identifiers[column] = IdentifierClass("potential", kind, generalisation)
    pseudonyms = raw["pseudonyms"]
    return Conventions(
        pmsi_years=YearRange(**raw["pmsi_years"]),
        dcir_archive_pattern=re.compile(raw["dcir_archives"]["table_pattern"]),
        dcir_archive_years=YearRange(**raw["dcir_archives"]["years"]),
        product_folders=dict(raw["products"]),
        identifiers=identifiers,
        pseudonyms=PseudonymConventions(pseudonyms["length"], tuple(pseudonyms["person_placeholders"])),
        defaults=Defaults(**raw["defaults"]),
        delivery_policies=parse_rules(raw["delivery_policies"]),
    )
