"""Validate one delivery: compile each delivered table's checks into one query (one dbt compile for all),
run them, apply the thresholds, and say whether the delivery may be promoted into the base.
"""

from __future__ import annotations

import csv
import fnmatch
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from snds import audit, config
from snds.catalog.committed import CatalogTable
from snds.conformity.checks import RULES_DIR, Check, Rules, examples_call, macro_call, month_column, table_checks
from snds.dbt import InlineCompiler
from snds.keys.material import Pads, pseudonym

THRESHOLDS_SEED = RULES_DIR / "conformity_thresholds.csv"
SEVERITIES = ("info", "warn", "error")
EXAMPLE_ROWS = 5
MAX_EXAMPLE_CHECKS = 50  # examples are fetched for this many failing checks at most (one compile for all)
_MARKER = "-- snds:conformity:query "
_RANK = {"pass": 0, "info": 0, "warn": 1, "error": 2}  # a table's outcome: its worst check (info never fails)


class ValidationError(Exception):
    """The delivery cannot be validated (unknown, or nothing landed)."""


@dataclass(frozen=True)
class Threshold:
    kind: str
    table_pattern: str
    product: str  # empty: any product
    column_pattern: str
    severity: str
    max_failing_share: float

    def applies_to(self, table: CatalogTable, check: Check) -> bool:
        return (
            fnmatch.fnmatchcase(table.name, self.table_pattern)
            and self.product in ("", table.product)
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
    table: str
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


@dataclass
class Validation:
    """Everything `snds validate` learnt about a delivery, before it is summarised."""

    delivery_id: str
    results: list[CheckResult]
    rows: dict[str, int]  # rows checked per table
    skipped: dict[str, list[dict[str, str]]]  # per table: checks not run and why
    volumes: dict[str, dict[str, int]]  # per table: rows per month (ISO date of the month's first day)


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
            raise ValueError(f"{path}: severity {threshold.severity!r} is not one of {SEVERITIES}")
    return thresholds


def threshold_for(thresholds: list[Threshold], check: Check, table: CatalogTable) -> Threshold:
    """The most specific threshold of a check for a table (longest patterns, then a named product)."""
    matching = [t for t in thresholds if t.kind == check.kind and t.applies_to(table, check)]
    if not matching:
        raise ValueError(f"no threshold for check {check.name} on {table.name} in {THRESHOLDS_SEED.name}")
    return max(matching, key=lambda t: t.specificity)


def compile_parts(template_parts: dict[str, str], compile_sql: Callable[[str], str]) -> dict[str, str]:
    """Compile several Jinja snippets in ONE dbt compile; returns the SQL of each, by name."""
    template = "\n".join(f"{_MARKER}{name}\n{text}" for name, text in template_parts.items())
    parts = re.split(rf"^{re.escape(_MARKER)}(\S+)\n", compile_sql(template), flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def compile_queries(
    compiler: InlineCompiler, delivery_id: str, checks: dict[str, list[Check]], months: dict[str, str | None]
) -> dict[str, str]:
    """One query per table, from a single dbt compile of all the delivered tables' checks."""
    return compile_parts({t: macro_call(t, delivery_id, c, months.get(t)) for t, c in checks.items()}, compiler.compile)


def delivered_tables(con: duckdb.DuckDBPyConnection, delivery_id: str) -> list[str]:
    if not con.execute("select count(*) from landing.deliveries where DELIVERY_ID = ?", [delivery_id]).fetchone()[0]:
        raise ValidationError(f"delivery {delivery_id} was never ingested")
    rows = con.execute(
        "select distinct TABLE_NAME from landing.delivery_files where DELIVERY_ID = ? and LOADED_COUNT > 0 "
        "order by TABLE_NAME",
        [delivery_id],
    ).fetchall()
    return [r[0] for r in rows]


def _tables_with_rows(con: duckdb.DuckDBPyConnection, delivery_id: str) -> set[str]:
    """Tables a link may point to: rows in this delivery or in a validated one."""
    rows = con.execute(
        "select distinct f.TABLE_NAME from landing.delivery_files f join landing.deliveries d using (DELIVERY_ID) "
        "where f.LOADED_COUNT > 0 and (f.DELIVERY_ID = ? or d.STATUS = 'validated')",
        [delivery_id],
    ).fetchall()
    return {r[0] for r in rows}


def _previous_volumes(con: duckdb.DuckDBPyConnection, delivery_id: str) -> dict[str, tuple[str, list[int]]]:
    """Per template: the latest other validated delivery holding it, and its rows per month."""
    rows = con.execute(
        """select v.TEMPLATE, v.DELIVERY_ID, v.ROW_COUNT
        from landing.delivery_volumes v join landing.deliveries d using (DELIVERY_ID)
        where d.STATUS = 'validated' and v.DELIVERY_ID <> ?
        qualify d.LOADED_AT = max(d.LOADED_AT) over (partition by v.TEMPLATE)
        order by v.TEMPLATE, v.VOLUME_MONTH""",
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
    con: duckdb.DuckDBPyConnection, rules: Rules, delivery_id: str, names: list[str]
) -> tuple[dict[str, list[Check]], dict[str, list[dict[str, str]]]]:
    """Each table's checks, without those comparing with a table that was never delivered (listed as skipped)."""
    available = _tables_with_rows(con, delivery_id)
    checks: dict[str, list[Check]] = {}
    skipped: dict[str, list[dict[str, str]]] = {}
    for name in names:
        planned = table_checks(rules.tables[name], rules)
        checks[name] = [c for c in planned if _compared_with(c) in available | {""}]
        skipped[name] = [
            {"check": c.name, "reason": f"{_compared_with(c)} was never delivered"}
            for c in planned
            if c not in checks[name]
        ]
    return checks, skipped


def _result(table: CatalogTable, check: Check, checked: int, failing: int, thresholds: list[Threshold]) -> CheckResult:
    threshold = threshold_for(thresholds, check, table)
    return CheckResult(table.name, check, checked, failing, threshold.severity, threshold.max_failing_share)


def run_checks(
    compiler: InlineCompiler, delivery_id: str, rules: Rules, progress: Callable[[str], None] = lambda _: None
) -> Validation:
    database = compiler.database or config.database_path()
    thresholds = load_thresholds()
    with duckdb.connect(str(database)) as con:
        names = delivered_tables(con, delivery_id)
        checks, skipped = plan(con, rules, delivery_id, names)
        previous = _previous_volumes(con, delivery_id)
    months = {name: month_column(rules.tables[name], rules) for name in names}
    progress(f"compiling the checks of {len(names)} tables")
    queries = compile_queries(compiler, delivery_id, checks, months)
    validation = Validation(delivery_id, [], {}, skipped, {})
    with duckdb.connect(str(database)) as con:
        for name in names:
            progress(name)
            table, month = rules.tables[name], months[name]
            rows = con.execute(queries[name]).fetchall()  # one row, or one per month
            checked = validation.rows[name] = sum(int(r[0]) for r in rows)
            for i, check in enumerate(checks[name], start=1):
                validation.results.append(_result(table, check, checked, sum(int(r[i] or 0) for r in rows), thresholds))
            if month is None:
                continue
            volumes = validation.volumes[name] = dict(sorted((str(r[-1])[:10], int(r[0])) for r in rows if r[-1]))
            rule = rules.volume_rule(table)
            if table.template not in previous or rule is None:
                skipped[name].append({"check": f"volume_month:{month}", "reason": "no previous validated delivery"})
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


def _platform_pads(con: duckdb.DuckDBPyConnection) -> dict[str, Pads]:
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


def add_examples(compiler: InlineCompiler, validation: Validation, rules: Rules) -> None:
    """Attach up to EXAMPLE_ROWS failing rows to each failed check; identifiers are shown as platform pseudonyms."""
    failed = [
        i for i, r in enumerate(validation.results) if r.outcome in ("warn", "error") and r.check.kind != "volume_month"
    ][:MAX_EXAMPLE_CHECKS]
    if not failed:
        return
    columns = {
        i: _example_columns(rules.tables[validation.results[i].table], validation.results[i].check) for i in failed
    }
    queries = compile_parts(
        {
            str(i): examples_call(
                validation.results[i].table,
                validation.delivery_id,
                validation.results[i].check,
                columns[i],
                EXAMPLE_ROWS,
            )
            for i in failed
        },
        compiler.compile,
    )
    with duckdb.connect(str(compiler.database or config.database_path())) as con:
        keys = _platform_pads(con)
        for i in failed:
            result = validation.results[i]
            classes = {c.name: c.identifier_class.removeprefix("direct_") for c in rules.tables[result.table].columns}
            rows = [
                [
                    _shown(v, classes.get(c, ""), keys, rules.pseudonym_length)
                    for c, v in zip(columns[i], row, strict=True)
                ]
                for row in con.execute(queries[str(i)]).fetchall()
            ]
            validation.results[i] = replace(result, examples={"columns": columns[i], "rows": rows})


def summarise(validation: Validation) -> dict:
    """The report: counts per outcome, per category, per table, and every failed check with its counts."""
    results = validation.results
    tables: dict[str, dict] = {
        name: {
            "rows": rows,
            "outcome": "pass",
            "checks": 0,
            "failed": [],
            "counted": {},
            "tolerated": {},
            "flags": {},
            "skipped": validation.skipped.get(name, []),
            "volumes": validation.volumes.get(name, {}),
        }
        for name, rows in validation.rows.items()
    }
    for result in results:
        entry = tables[result.table]
        entry["checks"] += 1
        if result.check.kind == "cleaning_flag":
            entry["flags"][result.check.target] = result.failing
        elif result.outcome == "info":
            entry["counted"][result.check.name] = result.failing
        elif result.outcome == "pass":
            if result.failing:
                entry["tolerated"][result.check.name] = result.failing
        else:
            entry["failed"].append(
                {
                    "check": result.check.name,
                    "kind": result.check.kind,
                    "category": result.check.category,
                    "severity": result.outcome,
                    "checked": result.rows_checked,
                    "failing": result.failing,
                    "failing_share": round(result.failing_share, 6),
                    "max_failing_share": result.max_failing_share,
                    "examples": result.examples,
                }
            )
            if _RANK[result.outcome] > _RANK[entry["outcome"]]:
                entry["outcome"] = result.outcome
    outcomes = [r.outcome for r in results]
    categories: dict[str, int] = {}
    for result in results:
        categories[result.check.category] = categories.get(result.check.category, 0) + 1
    return {
        "delivery": validation.delivery_id,
        "status": "rejected" if "error" in outcomes else "validated",
        "checks": len(results),
        "check_kinds": len({r.check.kind for r in results}),
        "categories": dict(sorted(categories.items())),
        "errors": outcomes.count("error"),
        "warnings": outcomes.count("warn"),
        "skipped": sum(len(s) for s in validation.skipped.values()),
        "tables": tables,
    }


def record_outcome(database: Path, report: dict, validation: Validation, rules: Rules) -> None:
    """The delivery's status (validated or rejected: what promotion reads), its monthly volumes, the audit event."""
    with duckdb.connect(str(database)) as con:
        con.execute("begin")
        delivery = report["delivery"]
        con.execute("update landing.deliveries set STATUS = ? where DELIVERY_ID = ?", [report["status"], delivery])
        con.execute("delete from landing.delivery_volumes where DELIVERY_ID = ?", [delivery])
        for name, volumes in validation.volumes.items():
            con.executemany(
                "insert into landing.delivery_volumes values (?, ?, ?, ?, ?)",
                [[delivery, name, rules.tables[name].template, month, rows] for month, rows in volumes.items()],
            )
        detail = {k: report[k] for k in ("checks", "check_kinds", "errors", "warnings")}
        audit.record(con, "validate", delivery, report["status"], detail)
        con.execute("commit")


def validate_delivery(
    database: Path,
    delivery_id: str,
    rules: Rules,
    target_path: Path,
    progress: Callable[[str], None] = lambda _: None,
) -> dict:
    """Check a delivery, record its status (the promotion gate reads it) and return the report."""
    compiler = InlineCompiler(target_path, database)
    validation = run_checks(compiler, delivery_id, rules, progress)
    progress("examples of the failed checks")
    add_examples(compiler, validation, rules)
    report = summarise(validation)
    record_outcome(database, report, validation, rules)
    return report
