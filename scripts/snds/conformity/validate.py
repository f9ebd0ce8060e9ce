"""Validate one delivery: compile each delivered table's checks into one query (one dbt compile for all),
run them, apply the thresholds, record every result in the warehouse and say whether the delivery may be
promoted into the base. The report (JSON, HTML) is read back from the warehouse tables (`read_report`).
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import re
import secrets
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from snds import audit, config, engine, identifiers, warehouse
from snds.catalog.committed import CatalogTable
from snds.conformity.checks import (
    RULES_DIR,
    Check,
    RuleError,
    Rules,
    examples_call,
    macro_call,
    month_column,
    table_checks,
)
from snds.conformity.compiled import PLACEHOLDER, CompiledParts
from snds.dbt import InlineCompiler
from snds.ingest.periods import check_policy
from snds.ingest.quarantine import quarantine_summary
from snds.keys.material import Pads, pseudonym
from snds.landing import create_bookkeeping

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

THRESHOLDS_SEED = RULES_DIR / "conformity_thresholds.csv"
SEVERITIES = ("info", "warn", "error")
EXAMPLE_ROWS = 5
MAX_EXAMPLE_CHECKS = 50  # examples are fetched for this many failing checks at most (one compile for all)
# Checks computed from the ingestion's counts (landing.delivery_files), not by a query over the table's rows.
INGEST_KINDS = ("quarantined_rows", "rows_loaded")
POLICY_KIND = "delivery_policy"  # the delivery against the base under its tables' policies (snds.ingest.periods)
DELIVERY_TARGET = "delivery"  # the target of the checks of the whole delivery (threshold column_pattern)
_PART_NAME = re.compile(r"[A-Za-z0-9_.]{1,128}")
_RANK = {"pass": 0, "info": 0, "warn": 1, "error": 2}  # a table's outcome: its worst check (info never fails)


class ValidationError(Exception):
    """The platform could not validate the delivery (a tool failure: the message says why)."""


class UnknownDelivery(ValidationError):
    """No delivery of that identifier was ingested (or validated, for a report)."""


@dataclass(frozen=True)
class Threshold:
    kind: str
    table_pattern: str
    product: str  # empty: any product
    column_pattern: str
    severity: str
    max_failing_share: float

    def applies_to(self, table: CatalogTable | None, check: Check) -> bool:
        """Whether the row applies; `table` None is the whole delivery (matched by the table pattern `*` only)."""
        name, product = (table.name, table.product) if table is not None else ("", "")
        return (
            fnmatch.fnmatchcase(name, self.table_pattern)
            and self.product in ("", product)
            and fnmatch.fnmatchcase(check.target, self.column_pattern)
        )

    @property
    def specificity(self) -> tuple[int, int]:
        return (
            len(self.table_pattern.replace("*", "")) + len(self.column_pattern.replace("*", "")),
            bool(self.product),
        )


@dataclass(frozen=True)
class CheckResult:
    table: str  # "" for a check of the whole delivery
    check: Check
    rows_checked: int
    failing: int
    severity: str
    max_failing_share: float
    examples: dict = field(default_factory=dict, compare=False)  # {"columns": [...], "rows": [[...]]}

    @property
    def failing_share(self) -> float:
        return self.failing / self.rows_checked if self.rows_checked else 0.0

    @property
    def outcome(self) -> str:
        """pass, or the check's severity when the failing share is over its threshold."""
        return "pass" if self.failing_share <= self.max_failing_share else self.severity


@dataclass(frozen=True)
class TableCounts:
    """What ingestion did with a table's files in the delivery (landing.delivery_files)."""

    rows: int  # data rows of the files (the manifest's count)
    loaded: int
    quarantined: int


@dataclass(frozen=True)
class Skipped:
    table: str
    check: Check
    reason: str


@dataclass
class Validation:
    """Everything `snds validate` learnt about a delivery, before it is recorded."""

    delivery_id: str
    counts: dict[str, TableCounts]  # per delivered table (every table with a file in the delivery)
    results: list[CheckResult]
    rows: dict[str, int]  # rows checked per table
    skipped: list[Skipped]  # checks not run, and why
    volumes: dict[str, dict[str, int]]  # per table: rows per month (ISO date of the month's first day)

    @property
    def status(self) -> str:
        return "rejected" if any(r.outcome == "error" for r in self.results) else "validated"


