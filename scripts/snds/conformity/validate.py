"""Validate one delivery: compile each delivered table's checks into one query (one dbt compile for all),
run them, apply the thresholds, and say whether the delivery may be promoted into the base.
"""

from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.config import PROJECT_ROOT
from snds.conformity.checks import Check, code_lists, macro_call, table_checks
from snds.dbt import run_dbt

THRESHOLDS_SEED = PROJECT_ROOT / "seeds" / "conformity" / "conformity_thresholds.csv"
SEVERITIES = ("info", "warn", "error")
_MARKER = "-- snds:conformity:table "
_RANK = {"pass": 0, "info": 0, "warn": 1, "error": 2}  # a table's outcome: its worst check (info never fails)


class ValidationError(Exception):
    """The delivery cannot be validated (unknown, or nothing landed)."""


@dataclass(frozen=True)
class Threshold:
    kind: str
    table_pattern: str
    product: str  # empty: any product
    severity: str
    max_failing_share: float

    def applies_to(self, table: CatalogTable) -> bool:
        return fnmatch.fnmatchcase(table.name, self.table_pattern) and self.product in ("", table.product)

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.table_pattern.replace("*", "")), bool(self.product))


@dataclass(frozen=True)
class CheckResult:
    table: str
    check: Check
    rows_checked: int
    failing: int
    severity: str
    max_failing_share: float

    @property
    def failing_share(self) -> float:
        return self.failing / self.rows_checked if self.rows_checked else 0.0

    @property
    def outcome(self) -> str:
        """pass, or the check's severity when the failing share is over its threshold."""
        return "pass" if self.failing_share <= self.max_failing_share else self.severity


def load_thresholds(path: Path = THRESHOLDS_SEED) -> list[Threshold]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    thresholds = [
        Threshold(r["check_kind"], r["table_pattern"], r["product"], r["severity"], float(r["max_failing_share"]))
        for r in rows
    ]
    for threshold in thresholds:
        if threshold.severity not in SEVERITIES:
            raise ValueError(f"{path}: severity {threshold.severity!r} is not one of {SEVERITIES}")
    return thresholds


def threshold_for(thresholds: list[Threshold], kind: str, table: CatalogTable) -> Threshold:
    """The most specific threshold of a check kind for a table (longest pattern, then a named product)."""
    matching = [t for t in thresholds if t.kind == kind and t.applies_to(table)]
    if not matching:
        raise ValueError(f"no threshold for check kind {kind!r} on {table.name} in {THRESHOLDS_SEED.name}")
    return max(matching, key=lambda t: t.specificity)


def compile_queries(delivery_id: str, checks: dict[str, list[Check]], target_path: Path) -> dict[str, str]:
    """One query per table, from a single dbt compile of all the delivered tables' checks."""
    template = "\n".join(f"{_MARKER}{table}\n{macro_call(table, delivery_id, c)}" for table, c in checks.items())
    run = run_dbt("compile", "--quiet", "--log-level", "none", "--inline", template, target_path=target_path)
    compiled = run.result.result.results[0].node.compiled_code
    parts = re.split(rf"^{re.escape(_MARKER)}(\S+)\n", compiled, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def delivered_tables(con: duckdb.DuckDBPyConnection, delivery_id: str) -> list[str]:
    if not con.execute("select count(*) from landing.deliveries where DELIVERY_ID = ?", [delivery_id]).fetchone()[0]:
        raise ValidationError(f"delivery {delivery_id} was never ingested")
    rows = con.execute(
        "select distinct TABLE_NAME from landing.delivery_files where DELIVERY_ID = ? and LOADED_COUNT > 0 "
        "order by TABLE_NAME",
        [delivery_id],
    ).fetchall()
    return [r[0] for r in rows]


def run_checks(
    database: Path,
    delivery_id: str,
    tables: dict[str, CatalogTable],
    pseudonym_length: int,
    target_path: Path,
) -> list[CheckResult]:
    thresholds = load_thresholds()
    nomenclatures = code_lists(tables)
    with duckdb.connect(str(database)) as con:
        names = delivered_tables(con, delivery_id)
    checks = {name: table_checks(tables[name], nomenclatures, pseudonym_length) for name in names}
    queries = compile_queries(delivery_id, checks, target_path)
    results: list[CheckResult] = []
    with duckdb.connect(str(database)) as con:
        for name in names:
            row = con.execute(queries[name]).fetchone()
            rows_checked, counts = int(row[0]), row[1:]
            for check, failing in zip(checks[name], counts, strict=True):
                threshold = threshold_for(thresholds, check.kind, tables[name])
                results.append(
                    CheckResult(
                        name, check, rows_checked, int(failing or 0), threshold.severity, threshold.max_failing_share
                    )
                )
    return results


def summarise(delivery_id: str, results: list[CheckResult]) -> dict:
    """The report: counts per outcome, per table, and every check with its counts."""
    tables: dict[str, dict] = {}
    for result in results:
        entry = tables.setdefault(
            result.table, {"rows": result.rows_checked, "outcome": "pass", "checks": 0, "failed": [], "counted": {}}
        )
        entry["checks"] += 1
        if result.outcome == "info":
            entry["counted"][result.check.name] = result.failing
        elif result.outcome != "pass":
            entry["failed"].append(
                {
                    "check": result.check.name,
                    "category": result.check.category,
                    "severity": result.outcome,
                    "failing": result.failing,
                    "failing_share": round(result.failing_share, 6),
                    "max_failing_share": result.max_failing_share,
                }
            )
            if _RANK[result.outcome] > _RANK[entry["outcome"]]:
                entry["outcome"] = result.outcome
    outcomes = [r.outcome for r in results]
    return {
        "delivery": delivery_id,
        "status": "rejected" if "error" in outcomes else "validated",
        "checks": len(results),
        "check_kinds": len({r.check.kind for r in results}),
        "errors": outcomes.count("error"),
        "warnings": outcomes.count("warn"),
        "tables": tables,
    }


def record_outcome(database: Path, report: dict) -> None:
    """The delivery's status (validated or rejected: what promotion reads) and the audit event."""
    from snds import audit

    with duckdb.connect(str(database)) as con:
        con.execute("begin")
        con.execute(
            "update landing.deliveries set STATUS = ? where DELIVERY_ID = ?", [report["status"], report["delivery"]]
        )
        detail = {k: report[k] for k in ("checks", "check_kinds", "errors", "warnings")}
        audit.record(con, "validate", report["delivery"], report["status"], detail)
        con.execute("commit")


def validate_delivery(
    database: Path, delivery_id: str, tables: dict[str, CatalogTable], pseudonym_length: int, target_path: Path
) -> dict:
    """Check a delivery, record its status (the promotion gate reads it) and return the report."""
    report = summarise(delivery_id, run_checks(database, delivery_id, tables, pseudonym_length, target_path))
    record_outcome(database, report)
    return report
