"""`snds access`: check the access declarations, plan and apply the rights they give, review them yearly."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import click

from snds import config, engine, identifiers
from snds.access.apply import AccessApplyError, apply_changes
from snds.access.declarations import ACCESS_DIR, AccessDeclarationError, Person, load_declarations
from snds.access.plan import (
    AccessPlanError,
    Change,
    changes_from_any_state,
    changes_on_server,
    compiler_for,
    platform_user,
    script,
    with_sql,
)
from snds.access.review import review
from snds.access.rights import Rights, declared_rights
from snds.access.state import FoundRights, found_rights
from snds.cli_common import EXIT_TOOL, console, fail
from snds.dbt import DbtError, default_target_path
from snds.engine import Connection, EngineError
from snds.pages import render_html, write_pages
from snds.projects.schema import PROJECTS_DIR

declarations_option = click.option(
    "--declarations",
    type=click.Path(path_type=Path, file_okay=False),
    default=ACCESS_DIR,
    show_default=True,
    help="The folder of access declarations (one <login>.yml per person).",
)
on_option = click.option(
    "--on",
    "day",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="The day whose rights are planned or reviewed (YYYY-MM-DD). Default: today.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON on stdout.")


def _people(folder: Path) -> list[Person]:
    try:
        return load_declarations(folder)
    except AccessDeclarationError as error:
        fail("access declarations refused:\n" + str(error))


def _project_ids() -> list[str]:
    return sorted(identifiers.project_id(p.stem) for p in PROJECTS_DIR.glob("*.yml"))


def _day(value: datetime | None) -> date:
    return value.date() if value else date.today()


def _server_plan(con: Connection, people: list[Person], day: date) -> tuple[Rights, FoundRights, list[Change]]:
    owner = platform_user("postgres")
    declared = declared_rights(people, _project_ids(), day, owner)
    found = found_rights(con)
    try:
        changes = changes_on_server(declared, found, owner)
        return declared, found, with_sql(changes, compiler_for("postgres", default_target_path()))
    except AccessPlanError as error:
        fail(f"access plan refused: {error}")
    except DbtError as error:
        fail(str(error), EXIT_TOOL)


@click.group()
def access() -> None:
    """Access rights (habilitations): nominal accounts with dated rights on research projects.

    \b
    access/<login>.yml   one declaration per person (access/access.schema.json)
    snds access plan     the SQL that brings the database to the declared rights
    snds access apply    run it on PostgreSQL, each change audited
    snds access review   the yearly review (HTML and JSON)
    """


@access.command("check")
@declarations_option
@json_option
def check(declarations: Path, as_json: bool) -> None:
    """Check every declaration (schema, projects, dates, potential identifier)."""
    people = _people(declarations)
    if as_json:
        click.echo(json.dumps({"people": len(people), "rights": sum(len(p.rights) for p in people)}))
    console.print(f"{len(people)} people, {sum(len(p.rights) for p in people)} rights: declarations accepted")


@access.command("plan")
@click.option(
    "--target",
    type=click.Choice(["postgres", "oracle"]),
    default="postgres",
    show_default=True,
    help="postgres: the difference with the running server; oracle: a script for the DBA that converges from any "
    "state (compiled offline).",
)
@declarations_option
@on_option
@json_option
def plan(target: str, declarations: Path, day: datetime | None, as_json: bool) -> None:
    """Print the SQL that brings the database to the declared rights (stdout); nothing is changed."""
    people, on = _people(declarations), _day(day)
    if target == "oracle":
        owner = platform_user("oracle")
        changes = changes_from_any_state(declared_rights(people, _project_ids(), on, owner), people, owner)
        try:
            changes = with_sql(changes, compiler_for("oracle", config.PROJECT_ROOT / "target" / "oracle"))
        except DbtError as error:
            fail(str(error), EXIT_TOOL)
    else:
        try:
            with engine.connect("postgres") as con:
                changes = _server_plan(con, people, on)[2]
        except EngineError as error:
            fail(str(error), EXIT_TOOL)
    if as_json:
        click.echo(json.dumps({"target": target, "on": on.isoformat(), "changes": [c.describe() for c in changes]}))
    else:
        click.echo(script(changes, target, on), nl=False)
    console.print(f"{len(changes)} changes planned for {target} on {on}")


@access.command("apply")
@declarations_option
@on_option
@json_option
def apply(declarations: Path, day: datetime | None, as_json: bool) -> None:
    """Bring the PostgreSQL server to the declared rights, in one transaction; every change is audited."""
    people, on = _people(declarations), _day(day)
    try:
        with engine.connect("postgres") as con:
            changes = _server_plan(con, people, on)[2]
            applied = apply_changes(con, changes, on)
    except EngineError as error:
        fail(str(error), EXIT_TOOL)
    except AccessApplyError as error:
        fail(str(error), EXIT_TOOL)
    if as_json:
        click.echo(json.dumps({"on": on.isoformat(), "applied": [c.describe() for c in changes]}))
    console.print(f"{applied} changes applied on {on}" if applied else "the rights are already the declared ones")


@access.command("review")
@declarations_option
@on_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=config.REPORTS_DIR / "access",
    show_default=True,
    help="The folder of the review (review-<day>.json and .html).",
)
@json_option
def review_(declarations: Path, day: datetime | None, out: Path, as_json: bool) -> None:
    """The yearly review of the rights on the PostgreSQL server: who reads what, since and until when, what they did."""
    people, on = _people(declarations), _day(day)
    try:
        with engine.connect("postgres") as con:
            _, found, pending = _server_plan(con, people, on)
            report = review(con, people, found, pending, "postgres", on)
    except EngineError as error:
        fail(str(error), EXIT_TOOL)
    html = render_html("snds.access", "review.html.j2", report=report)
    json_path, html_path = write_pages(report, html, out / f"review-{on}.json", out / f"review-{on}.html")
    if as_json:
        click.echo(json.dumps({"json": str(json_path), "html": str(html_path), "pending": len(pending)}))
    console.print(f"review of {len(people)} people written to {html_path} ({len(pending)} changes pending)")
