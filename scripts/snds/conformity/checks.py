"""The row-level checks of one table, enumerated from the committed catalog.

Each check has a kind (what the `conformity_query` macro knows how to count), a category in the Kahn
framework, and its arguments. The macro turns the list into one query over the table that counts, for every
check, the rows that fail it; thresholds and severities are applied afterwards, from data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from snds.catalog.committed import CatalogColumn, CatalogTable

SENTINEL_DATE = "1600-01-01"
CATEGORIES = {
    "not_null": "completeness",
    "key_not_null": "completeness",
    "length": "conformance",
    "code_list": "conformance",
    "key_unique": "conformance",
    "pseudonym_format": "conformance",
    "unknown_date": "plausibility",
    "negative_amount": "plausibility",
}


@dataclass(frozen=True)
class Check:
    kind: str
    column: str = ""
    columns: tuple[str, ...] = ()
    arguments: dict[str, str | int] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return CATEGORIES[self.kind]

    @property
    def name(self) -> str:
        target = self.column or "+".join(self.columns)
        return f"{self.kind}:{target}" if target else self.kind

    def as_macro_argument(self) -> dict:
        return {"kind": self.kind, "column": self.column, "columns": list(self.columns), **self.arguments}


def code_lists(tables: dict[str, CatalogTable]) -> dict[str, CatalogTable]:
    """The nomenclature tables, by name: what code-list checks compare values with."""
    return {name: t for name, t in tables.items() if t.product == "NOMENCLATURES"}


def _code_list(column: CatalogColumn, code_lists: dict[str, CatalogTable]) -> tuple[str, str] | None:
    """(code list, code column) of a column linked to a nomenclature, when the link is unambiguous."""
    table, _, code = column.nomenclature.partition(":")
    target = code_lists.get(table)
    if target is None:
        return None
    if code:
        return (table, code) if any(c.name == code for c in target.columns) else None
    if len(target.primary_key) == 1:
        return table, target.primary_key[0]
    return (table, column.name) if column.name in target.primary_key else None


def _declared_chars(column: CatalogColumn) -> int | None:
    """The declared length of a text column when narrower than its physical type (widened per column name)."""
    physical = column.max_chars
    if physical is None or not column.declared_length.isdigit() or column.identifier_class.startswith("direct"):
        return None
    declared = int(column.declared_length)
    return declared if declared < physical else None


def table_checks(table: CatalogTable, code_lists: dict[str, CatalogTable], pseudonym_length: int) -> list[Check]:
    checks: list[Check] = []
    if table.primary_key:
        checks.append(Check("key_unique", columns=table.primary_key))
        checks.append(Check("key_not_null", columns=table.primary_key))
    is_code_list = table.name in code_lists
    for column in table.columns:
        checks.append(Check("not_null", column.name))
        declared = _declared_chars(column)
        if declared is not None:
            checks.append(Check("length", column.name, arguments={"max": declared}))
        # The dictionary links some date columns to a calendar list (IR_DTE_V): a date is checked as a date.
        is_date = column.data_type in ("date", "timestamp")
        link = None if is_code_list or is_date else _code_list(column, code_lists)
        if link is not None:
            checks.append(Check("code_list", column.name, arguments={"code_table": link[0], "code_column": link[1]}))
        if column.identifier_class == "direct_person":
            checks.append(Check("pseudonym_format", column.name, arguments={"length": pseudonym_length}))
        if is_date:
            checks.append(Check("unknown_date", column.name, arguments={"date": SENTINEL_DATE}))
        if column.data_type.startswith("numeric") and column.name.endswith("_MNT"):
            checks.append(Check("negative_amount", column.name))
    return checks


def macro_call(table: str, delivery_id: str, checks: list[Check]) -> str:
    """The Jinja call that compiles the checks of one table for one delivery into one query."""
    payload = json.dumps([c.as_macro_argument() for c in checks], separators=(",", ":"))
    if "'" in payload or "'" in delivery_id or "'" in table:
        raise ValueError("quotes are not expected in table names, delivery ids or check arguments")
    return f"{{{{ conformity_query('{table}', '{delivery_id}', fromjson('{payload}')) }}}}"


def describe(checks: list[Check]) -> list[dict]:
    return [{"name": c.name, "category": c.category, **asdict(c)} for c in checks]
