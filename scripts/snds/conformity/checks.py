"""The row-level checks of one table, enumerated from the committed catalog and the rules in seeds/conformity.

Each check has a kind (what the `conformity_query` macro knows how to count), a category in the Kahn
framework, and its arguments. The macro turns the list into one query over the table that counts, for every
check, the rows that fail it; thresholds and severities are applied afterwards, from data.
"""

from __future__ import annotations

import csv
import fnmatch
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from snds.catalog.committed import CatalogColumn, CatalogLink, CatalogTable
from snds.catalog.policies import APPEND
from snds.config import PROJECT_ROOT
from snds.formats import UNKNOWN_DATE

RULES_DIR = PROJECT_ROOT / "seeds" / "conformity"
SENTINEL_DATE = UNKNOWN_DATE.isoformat()
BIRTH_YEAR_COLUMN = "BEN_NAI_ANN"
EVENT_DATE_COLUMNS = ("BEN_DCD_DTE", "EXE_SOI_DTD")  # birth must come before death and care
QUANTITY_SUFFIXES = ("_QSN", "_QTE")
CATEGORIES = {
    "not_null": "completeness",
    "key_not_null": "completeness",
    "volume_month": "completeness",
    "rows_loaded": "completeness",  # a delivered table with rows of which none loaded (from the ingestion's counts)
    "delivery_policy": "completeness",  # a flow month already in the base, or older than the base's extraction
    "length": "conformance",
    "code_list": "conformance",
    "key_unique": "conformance",
    "pseudonym_format": "conformance",
    "quarantined_rows": "conformance",  # lines not conforming to the declared format, quarantined at ingestion
    "foreign_key": "relational",
    "date_in_year": "plausibility",
    "start_before_end": "plausibility",
    "birth_before_event": "plausibility",
    "unknown_date": "plausibility",
    "negative_amount": "plausibility",
    "negative_quantity": "plausibility",
    "cleaning_flag": "cleaning",
}
FLAG_OPERATORS = ("equals", "not_equals", "in", "starts_with", "in_seed")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class RuleError(ValueError):
    """A rule file of seeds/conformity is inconsistent with the catalog."""


@dataclass(frozen=True)
class Check:
    kind: str
    column: str = ""
    columns: tuple[str, ...] = ()
    arguments: dict[str, str | int | list] = field(default_factory=dict)
    label: str = ""  # what the check's name shows after the kind (default: its columns)

    @property
    def category(self) -> str:
        return CATEGORIES[self.kind]

    @property
    def target(self) -> str:
        """What threshold column patterns match: the column, `A+B`, or `COLUMNS->PARENT` for a link."""
        return self.label or self.column or "+".join(self.columns)

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.target}" if self.target else self.kind

    def as_macro_argument(self) -> dict:
        return {"kind": self.kind, "column": self.column, "columns": list(self.columns), **self.arguments}


@dataclass(frozen=True)
class DateWindow:
    table_pattern: str
    column: str
    years_before: int
    years_after: int


@dataclass(frozen=True)
class VolumeRule:
    table_pattern: str
    month_column: str
    max_relative_change: float