def load_thresholds(path: Path = THRESHOLDS_SEED) -> list[Threshold]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    thresholds = [
        Threshold(
            r["check_kind"],
            r["table_pattern"],
            r["product"],
            r["column_pattern"] or "*",
            r["severity"],
            float(r["max_failing_share"]),
        )
        for r in rows
    ]
    for threshold in thresholds:
        if threshold.severity not in SEVERITIES:
            raise RuleError(f"{path}: severity {threshold.severity!r} is not one of {SEVERITIES}")
    return thresholds


def threshold_for(thresholds: list[Threshold], check: Check, table: CatalogTable | None) -> Threshold:
    """The most specific threshold of a check for a table, or for the whole delivery (`table` None)."""
    matching = [t for t in thresholds if t.kind == check.kind and t.applies_to(table, check)]
    if not matching:
        where = table.name if table is not None else "the whole delivery"
        raise RuleError(f"no threshold for check {check.name} on {where} in {THRESHOLDS_SEED.name}")
    return max(matching, key=lambda t: t.specificity)


@contextmanager
def open_warehouse(database: Path, target: str = engine.EMBEDDED) -> Iterator[engine.Connection]:
    """The target's database (never created here; WarehouseError when the DuckDB file is missing, reserved or locked,
    EngineError when the server cannot be reached; WarehouseError on either without landing)."""
    with engine.connect(target, database) as con:
        warehouse.require_landing(con, engine.where(target, database))
        yield con


def _target_of(compiler: InlineCompiler) -> str:
    """The engine the compiler's SQL runs on: the DuckDB file unless it compiles for the `postgres` target."""
    return compiler.dbt_target or engine.EMBEDDED


def compile_parts(template_parts: dict[str, str], compile_sql: Callable[[str], str]) -> dict[str, str]:
    """Compile several Jinja snippets in ONE dbt compile; returns the SQL of each, by name.

    The parts are separated by a marker line carrying a random nonce drawn for this compile: no text of a part
    can forge it. The compiled SQL must hold exactly the parts given, in order, or ValidationError.
    """
    nonce = secrets.token_hex(16)
    marker = f"-- snds:conformity:{nonce}:part "
    for name in template_parts:
        if not _PART_NAME.fullmatch(name):
            raise ValidationError(f"compile part name {name!r} is not accepted")
    template = "\n".join(f"{marker}{name}\n{text}" for name, text in template_parts.items())
    pieces = re.split(rf"^{re.escape(marker)}(\S+)\n", compile_sql(template), flags=re.MULTILINE)
    names = pieces[1::2]
    if pieces[0].strip() or names != list(template_parts):
        raise ValidationError(
            f"the compiled SQL does not hold the {len(template_parts)} parts that were compiled ({len(names)} found)"
        )
    return {name: sql.strip() for name, sql in zip(names, pieces[2::2], strict=True)}


def check_aliases(checks: list[Check]) -> list[str]:
    """The name of each check's count in its table's query: its kind and a digest of its name (unique, <= 30)."""
    aliases: list[str] = []
    for check in checks:
        base = f"{check.kind}_{hashlib.sha256(check.name.encode()).hexdigest()[:8]}"
        alias, n = base, 1
        while alias in aliases:
            n += 1
            alias = f"{base}_{n}"
        aliases.append(alias)
    return aliases


def compile_queries(
    compiler: InlineCompiler,
    delivery_id: str,
    checks: dict[str, list[Check]],
    months: dict[str, str | None],
    cache: CompiledParts | None = None,
) -> dict[str, str]:
    """One query per table, from a single dbt compile of all the delivered tables' checks (or none: `cache` keeps
    what an earlier delivery with the same tables compiled).

    Each count is named by `check_aliases` (the query's columns: rows_checked, the aliases, volume_month).
    """
    delivery_id = identifiers.delivery_id(delivery_id)  # reaches the Jinja text only as a checked literal
    parts = {}
    for table, table_checks_ in checks.items():
        named = [
            replace(c, arguments={**c.arguments, "alias": a})
            for c, a in zip(table_checks_, check_aliases(table_checks_), strict=True)
        ]
        parts[table] = macro_call(table, _compiled_identifier(delivery_id, cache), named, months.get(table))
    return _compile_for(parts, delivery_id, compiler, cache)


