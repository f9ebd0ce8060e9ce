"""`snds project report ID`: the project page, what is published about a project outside the platform.

`data/reports/<ID>.project.html` (beside the deliveries' conformity reports; a delivery id has no `.`, so the names
cannot meet) and `<ID>.project.json`: the attrition as a flow diagram, the cohort by index year, sex and age band,
the rows of each extract, the rules as written, the code-list warnings and the build's provenance. Every count
above 0 and below the project's threshold is suppressed, with secondary suppression (`small_cells`), so nothing
small can be recomputed from the totals; the exact counts stay in the project's schema.

The counts are read from the project's tables of the last build (DuckDB, read straight as the conformity report
is); a definition changed since that build is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snds import engine
from snds.pages import render_html, write_pages
from snds.projects.definition import ProjectDefinition
from snds.projects.generate import SUMMARIES, schema
from snds.projects.profile import COHORT, layout
from snds.projects.small_cells import Cell, Sum, suppress


class ProjectPageError(ValueError):
    """The project's tables cannot be read, or come from another version of the definition."""


@dataclass(frozen=True)
class BuiltProject:
    """What the page reads from the project's schema (exact counts)."""

    attrition: list[tuple[int, str, int]]  # step, description, persons
    profile: list[tuple[int, str, str, int]]  # index_year, sex, age_band, persons
    outputs: list[tuple[str, int]]  # output relation, rows
    deliveries: list[str]
    definition_sha256: str
    git_commit: str
    dbt_invocation_id: str


def read_built(database: Path, definition: ProjectDefinition, target: str = engine.EMBEDDED) -> BuiltProject:
    """The last build's counts in `target`'s database (ProjectPageError when the project was not built, or from
    another definition)."""
    relation = schema(definition)  # project_<id>: the id matched PROJECT_ID, a checked literal
    try:
        with engine.connect(target, database) as con:  # not read-only: dbt may hold the same file in this process
            built = {
                row[0]
                for row in con.execute(
                    "select table_name from information_schema.tables where table_schema = ?", [relation]
                ).fetchall()
            }
            missing = sorted({"attrition", "profile", "build"} - built)
            if missing:
                raise ProjectPageError(
                    f"project {definition.id} has no {', '.join(missing)} in schema {relation}: "
                    f"run `snds project build {definition.id}`"
                )
            attrition = con.execute(f"select step, step_description, persons from {relation}.attrition order by step")
            attrition_rows = [(int(s), str(d), int(p)) for s, d, p in attrition.fetchall()]
            profile = con.execute(f"select index_year, sex, age_band, persons from {relation}.profile")
            profile_rows = [(int(y), str(s), str(b), int(p)) for y, s, b, p in profile.fetchall()]
            record = con.execute(
                f"select definition_sha256, git_commit, dbt_invocation_id, item_kind, item_name, row_count "
                f"from {relation}.build order by item_kind, item_name"
            ).fetchall()
    except engine.ENGINE_ERRORS as error:
        where = engine.where(target, database)
        raise ProjectPageError(f"{where} cannot be read now ({type(error).__name__})") from None
    if not record or record[0][0] != definition.sha256:
        raise ProjectPageError(
            f"project {definition.id} was built from another version of projects/{definition.path.name}: "
            f"run `snds project build {definition.id}`"
        )
    return BuiltProject(
        attrition=attrition_rows,
        profile=profile_rows,
        outputs=[(name, int(rows)) for _, _, _, kind, name, rows in record if kind == "output"],
        deliveries=[name for _, _, _, kind, name, _ in record if kind == "delivery"],
        definition_sha256=record[0][0],
        git_commit=record[0][1],
        dbt_invocation_id=record[0][2],
    )