@dataclass(frozen=True)
class FlagRule:
    flag: str
    table_pattern: str
    column_pattern: str
    operator: str
    values: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Rules:
    """Everything besides a table's own catalog entry that decides its checks."""

    tables: dict[str, CatalogTable]
    pseudonym_length: int
    placeholders: tuple[str, ...]
    date_windows: tuple[DateWindow, ...] = ()
    volume_rules: tuple[VolumeRule, ...] = ()
    flags: tuple[FlagRule, ...] = ()
    code_lists: dict[str, CatalogTable] = field(init=False)
    by_template: dict[str, list[CatalogTable]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code_lists", code_lists(self.tables))
        by_template: dict[str, list[CatalogTable]] = {}
        for table in self.tables.values():
            by_template.setdefault(table.template, []).append(table)
        object.__setattr__(self, "by_template", by_template)

    def volume_rule(self, table: CatalogTable) -> VolumeRule | None:
        return next((r for r in self.volume_rules if fnmatch.fnmatchcase(table.name, r.table_pattern)), None)


def _read(name: str, rules_dir: Path) -> list[dict[str, str]]:
    with (rules_dir / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_rules(
    tables: dict[str, CatalogTable], pseudonym_length: int, placeholders: tuple[str, ...], rules_dir: Path = RULES_DIR
) -> Rules:
    """The conformity rules (seeds/conformity/*.csv) checked for consistency."""
    flags = []
    for row in _read("conformity_cleaning_flags", rules_dir):
        if row["operator"] not in FLAG_OPERATORS:
            raise RuleError(f"cleaning flag {row['flag']}: operator {row['operator']!r} is not one of {FLAG_OPERATORS}")
        values = tuple(row["flag_values"].split())
        if row["operator"] == "in_seed":
            values = tuple(r[next(iter(r))] for r in _read(row["flag_values"], rules_dir))
        flags.append(
            FlagRule(
                row["flag"], row["table_pattern"], row["column_pattern"], row["operator"], values, row["description"]
            )
        )
    return Rules(
        tables=tables,
        pseudonym_length=pseudonym_length,
        placeholders=placeholders,
        date_windows=tuple(
            DateWindow(r["table_pattern"], r["column_name"], int(r["years_before"]), int(r["years_after"]))
            for r in _read("conformity_date_windows", rules_dir)
        ),
        volume_rules=tuple(
            VolumeRule(r["table_pattern"], r["month_column"], float(r["max_relative_change"]))
            for r in _read("conformity_volume_rules", rules_dir)
        ),
        flags=tuple(flags),
    )


def project_rules(tables: dict[str, CatalogTable]) -> Rules:
    """The rules with the project's pseudonym conventions (catalog/conventions.yml)."""
    from snds.catalog.conventions import load_conventions

    pseudonyms = load_conventions().pseudonyms
    return load_rules(tables, pseudonyms.length, pseudonyms.person_placeholders)


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


def parent_table(link: CatalogLink, table: CatalogTable, rules: Rules) -> CatalogTable | None:
    """The physical table a link points to: the parent template's table of the same year, else its current one."""
    candidates = rules.by_template.get(link.parent_template, [])
    parent = next((t for t in candidates if t.year == table.year), None)
    parent = parent or next((t for t in candidates if t.year is None), None)
    if parent is None:
        return None
    names = {c.name for c in table.columns}
    parent_names = {c.name for c in parent.columns}
    if not set(link.columns) <= names or not set(link.parent_columns) <= parent_names:
        return None  # a link column absent that year
    return parent


def _foreign_key(link: CatalogLink, table: CatalogTable, parent: CatalogTable, rules: Rules) -> Check:
    child_types = {c.name: c.sql_type.is_text for c in table.columns}
    parent_types = {c.name: c.sql_type.is_text for c in parent.columns}
    same_types = all(child_types[c] == parent_types[p] for c, p in zip(link.columns, link.parent_columns, strict=True))
    person = len(link.columns) == 1 and any(
        c.name == link.columns[0] and c.identifier_class == "direct_person" for c in table.columns
    )
    return Check(
        "foreign_key",
        columns=link.columns,
        label=f"{'+'.join(link.columns)}->{parent.name}",
        arguments={
            "parent": parent.name,
            "parent_columns": list(link.parent_columns),
            "as_text": not same_types,
            "ignored": list(rules.placeholders) if person else [],
        },
    )


def _literal(value: str, column: CatalogColumn, flag: str) -> str:
    if column.sql_type.is_text:
        if "'" in value:
            raise RuleError(f"cleaning flag {flag}: quotes are not accepted in values ({value!r})")
        return f"'{value}'"
    if not _NUMBER.fullmatch(value):
        raise RuleError(f"cleaning flag {flag}: {column.name} is numeric, {value!r} is not a number")
    return value


def _flag_checks(table: CatalogTable, rules: Rules) -> list[Check]:
    checks = []
    for rule in rules.flags:
        if not fnmatch.fnmatchcase(table.name, rule.table_pattern):
            continue
        for column in table.columns:
            if not fnmatch.fnmatchcase(column.name, rule.column_pattern):
                continue
            if rule.operator == "starts_with" and not column.sql_type.is_text:
                raise RuleError(f"cleaning flag {rule.flag}: starts_with needs a text column, {column.name} is not")
            checks.append(
                Check(
                    "cleaning_flag",
                    column.name,
                    label=f"{rule.flag}:{column.name}",
                    arguments={
                        "flag": rule.flag,
                        "operator": "in" if rule.operator == "in_seed" else rule.operator,
                        "values": [_literal(v, column, rule.flag) for v in rule.values],
                        "prefix": rule.values[0] if rule.operator == "starts_with" else "",
                    },
                )
            )
    return checks


def _plausibility_checks(table: CatalogTable, rules: Rules) -> list[Check]:
    columns = {c.name: c for c in table.columns}
    dates = {name for name, c in columns.items() if c.sql_type.is_temporal}
    checks = []
    if table.year is not None:
        for window in rules.date_windows:
            if window.column in dates and fnmatch.fnmatchcase(table.name, window.table_pattern):
                first, last = table.year - window.years_before, table.year + window.years_after
                checks.append(
                    Check(
                        "date_in_year",
                        window.column,
                        arguments={"from": f"{first}-01-01", "to": f"{last}-12-31", "sentinel": SENTINEL_DATE},
                    )
                )
    for start in sorted(dates):
        end = start[:-1] + "F" if start.endswith("_DTD") else ""
        if end in dates:
            checks.append(Check("start_before_end", columns=(start, end), arguments={"sentinel": SENTINEL_DATE}))
    birth = columns.get(BIRTH_YEAR_COLUMN)
    if birth is not None and birth.sql_type.is_text:
        for event in EVENT_DATE_COLUMNS:
            if event in dates:
                checks.append(
                    Check(
                        "birth_before_event", columns=(BIRTH_YEAR_COLUMN, event), arguments={"sentinel": SENTINEL_DATE}
                    )
                )
    return checks


def table_checks(table: CatalogTable, rules: Rules) -> list[Check]:
    checks: list[Check] = []
    if table.primary_key:
        checks.append(Check("key_unique", columns=table.primary_key))
        checks.append(Check("key_not_null", columns=table.primary_key))
    # A row of a table delivered by flow month belongs to the delivery of its month: without one, no increment of
    # the base or of the event layer could apply it.
    period = table.policy.period_column if table.policy.name == APPEND else ""
    if period and period not in table.primary_key:
        checks.append(Check("key_not_null", columns=(period,)))
    is_code_list = table.name in rules.code_lists
    for column in table.columns:
        checks.append(Check("not_null", column.name))
        declared = _declared_chars(column)
        if declared is not None:
            checks.append(Check("length", column.name, arguments={"max": declared}))
        # The dictionary links some date columns to a calendar list (IR_DTE_V): a date is checked as a date.
        is_date = column.sql_type.is_temporal
        link = None if is_code_list or is_date else _code_list(column, rules.code_lists)
        if link is not None:
            checks.append(Check("code_list", column.name, arguments={"code_table": link[0], "code_column": link[1]}))
        if column.identifier_class == "direct_person":
            checks.append(Check("pseudonym_format", column.name, arguments={"length": rules.pseudonym_length}))
        if is_date:
            checks.append(Check("unknown_date", column.name, arguments={"date": SENTINEL_DATE}))
        if column.sql_type.is_numeric and column.name.endswith("_MNT"):
            checks.append(Check("negative_amount", column.name))
        if column.sql_type.is_numeric and column.name.endswith(QUANTITY_SUFFIXES):
            checks.append(Check("negative_quantity", column.name))
    for declared_link in table.links:
        parent = parent_table(declared_link, table, rules)
        if parent is not None:
            checks.append(_foreign_key(declared_link, table, parent, rules))
    checks += _plausibility_checks(table, rules)
    checks += _flag_checks(table, rules)
    return checks


def month_column(table: CatalogTable, rules: Rules) -> str | None:
    """The date column a table's volume is counted by month on, if a volume rule applies and the column exists."""
    rule = rules.volume_rule(table)
    if rule is None:
        return None
    column = next((c for c in table.columns if c.name == rule.month_column), None)
    return column.name if column is not None and column.sql_type.is_temporal else None


def _jinja_json(value: object) -> str:
    """A Jinja expression for a JSON value (escaped for a single-quoted Jinja string)."""
    payload = json.dumps(value, separators=(",", ":")).replace("\\", "\\\\").replace("'", "\\'")
    return f"fromjson('{payload}')"


def _plain(*names: str) -> None:
    if any("'" in name or "\\" in name for name in names):
        raise ValueError(f"quotes are not expected in table names or delivery ids: {names}")


def macro_call(table: str, delivery_id: str, checks: list[Check], month: str | None) -> str:
    """The Jinja call that compiles the checks of one table for one delivery into one query."""
    _plain(table, delivery_id, month or "")
    arguments = _jinja_json([c.as_macro_argument() for c in checks])
    return f"{{{{ conformity_query('{table}', '{delivery_id}', {arguments}, '{month or ''}') }}}}"


def examples_call(table: str, delivery_id: str, check: Check, columns: list[str], max_rows: int) -> str:
    """The Jinja call that compiles the query of up to `max_rows` rows failing one check."""
    _plain(table, delivery_id)
    arguments = f"{_jinja_json(check.as_macro_argument())}, {_jinja_json(columns)}, {int(max_rows)}"
    return f"{{{{ conformity_examples('{table}', '{delivery_id}', {arguments}) }}}}"


def describe(checks: list[Check]) -> list[dict]:
    return [{"name": c.name, "category": c.category, **asdict(c)} for c in checks]
