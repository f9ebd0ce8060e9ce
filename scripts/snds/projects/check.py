"""`snds project check ID`: the definition, its authorisation on today's date, its codes and its project key.

Needs no database: the database is opened (never created) only to say whether the project key exists.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from snds import engine, warehouse
from snds.projects.codes import unknown_codes
from snds.projects.definition import ProjectDefinition, Rule, as_json
from snds.projects.lifecycle import closed_message, closed_on

KEY_PRESENT, KEY_MISSING, KEY_NOT_CHECKED = "present", "missing", "not checked"
KEY_CHECK_WAIT_SECONDS = 2.0  # a check says "not checked" soon rather than wait for a busy database


@dataclass(frozen=True)
class CheckResult:
    definition: ProjectDefinition
    errors: tuple[str, ...]  # the authorisation does not allow work today
    warnings: tuple[str, ...]
    project_key: str  # KEY_PRESENT, KEY_MISSING or KEY_NOT_CHECKED
    closed: date | None = None  # the day the project was closed (`snds project close`)

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.definition.id,
            "status": "error" if self.errors else "ok",
            "problems": list(self.errors),
            "warnings": list(self.warnings),
            "project_key": self.project_key,
            "definition": as_json(self.definition),
        }


def check_project(
    definition: ProjectDefinition, today: date, database: Path, reference: Path, target: str = engine.EMBEDDED
) -> CheckResult:
    """What `snds project check` reports about a definition that loaded (its key and closure read in `target`'s
    database: the DuckDB file `database`, or the server)."""
    errors = [p for p in (definition.authorisation.problem_on(today),) if p]
    warnings = list(definition.warnings)
    if (reference / "nomenclatures").is_dir():
        codes = unknown_codes(definition, reference)
        warnings += [f"code not in the code lists: {line}" for line in codes.unknown]
        warnings += [
            f"codes of {system} not checked: no code list in the dictionary" for system in codes.unchecked_systems
        ]
    else:
        warnings.append(f"codes not checked: no dictionary at {reference} (set SNDS_REFERENCE_DIR)")
    key, why = project_key_status(database, definition.id, target)
    closed = _closed_on(database, definition.id, target) if key == KEY_MISSING else None
    if closed is not None:
        errors.append(f"{closed_message(definition.id, closed)}: nothing may be built, imported or exported")
    elif key == KEY_MISSING:
        warnings.append(
            f"project key missing: run snds keys init --project {definition.id} (before snds project build)"
        )
    elif why:
        warnings.append(f"project key not checked: {why}")
    return CheckResult(definition, tuple(errors), tuple(warnings), key, closed)


def _closed_on(database: Path, project_id: str, target: str) -> date | None:
    """The day the project was closed, or None (also when that cannot be read now: the key check says so)."""
    try:
        return closed_on(database, project_id, target)
    except (warehouse.WarehouseError, engine.EngineError):
        return None


def project_key_status(database: Path, project_id: str, target: str = engine.EMBEDDED) -> tuple[str, str | None]:
    """Whether the project has an active key in `target`'s database, and why it could not be said."""
    if target == engine.EMBEDDED:
        try:
            warehouse.check_path(database)
        except warehouse.WarehouseError as error:
            return KEY_NOT_CHECKED, str(error)
        if not database.is_file():
            return KEY_NOT_CHECKED, f"no database at {database}"
    try:  # not read-only: a read-only opening fails while this process holds the file (dbt, the demo's steps)
        with _connected(database, target) as con:
            known = con.execute(
                "select count(*) from information_schema.tables where table_schema = 'keys' "
                "and table_name = 'key_material'"
            ).fetchone()
            if not known or not known[0]:
                return KEY_MISSING, None
            row = con.execute(
                "select count(*) from keys.key_material where KEY_SCOPE = ? and KEY_STATUS = 'active'",
                [f"project:{project_id}"],
            ).fetchone()
    except engine.ENGINE_ERRORS as error:
        return KEY_NOT_CHECKED, f"{engine.where(target, database)} cannot be read now ({type(error).__name__})"
    except (warehouse.WarehouseError, engine.EngineError) as error:
        return KEY_NOT_CHECKED, str(error)
    return (KEY_PRESENT if row and row[0] else KEY_MISSING), None