def _compiled_identifier(delivery_id: str, cache: CompiledParts | None) -> str:
    """The identifier written into the Jinja parts: the cache's placeholder, replaced after the compile."""
    return PLACEHOLDER if cache else delivery_id


def _compile_for(
    parts: dict[str, str], delivery_id: str, compiler: InlineCompiler, cache: CompiledParts | None
) -> dict[str, str]:
    return cache.for_delivery(parts, delivery_id) if cache else compile_parts(parts, compiler.compile)


def conformity_compiler(
    target_path: Path, database: Path, dbt_target: str | None = None, manifest: Manifest | None = None
) -> InlineCompiler:
    """The compiler of the conformity snippets: they read the landing sources and macros, never a model, so that
    they compile against the parse cut to its sources (`InlineCompiler`'s `sources_only`)."""
    return InlineCompiler(target_path, database, dbt_target=dbt_target, manifest=manifest, sources_only=True)


def conformity_cache(compiler: InlineCompiler, target_path: Path) -> CompiledParts:
    database = compiler.database or config.database_path()
    kept_for = compiler.dbt_target or database.stem  # SQL compiled for another engine is kept apart
    return CompiledParts(
        target_path / "compiled_conformity", kept_for, lambda parts: compile_parts(parts, compiler.compile)
    )


def _require_delivery(con: engine.Connection, delivery_id: str) -> None:
    if not con.execute("select count(*) from landing.deliveries where DELIVERY_ID = ?", [delivery_id]).fetchone()[0]:
        raise UnknownDelivery(f"delivery {delivery_id} was never ingested")


def check_delivery(database: Path, delivery_id: str, target: str = engine.EMBEDDED) -> None:
    """Before any work: a checked identifier, a usable warehouse with landing, an ingested delivery."""
    identifiers.delivery_id(delivery_id)
    with open_warehouse(database, target) as con:
        _require_delivery(con, delivery_id)


def delivered_counts(con: engine.Connection, delivery_id: str) -> dict[str, TableCounts]:
    """Every table with a file in the delivery, loaded or not, with the ingestion's counts."""
    _require_delivery(con, delivery_id)
    rows = con.execute(
        "select TABLE_NAME, sum(ROW_COUNT), sum(LOADED_COUNT), sum(QUARANTINED_COUNT) from landing.delivery_files "
        "where DELIVERY_ID = ? group by TABLE_NAME order by TABLE_NAME",
        [delivery_id],
    ).fetchall()
    return {name: TableCounts(int(rows_), int(loaded), int(quarantined)) for name, rows_, loaded, quarantined in rows}


def delivered_tables(con: engine.Connection, delivery_id: str) -> list[str]:
    """The tables the delivery holds a file of, even when every line was quarantined."""
    return list(delivered_counts(con, delivery_id))


def _delivered_anywhere(con: engine.Connection, delivery_id: str) -> set[str]:
    """Tables a link may point to: delivered in this delivery or in a validated one (loaded or not)."""
    rows = con.execute(
        "select distinct f.TABLE_NAME from landing.delivery_files f join landing.deliveries d using (DELIVERY_ID) "
        "where f.DELIVERY_ID = ? or d.STATUS = 'validated'",
        [delivery_id],
    ).fetchall()
    return {r[0] for r in rows}


def _previous_volumes(con: engine.Connection, delivery_id: str) -> dict[str, tuple[str, list[int]]]:
    """Per template: the latest other validated delivery holding it, and its rows per month."""
    rows = con.execute(
        """select TEMPLATE, DELIVERY_ID, ROW_COUNT from (
            select v.TEMPLATE, v.DELIVERY_ID, v.ROW_COUNT, v.VOLUME_MONTH, d.LOADED_AT,
                max(d.LOADED_AT) over (partition by v.TEMPLATE) as LATEST_AT
            from landing.delivery_volumes v join landing.deliveries d on d.DELIVERY_ID = v.DELIVERY_ID
            where d.STATUS = 'validated' and v.DELIVERY_ID <> ?
        ) volumes
        where LOADED_AT = LATEST_AT
        order by TEMPLATE, VOLUME_MONTH""",
        [delivery_id],
    ).fetchall()
    previous: dict[str, tuple[str, list[int]]] = {}
    for template, delivery, count in rows:
        previous.setdefault(template, (delivery, []))[1].append(int(count))
    return previous