def _attrition_cells(rows: list[tuple[int, str, int]]) -> tuple[dict[Cell, int], list[Sum]]:
    counts: dict[Cell, int] = {}
    sums = []
    for n, (step, _, persons) in enumerate(rows):
        counts[("persons", step)] = persons
        if n:
            previous = rows[n - 1][0]
            counts[("excluded", step)] = rows[n - 1][2] - persons
            sums.append(Sum(("persons", previous), (("persons", step), ("excluded", step))))
    return counts, sums


# What secondary suppression takes first: an extract's rows and the profile's detail, then its totals, then the
# persons a step excluded; the persons a step kept (the cohort's size among them) last.
RANKS = {"rows": 0, "sex_band": 0, "year": 1, "sex": 1, "band": 1, "excluded": 2, "persons": 3}


def _rank(cell: Cell) -> int:
    return RANKS[cell[0]]


def page_report(
    definition: ProjectDefinition, built: BuiltProject, rules: list[str], warnings: list[str]
) -> dict[str, Any]:
    """The page's content, every small count suppressed (shown as null)."""
    threshold = definition.outputs.small_cell_threshold
    counts, sums = _attrition_cells(built.attrition)
    shape = layout(definition, built.profile)
    profile_counts = shape.counts(built.profile)
    cohort_size = built.attrition[-1][2] if built.attrition else 0
    if profile_counts[COHORT] != cohort_size:
        raise ProjectPageError(f"project {definition.id}: the profile and the attrition disagree; rebuild it")
    cohort = ("persons", built.attrition[-1][0]) if built.attrition else COHORT  # one cell, two names
    same = lambda cell: cohort if cell == COHORT else cell  # noqa: E731
    counts |= {same(cell): value for cell, value in profile_counts.items()}
    sums += [Sum(same(s.total), tuple(same(p) for p in s.parts)) for s in shape.sums()]
    extracts = [(name, rows) for name, rows in built.outputs if name not in SUMMARIES]
    counts |= {("rows", name): rows for name, rows in extracts}
    hidden = suppress(counts, sums, threshold, _rank)
    shown = lambda cell: None if same(cell) in hidden else counts[same(cell)]  # noqa: E731
    return {
        "project": definition.id,
        "title": definition.title,
        "authorisation": {
            "reference": definition.authorisation.reference,
            "holder": definition.authorisation.holder,
            "granted": definition.authorisation.granted.isoformat(),
            "expires": definition.authorisation.expires.isoformat(),
        },
        "study": {"start": definition.study.start.isoformat(), "end": definition.study.end.isoformat()},
        "small_cell_threshold": threshold,
        "suppressed_cells": len(hidden),
        "attrition": [
            {
                "step": step,
                "description": description,
                "persons": shown(("persons", step)),
                "excluded": shown(("excluded", step)) if ("excluded", step) in counts else 0,
            }
            for step, description, _ in built.attrition
        ],
        "profile": {
            "cohort": shown(COHORT),
            "by_year": [{"year": y, "persons": shown(("year", y))} for y in shape.years],
            "sexes": list(shape.sexes),
            "by_sex_and_age_band": [
                {
                    "age_band": band,
                    "persons": {sex: shown(("sex_band", sex, band)) for sex in shape.sexes},
                    "all": shown(("band", band)),
                }
                for band in shape.bands
            ],
            "by_sex": {sex: shown(("sex", sex)) for sex in shape.sexes},
        },
        "extracts": [{"table": name, "rows": shown(("rows", name))} for name, _ in extracts],
        "rules": rules,
        "warnings": warnings,
        "build": {
            "definition_sha256": built.definition_sha256,
            "git_commit": built.git_commit,
            "dbt_invocation_id": built.dbt_invocation_id,
            "deliveries": built.deliveries,
        },
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def page_paths(directory: Path, project_id: str) -> tuple[Path, Path]:
    return directory / f"{project_id}.project.json", directory / f"{project_id}.project.html"


def write_page(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    json_path, html_path = page_paths(directory, report["project"])
    return write_pages(report, render_html("snds.projects", "project.html.j2", report=report), json_path, html_path)
