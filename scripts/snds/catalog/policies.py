"""Delivery policies: how a delivery of a table is applied to the base (conventions.yml, `delivery_policies`).

The generator writes each table's policy into the committed catalog; ingestion refuses a delivery that would break
it, and the staging model of the table applies new deliveries by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

APPEND = "append"  # a delivery adds periods (flow months)
REPLACE_YEAR = "replace_year"  # a re-delivery replaces the year's table
SNAPSHOT = "snapshot"  # a delivery replaces the table
POLICIES = (APPEND, REPLACE_YEAR, SNAPSHOT)
# The policies under which a new delivery of a table replaces its content (the latest delivery is the table).
REPLACING = (REPLACE_YEAR, SNAPSHOT)


@dataclass(frozen=True)
class TablePolicy:
    name: str
    period_column: str = ""  # for append: the date column whose month is the period a delivery adds


SNAPSHOT_POLICY = TablePolicy(SNAPSHOT)


@dataclass(frozen=True)
class PolicyRule:
    policy: TablePolicy
    products: frozenset[str] | None = None  # None: any product
    yearly: bool | None = None  # None: yearly or not

    def matches(self, product: str, yearly: bool, columns: Iterable[str]) -> bool:
        if self.products is not None and product not in self.products:
            return False
        if self.yearly is not None and yearly != self.yearly:
            return False
        return not self.policy.period_column or self.policy.period_column in columns


def parse_rules(raw: list[dict]) -> tuple[PolicyRule, ...]:
    rules = []
    for entry in raw:
        name = entry["policy"]
        if name not in POLICIES:
            raise ValueError(f"delivery policy {name!r} is not one of {POLICIES}")
        period = entry.get("period_column", "")
        if (name == APPEND) != bool(period):
            raise ValueError(f"delivery policy {name!r}: a period column is required for {APPEND} and only for it")
        products = entry.get("products")
        scope = frozenset(products) if products else None
        rules.append(PolicyRule(TablePolicy(name, period), scope, entry.get("yearly")))
    if rules[-1].products is not None or rules[-1].yearly is not None or rules[-1].policy.period_column:
        raise ValueError("the last delivery policy rule must match every table")
    return tuple(rules)


def policy_for(rules: tuple[PolicyRule, ...], product: str, yearly: bool, columns: Iterable[str]) -> TablePolicy:
    names = set(columns)
    return next(rule.policy for rule in rules if rule.matches(product, yearly, names))