def _volume_result(
    volumes: dict[str, int], previous: tuple[str, list[int]], change: float, column: str
) -> tuple[Check, list[list]]:
    """The months whose volume moved more than `change` from the previous delivery's median month."""
    delivery, counts = previous
    median = statistics.median(counts)
    moved = [[month, rows, median] for month, rows in sorted(volumes.items()) if abs(rows - median) > change * median]
    check = Check("volume_month", column, arguments={"previous_delivery": delivery, "max_relative_change": change})
    return check, moved


def _compared_with(check: Check) -> str:
    """The other table a check reads (a link's parent, a code list), or ''."""
    return str(check.arguments.get("parent") or check.arguments.get("code_table") or "")


def plan(
    con: engine.Connection, rules: Rules, delivery_id: str, names: list[str]
) -> tuple[dict[str, list[Check]], list[Skipped]]:
    """Each table's checks, without those comparing with a table never delivered (listed as skipped).

    A table delivered but fully quarantined was delivered: a link to it is checked (and fails).
    """
    available = _delivered_anywhere(con, delivery_id)
    checks: dict[str, list[Check]] = {}
    skipped: list[Skipped] = []
    for name in names:
        planned = table_checks(rules.tables[name], rules)
        checks[name] = [c for c in planned if _compared_with(c) in available | {""}]
        skipped += [
            Skipped(name, c, f"{_compared_with(c)} was never delivered") for c in planned if c not in checks[name]
        ]
    return checks, skipped


def _result(
    table: CatalogTable | None, check: Check, checked: int, failing: int, thresholds: list[Threshold]
) -> CheckResult:
    threshold = threshold_for(thresholds, check, table)
    name = table.name if table is not None else ""
    return CheckResult(name, check, checked, failing, threshold.severity, threshold.max_failing_share)


def ingest_results(counts: dict[str, TableCounts], rules: Rules, thresholds: list[Threshold]) -> list[CheckResult]:
    """The checks of the ingestion's counts: quarantined share per table and for the delivery, tables not loaded."""
    results = []
    for name, counted in counts.items():
        table = rules.tables[name]
        results.append(_result(table, Check("quarantined_rows"), counted.rows, counted.quarantined, thresholds))
        results.append(
            _result(table, Check("rows_loaded"), 1, int(counted.rows > 0 and not counted.loaded), thresholds)
        )
    rows = sum(c.rows for c in counts.values())
    quarantined = sum(c.quarantined for c in counts.values())
    results.append(_result(None, Check("quarantined_rows", label=DELIVERY_TARGET), rows, quarantined, thresholds))
    return results


def _measure(
    con: engine.Connection, name: str, sql: str, checks: list[Check], month: str | None
) -> tuple[int, list[int], dict[str, int]]:
    """Run a table's query; its columns are read by name: rows checked, each check's count, rows per month."""
    cursor = con.execute(sql)
    columns = [d[0].lower() for d in cursor.description or []]
    rows = cursor.fetchall()
    aliases = check_aliases(checks)
    expected = ["rows_checked", *aliases, *(["volume_month"] if month else [])]
    if sorted(columns) != sorted(expected):
        raise ValidationError(f"the conformity query of {name} does not return the columns of its checks")
    at = {column: i for i, column in enumerate(columns)}
    checked = sum(int(r[at["rows_checked"]]) for r in rows)
    failing = [sum(int(r[at[alias]] or 0) for r in rows) for alias in aliases]
    volumes = {}
    if month:
        monthly = [(r[at["volume_month"]], int(r[at["rows_checked"]])) for r in rows]
        volumes = dict(sorted((str(m)[:10], n) for m, n in monthly if m))
    return checked, failing, volumes