def _connected(database: Path, target: str) -> AbstractContextManager[engine.Connection]:
    """The DuckDB file, waiting for it a short while only; or the server."""
    if target == engine.EMBEDDED:
        return warehouse.connect(database, wait_seconds=KEY_CHECK_WAIT_SECONDS)
    return engine.connect(target)


def summary_lines(result: CheckResult) -> list[str]:
    """A short human summary: authorisation, perimeter, study, code sets, entry, rules, outputs."""
    d = result.definition
    a = d.authorisation
    lines = [
        f"project {d.id}: {d.title}",
        f"authorisation {a.reference} ({a.holder}), {a.granted} to {a.expires}",
        f"perimeter (potential identifier seen: {d.perimeter.identifier_kind or 'none'}):",
    ]
    for table in d.perimeter.tables:
        years = ", ".join(map(str, table.years)) or "no years"
        columns = "all columns" if table.all_columns else f"{len(table.columns)} columns"
        physical = ", ".join(p.name for p in table.tables)
        extract = " [extract]" if table.name in d.outputs.extracts else ""
        lines.append(f"  {table.name}: {years}; {columns}; {physical}{extract}")
    lines.append(f"study {d.study.start} to {d.study.end}")
    lines.append("code sets:" if d.cohort.code_sets else "code sets: none")
    for code_set in d.cohort.code_sets:
        parts = [
            f"codes {', '.join(code_set.codes)}" if code_set.codes else "",
            f"prefixes {', '.join(code_set.prefixes)}" if code_set.prefixes else "",
            f"except {', '.join(code_set.exclude)}" if code_set.exclude else "",
        ]
        lines.append(f"  {code_set.name} ({code_set.system}): {'; '.join(p for p in parts if p)}")
    linkage = d.linkage
    if linkage is not None:
        compared = ", ".join(f"{c.name} ({c.column})" for c in linkage.criteria) or "the CNAM's correspondence"
        passes = f"; {linkage.passes} passes" if linkage.protocol == "cascade" else ""
        threshold = f"; threshold {linkage.threshold}" if linkage.protocol == "probabilistic" else ""
        lines.append(
            f"linkage: {linkage.protocol} protocol, import {linkage.import_name}, subject {linkage.subject}; "
            f"{compared}{passes}{threshold}"
        )
    entry = d.cohort.entry
    period = "starting in the study period" if entry.starts_in_study else "in the study period"
    if entry.criteria:
        lines.append(f"entry ({entry.occurrence} occurrence {period}), any of:")
        lines += [f"  {_criterion(c)}" for c in entry.criteria]
    else:
        lines.append("entry: every linked subject, at the study start")
    lines.append("rules:" if d.cohort.inclusion else "rules: none")
    lines += [f"  {i}. {rule.name}: {_rule(rule)}" for i, rule in enumerate(d.cohort.inclusion, 1)]
    age = d.cohort.age
    ages = (
        "any"
        if age is None
        else f"{age.min if age.min is not None else 0} to {age.max if age.max is not None else '...'}"
    )
    sexes = ", ".join(map(str, d.cohort.sex)) or "any"
    follow = d.cohort.follow_up
    until = f"{follow.days} days (or death)" if follow.end == "days" else follow.end.replace("_", " ")
    lines.append(f"age at index {ages}; sex {sexes}; follow-up until {until}")
    lines.append(
        f"extracts: {', '.join(d.outputs.extracts) or 'none'}; counts under {d.outputs.small_cell_threshold} suppressed"
    )
    lines.append(f"project key: {result.project_key}")
    return lines


def _criterion(criterion: Any) -> str:
    details = [", ".join(criterion.sources), ", ".join(criterion.positions)]
    shown = "; ".join(x for x in details if x)
    return f"{criterion.code_set} in {criterion.domain}" + (f" ({shown})" if shown else "")


def _rule(rule: Rule) -> str:
    low, high = rule.min_count, rule.max_count
    count = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"at most {high}"
    window = "the study period" if rule.window.study else f"days {rule.window.from_days} to {rule.window.to_days}"
    within = f", within {rule.within_days} days of each other" if rule.within_days is not None else ""
    return f"{count} of {_criterion(rule.criterion)} in {window}{within}"