def run_checks(
    compiler: InlineCompiler,
    delivery_id: str,
    rules: Rules,
    progress: Callable[[str], None] = lambda _: None,
    cache: CompiledParts | None = None,
) -> Validation:
    database, target = compiler.database or config.database_path(), _target_of(compiler)
    thresholds = load_thresholds()
    with open_warehouse(database, target) as con:
        counts = delivered_counts(con, delivery_id)
        unknown = [name for name in counts if name not in rules.tables]
        if unknown:
            raise ValidationError(f"tables of delivery {delivery_id} are not in the catalog: {', '.join(unknown)}")
        names = list(counts)
        checks, skipped = plan(con, rules, delivery_id, names)
        previous = _previous_volumes(con, delivery_id)
        policies = {name: check_policy(con, delivery_id, rules.tables[name]) for name in names}
    months = {name: month_column(rules.tables[name], rules) for name in names}
    progress(f"compiling the checks of {len(names)} tables")
    queries = compile_queries(compiler, delivery_id, checks, months, cache)
    validation = Validation(delivery_id, counts, ingest_results(counts, rules, thresholds), {}, skipped, {})
    for name, policy in policies.items():  # another delivery of the same months may have been promoted since loading
        check = Check(POLICY_KIND, label=rules.tables[name].policy.name)
        result = _result(rules.tables[name], check, policy.periods, policy.breaking, thresholds)
        shown = {"columns": ["reason"], "rows": [[policy.problem]]} if policy.problem else {}
        validation.results.append(replace(result, examples=shown))
    with open_warehouse(database, target) as con:
        for name in names:
            progress(name)
            table, month = rules.tables[name], months[name]
            checked, failing, volumes = _measure(con, name, queries[name], checks[name], month)
            validation.rows[name] = checked
            for check, count in zip(checks[name], failing, strict=True):
                validation.results.append(_result(table, check, checked, count, thresholds))
            if month is None:
                continue
            validation.volumes[name] = volumes
            rule = rules.volume_rule(table)
            if table.template not in previous or rule is None:
                skipped.append(Skipped(name, Check("volume_month", month), "no previous validated delivery"))
                continue
            check, moved = _volume_result(volumes, previous[table.template], rule.max_relative_change, month)
            result = _result(table, check, len(volumes), len(moved), thresholds)
            validation.results.append(
                replace(result, examples={"columns": ["month", "rows", "previous_median"], "rows": moved})
            )
    return validation


def _example_columns(table: CatalogTable, check: Check) -> list[str]:
    """What identifies a row (its key, else its first link's columns, else its first columns), then the checked ones."""
    identifying = table.primary_key or (table.links[0].columns if table.links else ()) or (table.columns[0].name,)
    names = {c.name for c in table.columns}
    wanted = [c for c in (*identifying, *([check.column] if check.column else []), *check.columns) if c in names]
    return list(dict.fromkeys(wanted))[:10]


def _platform_pads(con: engine.Connection) -> dict[str, Pads]:
    """The active platform key of each identifier domain (none before `snds keys init`)."""
    rows = con.execute(
        "select KEY_DOMAIN, IPAD, OPAD from keys.key_material where KEY_SCOPE = 'platform' and KEY_STATUS = 'active'"
    ).fetchall()
    return {domain: Pads(bytes(ipad), bytes(opad)) for domain, ipad, opad in rows}


def _shown(value: object, domain: str, keys: dict[str, Pads], length: int) -> str | None:
    """An example value as a report may show it: identifiers only as their platform pseudonym."""
    if value is None:
        return None
    if domain not in ("person", "professional"):
        return str(value)
    pads = keys.get(domain)
    return pseudonym(pads.key, str(value), length) if pads else "(hidden: no platform key)"


def _by_name(cursor: engine.Connection, columns: list[str]) -> list[list]:
    """The rows of a query, its values in the order of `columns`, found by column name."""
    at = {d[0].upper(): i for i, d in enumerate(cursor.description or [])}
    missing = [c for c in columns if c.upper() not in at]
    if missing:
        raise ValidationError(f"an examples query does not return the columns {', '.join(missing)}")
    return [[row[at[c.upper()]] for c in columns] for row in cursor.fetchall()]


def add_examples(
    compiler: InlineCompiler, validation: Validation, rules: Rules, cache: CompiledParts | None = None
) -> None:
    """Attach up to EXAMPLE_ROWS failing rows to each failed check; identifiers are shown as platform pseudonyms."""
    failed = [
        i
        for i, r in enumerate(validation.results)
        if r.outcome in ("warn", "error") and r.check.kind not in (*INGEST_KINDS, "volume_month", POLICY_KIND)
    ][:MAX_EXAMPLE_CHECKS]
    if not failed:
        return
    delivery_id = identifiers.delivery_id(validation.delivery_id)
    columns = {
        i: _example_columns(rules.tables[validation.results[i].table], validation.results[i].check) for i in failed
    }
    parts = {
        str(i): examples_call(
            validation.results[i].table,
            _compiled_identifier(delivery_id, cache),
            validation.results[i].check,
            columns[i],
            EXAMPLE_ROWS,
        )
        for i in failed
    }
    queries = _compile_for(parts, delivery_id, compiler, cache)
    with open_warehouse(compiler.database or config.database_path(), _target_of(compiler)) as con:
        keys = _platform_pads(con)
        for i in failed:
            result = validation.results[i]
            classes = {c.name: c.identifier_class.removeprefix("direct_") for c in rules.tables[result.table].columns}
            rows = [
                [
                    _shown(v, classes.get(c, ""), keys, rules.pseudonym_length)
                    for c, v in zip(columns[i], row, strict=True)
                ]
                for row in _by_name(con.execute(queries[str(i)]), columns[i])
            ]
            validation.results[i] = replace(result, examples={"columns": columns[i], "rows": rows})


def _table_outcome(results: list[CheckResult]) -> str:
    """pass, warn or error: the worst outcome of the table's checks (info never fails)."""
    worst = max((_RANK[r.outcome] for r in results), default=0)
    return {0: "pass", 1: "warn", 2: "error"}[worst]


def _insert(con: engine.Connection, table: str, rows: list[dict]) -> None:
    """Insert rows (by column name) into a landing table in one statement: one list parameter per column."""
    if not rows:
        return
    described = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'landing' and table_name = ?",
        [table],
    ).fetchall()
    types = {name.upper(): kind for name, kind in described}  # PostgreSQL stores the names in lower case
    names = list(rows[0])
    unnested = ", ".join(f"unnest(cast(? as {types[name]}[]))" for name in names)
    con.execute(
        f"insert into landing.{table} ({', '.join(names)}) select {unnested}",
        [[row[name] for row in rows] for name in names],
    )


def _result_rows(validation: Validation, rules: Rules, key: dict) -> tuple[list[dict], list[dict]]:
    """The rows of conformity_results (every check run, then every check skipped) and of conformity_examples."""
    thresholds = load_thresholds()
    skipped = [(_result(rules.tables[s.table], s.check, 0, 0, thresholds), s.reason) for s in validation.skipped]
    results, examples = [], []
    for order, (result, note) in enumerate([*((r, None) for r in validation.results), *skipped]):
        ran = note is None
        results.append(
            key
            | {
                "CHECK_ORDER": order,
                "TABLE_NAME": result.table or None,
                "CHECK_NAME": result.check.name,
                "CHECK_KIND": result.check.kind,
                "CATEGORY": result.check.category,
                "TARGET": result.check.target,
                "ROWS_CHECKED": result.rows_checked if ran else None,
                "FAILING": result.failing if ran else None,
                "SEVERITY": result.severity,
                "MAX_FAILING_SHARE": result.max_failing_share,
                "OUTCOME": result.outcome if ran else "skipped",
                "NOTE": note,
            }
        )
        for number, row in enumerate(result.examples.get("rows", []), start=1):
            for position, (column, value) in enumerate(zip(result.examples["columns"], row, strict=True), start=1):
                examples.append(
                    key
                    | {
                        "CHECK_ORDER": order,
                        "EXAMPLE_ROW": number,
                        "COLUMN_POSITION": position,
                        "COLUMN_NAME": column,
                        "SHOWN_VALUE": None if value is None else str(value),
                    }
                )
    return results, examples


def record_outcome(database: Path, validation: Validation, rules: Rules, target: str = engine.EMBEDDED) -> datetime:
    """In one transaction: the delivery's status (what promotion reads), every check's result, the examples,
    the tables' counts, the monthly volumes and the audit event. Returns the validation's time (its key)."""
    delivery, status = validation.delivery_id, validation.status
    key = {"DELIVERY_ID": delivery, "VALIDATED_AT": datetime.now()}
    by_table: dict[str, list[CheckResult]] = {}
    for result in validation.results:
        by_table.setdefault(result.table, []).append(result)
    tables = [
        key
        | {
            "TABLE_NAME": name,
            "ROW_COUNT": counts.rows,
            "LOADED_COUNT": counts.loaded,
            "QUARANTINED_COUNT": counts.quarantined,
            "ROWS_CHECKED": validation.rows.get(name, 0),
            "OUTCOME": _table_outcome(by_table.get(name, [])),
        }
        for name, counts in validation.counts.items()
    ]
    results, examples = _result_rows(validation, rules, key)
    volumes = [
        {
            "DELIVERY_ID": delivery,
            "TABLE_NAME": name,
            "TEMPLATE": rules.tables[name].template,
            "VOLUME_MONTH": month,
            "ROW_COUNT": rows,
        }
        for name, monthly in validation.volumes.items()
        for month, rows in monthly.items()
    ]
    outcomes = [r.outcome for r in validation.results]
    detail = {
        "checks": len(outcomes),
        "check_kinds": len({r.check.kind for r in validation.results}),
        "errors": outcomes.count("error"),
        "warnings": outcomes.count("warn"),
    }
    with open_warehouse(database, target) as con:
        create_bookkeeping(con)  # databases created before the conformity tables existed
        con.execute("begin")
        try:
            con.execute("update landing.deliveries set STATUS = ? where DELIVERY_ID = ?", [status, delivery])
            _insert(con, "validations", [key | {"STATUS": status}])
            _insert(con, "conformity_tables", tables)
            _insert(con, "conformity_results", results)
            _insert(con, "conformity_examples", examples)
            con.execute("delete from landing.delivery_volumes where DELIVERY_ID = ?", [delivery])
            _insert(con, "delivery_volumes", volumes)
            audit.record(con, "validate", delivery, status, detail)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return key["VALIDATED_AT"]


def _records(cursor: engine.Connection) -> list[dict]:
    """A query's rows as dictionaries, by column name."""
    names = [d[0].upper() for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _check_entry(result: dict, examples: dict) -> dict:
    checked, failing = result["ROWS_CHECKED"], result["FAILING"]
    return {
        "check": result["CHECK_NAME"],
        "kind": result["CHECK_KIND"],
        "category": result["CATEGORY"],
        "severity": result["SEVERITY"],
        "outcome": result["OUTCOME"],
        "checked": checked,
        "failing": failing,
        "failing_share": round(failing / checked, 6) if checked else 0.0,
        "max_failing_share": result["MAX_FAILING_SHARE"],
        "examples": examples,
    }


def read_report(con: engine.Connection, delivery_id: str) -> dict:
    """The report of the delivery's latest validation, from the warehouse tables (and its quarantine summary)."""
    latest = _records(
        con.execute(
            "select VALIDATED_AT, STATUS from landing.validations where DELIVERY_ID = ? "
            "order by VALIDATED_AT desc limit 1",
            [delivery_id],
        )
    )
    if not latest:
        raise UnknownDelivery(f"delivery {delivery_id} was never validated")
    key = [delivery_id, latest[0]["VALIDATED_AT"]]
    scope = "where DELIVERY_ID = ? and VALIDATED_AT = ?"
    counted = _records(con.execute(f"select * from landing.conformity_tables {scope} order by TABLE_NAME", key))
    results = _records(con.execute(f"select * from landing.conformity_results {scope} order by CHECK_ORDER", key))
    examples: dict[int, dict] = {}
    for row in _records(
        con.execute(
            f"select * from landing.conformity_examples {scope} order by CHECK_ORDER, EXAMPLE_ROW, COLUMN_POSITION", key
        )
    ):
        shown = examples.setdefault(row["CHECK_ORDER"], {"columns": [], "rows": []})
        if row["EXAMPLE_ROW"] == 1:
            shown["columns"].append(row["COLUMN_NAME"])
        if row["COLUMN_POSITION"] == 1:
            shown["rows"].append([])
        shown["rows"][-1].append(row["SHOWN_VALUE"])
    volumes: dict[str, dict[str, int]] = {}
    for name, month, rows in con.execute(
        "select TABLE_NAME, VOLUME_MONTH, ROW_COUNT from landing.delivery_volumes where DELIVERY_ID = ? "
        "order by TABLE_NAME, VOLUME_MONTH",
        [delivery_id],
    ).fetchall():
        volumes.setdefault(name, {})[str(month)[:10]] = int(rows)
    groups: dict[str, list[dict]] = {}
    for group in quarantine_summary(con, delivery_id):
        groups.setdefault(group.table, []).append(group.as_json())
    tables = {
        t["TABLE_NAME"]: {
            "rows": t["ROWS_CHECKED"],
            "delivered": t["ROW_COUNT"],
            "loaded": t["LOADED_COUNT"],
            "quarantined": t["QUARANTINED_COUNT"],
            "outcome": t["OUTCOME"],
            "checks": 0,
            "failed": [],
            "counted": {},
            "tolerated": {},
            "flags": {},
            "skipped": [],
            "volumes": volumes.get(t["TABLE_NAME"], {}),
            "quarantine": groups.get(t["TABLE_NAME"], []),
        }
        for t in counted
    }
    delivery_checks, run = [], [r for r in results if r["OUTCOME"] != "skipped"]
    for result in results:
        if result["TABLE_NAME"] is None:
            delivery_checks.append(_check_entry(result, examples.get(result["CHECK_ORDER"], {})))
            continue
        entry, name, outcome = tables[result["TABLE_NAME"]], result["CHECK_NAME"], result["OUTCOME"]
        if outcome == "skipped":
            entry["skipped"].append({"check": name, "reason": result["NOTE"]})
            continue
        entry["checks"] += 1
        if result["CHECK_KIND"] == "cleaning_flag":
            entry["flags"][result["TARGET"]] = result["FAILING"]
        elif outcome == "info":
            entry["counted"][name] = result["FAILING"]
        elif outcome == "pass":
            if result["FAILING"]:
                entry["tolerated"][name] = result["FAILING"]
        else:
            entry["failed"].append(_check_entry(result, examples.get(result["CHECK_ORDER"], {})))
    outcomes = [r["OUTCOME"] for r in run]
    categories: dict[str, int] = {}
    for result in run:
        categories[result["CATEGORY"]] = categories.get(result["CATEGORY"], 0) + 1
    delivered = {k: sum(t[k] for t in tables.values()) for k in ("delivered", "loaded", "quarantined")}
    return {
        "delivery": delivery_id,
        "validated_at": latest[0]["VALIDATED_AT"].isoformat(timespec="seconds"),
        "status": latest[0]["STATUS"],
        "checks": len(run),
        "check_kinds": len({r["CHECK_KIND"] for r in run}),
        "categories": dict(sorted(categories.items())),
        "errors": outcomes.count("error"),
        "warnings": outcomes.count("warn"),
        "skipped": len(results) - len(run),
        "quarantine": {"rows": delivered["delivered"], **{k: delivered[k] for k in ("loaded", "quarantined")}},
        "delivery_checks": delivery_checks,
        "tables": tables,
    }


def validate_delivery(
    database: Path,
    delivery_id: str,
    rules: Rules,
    target_path: Path,
    progress: Callable[[str], None] = lambda _: None,
    manifest: Manifest | None = None,
    target: str = engine.EMBEDDED,
) -> dict:
    """Check a delivery, record its status and results (the promotion gate reads them) and return the report.
    `manifest`: the project as the caller parsed it already (`InlineCompiler`), for `target`; `target`: the engine
    (duckdb: the file `database`; postgres: the server of the `postgres` dbt target)."""
    delivery_id = identifiers.delivery_id(delivery_id)  # before anything: it names SQL literals and directories
    with engine.held(target, database):  # each step below connects in turn
        check_delivery(database, delivery_id, target)
        compiler = conformity_compiler(target_path, database, engine.dbt_target(target), manifest)
        cache = conformity_cache(compiler, target_path)
        validation = run_checks(compiler, delivery_id, rules, progress, cache)
        progress("examples of the failed checks")
        add_examples(compiler, validation, rules, cache)
        record_outcome(database, validation, rules, target)
        with open_warehouse(database, target) as con:
            return read_report(con, delivery_id)
