"""`snds project check|generate|build|report ID`: research projects, from their definition to their published page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from snds import config, engine
from snds.cli_common import chosen_engine, console, database_option, fail, target_option
from snds.projects.export_commands import export
from snds.projects.lifecycle_commands import project_close, project_import

if TYPE_CHECKING:
    from snds.projects.check import CheckResult
    from snds.projects.definition import ProjectDefinition


report_dir_option = click.option(
    "--report-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write the project page, ID.project.html and ID.project.json. Default: data/reports/.",
)


@click.group()
def project() -> None:
    """Research projects: check a definition (projects/<ID>.yml), generate its models, build it."""


@project.command("check")
@click.argument("project_id", metavar="ID")
@database_option
@click.option(
    "--projects-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the definitions are. Default: projects/ of the platform.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def project_check(project_id: str, database: Path | None, projects_dir: Path | None, as_json: bool) -> None:
    """Check projects/ID.yml: schema, perimeter against the catalog, codes, dates, authorisation, project key.

    Exit 1 when the definition is wrong or its authorisation does not allow work today, 2 when ID is not a
    safe project identifier or has no definition.
    """
    from datetime import date

    from snds import identifiers
    from snds.cli_common import EXIT_DATA, EXIT_USAGE
    from snds.projects.check import check_project, summary_lines
    from snds.projects.definition import (
        DefinitionNotFound,
        ProjectDefinitionError,
        existing_definition_path,
        load_definition,
    )
    from snds.projects.schema import PROJECTS_DIR

    def refuse(problems: list[str], code: int) -> None:
        if as_json:
            click.echo(json.dumps({"project": project_id, "status": "error", "exit_code": code, "problems": problems}))
        fail("\n".join(problems), code)

    try:
        path = existing_definition_path(project_id, projects_dir or PROJECTS_DIR)
    except (identifiers.InvalidIdentifier, DefinitionNotFound) as error:
        refuse([str(error)], EXIT_USAGE)
    try:
        definition = load_definition(path)
    except ProjectDefinitionError as error:
        refuse(str(error).splitlines(), EXIT_DATA)
    result = check_project(definition, date.today(), database or config.database_path(), config.reference_dir())
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        for line in summary_lines(result):
            console.print(line, markup=False, highlight=False)
        for warning in result.warnings:
            console.print("[yellow]warning:[/]", end=" ")
            console.print(warning, markup=False, highlight=False)
    if result.errors:
        fail("\n".join(result.errors), EXIT_DATA)
    if not as_json:
        console.print(f"project {project_id}: definition checked")


@project.command("generate")
@click.option("--check", is_flag=True, help="Only list the stale generated files (exit 1 when there are some).")
def project_generate(check: bool) -> None:
    """Write every project's models (models/projects/<id>/) from projects/*.yml, and the perimeters dbt enforces."""
    from snds.cli_common import EXIT_DATA
    from snds.projects.build import generate_all, stale_files, write_generated
    from snds.projects.definition import ProjectDefinitionError
    from snds.projects.generate import GenerationError

    try:
        generated = generate_all()
    except (ProjectDefinitionError, GenerationError) as error:
        fail(str(error), EXIT_DATA)
    if check:
        stale = stale_files(config.PROJECT_ROOT, generated)
        if stale:
            fail("stale generated project files (run `snds project generate`):\n" + "\n".join(stale), EXIT_DATA)
        console.print(f"{len(generated.files)} generated project files are up to date")
        return
    written, removed = write_generated(config.PROJECT_ROOT, generated)
    console.print(f"{len(generated.definitions)} projects: wrote {written} files, removed {removed}")


@project.command("build")
@click.argument("project_id", metavar="ID")
@database_option
@target_option
@report_dir_option
def project_build(project_id: str, database: Path | None, report_dir: Path | None, target: str | None) -> None:
    """Check, generate and build one project: `dbt build` of models/projects/<id>/ only (run `dbt build` first for
    the base and the marts), then write its page (`snds project report`). dbt enforces the authorisation itself;
    a direct `dbt build` is held alike.

    Exit 1 when the definition is wrong, the authorisation does not allow work today, the project key is missing
    or the build fails; 2 when ID is not a safe project identifier or has no definition; 3 when the warehouse cannot
    be opened.
    """
    from datetime import date

    from snds.cli_common import EXIT_DATA
    from snds.dbt import (
        BUILD_OPTIONS,
        DbtError,
        dbt_database,
        dbt_environment,
        default_target_path,
        gc_paused,
        parse_project,
        run_dbt,
        target_options,
    )
    from snds.dbt_slice import sliced_manifest
    from snds.projects.build import (
        ProjectBuildError,
        check_buildable,
        generate_all,
        git_commit,
        project_folder,
        selector,
        write_generated,
    )
    from snds.projects.check import KEY_MISSING, check_project
    from snds.projects.definition import ProjectDefinitionError
    from snds.projects.generate import GenerationError, schema

    definition = definition_or_fail(project_id)
    engine_name = chosen_engine(target, database)
    database = database or config.database_path()
    dbt_target = engine.dbt_target(engine_name)
    with _opened_once(database, engine_name):
        # read once, for the build and for its page: the authorisation, the key, the closure, the code-list warnings
        checked = check_project(definition, date.today(), database, config.reference_dir(), engine_name)
        try:
            # a key that cannot be checked here (the database busy) is checked again by the build's hook
            check_buildable(definition, date.today(), checked.project_key != KEY_MISSING, checked.closed)
            generated = generate_all()
        except (ProjectDefinitionError, ProjectBuildError, GenerationError) as error:
            fail(str(error), EXIT_DATA)
        if engine_name != engine.EMBEDDED:
            _require_reader_role(definition.id, database, engine_name)
        written, _ = write_generated(config.PROJECT_ROOT, generated)
        console.print(f"project {definition.id}: {written} generated files written; building {selector(definition)}")
        try:
            # dbt gets the project's slice of the parsed project, parsed again only when its sources changed; the
            # commit through the environment at run time (the models read it when they run, the parse keeps none)
            with dbt_database(database), gc_paused():
                cut = sliced_manifest(
                    project_folder(definition),
                    default_target_path(),
                    lambda: parse_project("--quiet", dbt_target=dbt_target),
                    dbt_target=dbt_target,
                )
                how = "unchanged" if cut.reused else "parsed again (the project, a macro or the dbt set-up changed)"
                console.print(f"project {definition.id}: its slice of the dbt project {how}", highlight=False)
                with dbt_environment("SNDS_GIT_COMMIT", git_commit(config.PROJECT_ROOT)):
                    selected = ("--select", selector(definition), *target_options(dbt_target), *BUILD_OPTIONS)
                    run_dbt("build", *selected, manifest=cut.manifest)
        except DbtError as error:
            fail(f"project {definition.id}: {error}", EXIT_DATA)
        console.print(f"project {definition.id}: built in schema {schema(definition)}")
        publish_page(definition, database, report_dir, checked, engine_name)


def _require_reader_role(project_id: str, database: Path, target: str) -> None:
    """Exit 1 unless the server has the project's readers' role, which the project's models grant SELECT to: it is
    made by `snds access apply` from the declarations (dbt would fail on the first grant instead)."""
    from snds.access.declarations import RESEARCHER
    from snds.access.rights import project_role
    from snds.access.state import role_exists
    from snds.cli_common import EXIT_DATA

    role = project_role(project_id, RESEARCHER)
    with engine.connect(target, database) as con:
        found = role_exists(con, role)
    if not found:
        fail(
            f"project {project_id}: the role {role}, to which its tables are granted, does not exist on the server: "
            "declare its people in access/ and run `snds access apply` first; nothing is built",
            EXIT_DATA,
        )


@contextmanager
def _opened_once(database: Path, target: str) -> Iterator[None]:
    """The warehouse held open for a whole command: its checks, dbt and the page share DuckDB's one instance of the
    file instead of opening it three times (a quarter of a second each on a base of a few GB). Exit 3 when it
    cannot be opened (missing, or held by another run beyond the wait; the server not reachable)."""
    from snds.cli_common import EXIT_TOOL
    from snds.warehouse import WarehouseError

    try:
        with engine.connect(target, database):
            yield
    except (WarehouseError, engine.EngineError) as error:
        fail(str(error), EXIT_TOOL)


@project.command("report")
@click.argument("project_id", metavar="ID")
@database_option
@report_dir_option
def project_report(project_id: str, database: Path | None, report_dir: Path | None) -> None:
    """Write the project page from the last build: the attrition, the cohort by year, sex and age band, the rows
    of each extract, the rules and the code-list warnings, with small counts suppressed (for outside the platform).

    Exit 1 when the project was not built, or was built from another version of its definition; 2 when ID is not
    a safe project identifier or has no definition.
    """
    publish_page(definition_or_fail(project_id), database or config.database_path(), report_dir)


def definition_or_fail(project_id: str) -> ProjectDefinition:
    """projects/ID.yml loaded; exit 2 for an unsafe id or a missing file, 1 for a wrong definition."""
    from snds import identifiers
    from snds.cli_common import EXIT_DATA, EXIT_USAGE
    from snds.projects.definition import (
        DefinitionNotFound,
        ProjectDefinitionError,
        existing_definition_path,
        load_definition,
    )

    try:
        path = existing_definition_path(project_id)
    except (identifiers.InvalidIdentifier, DefinitionNotFound) as error:
        fail(str(error), EXIT_USAGE)
    try:
        return load_definition(path)
    except ProjectDefinitionError as error:
        fail(str(error), EXIT_DATA)


def publish_page(
    definition: ProjectDefinition,
    database: Path,
    report_dir: Path | None,
    checked: CheckResult | None = None,
    target: str = engine.EMBEDDED,
) -> None:
    """Write the project page from `target`'s database (exit 1 with the reason when it cannot be); `checked`: the
    definition's check, when the caller made it already."""
    from datetime import date

    from snds.cli_common import EXIT_DATA
    from snds.projects.check import check_project, summary_lines
    from snds.projects.page import ProjectPageError, page_report, read_built, write_page
    from snds.warehouse import WarehouseError

    checked = checked or check_project(definition, date.today(), database, config.reference_dir(), target)
    try:
        built = read_built(database, definition, target)
        report = page_report(definition, built, summary_lines(checked), list(checked.warnings))
        json_path, html_path = write_page(report, report_dir or config.REPORTS_DIR)
    except (ProjectPageError, WarehouseError, engine.EngineError) as error:
        fail(str(error), EXIT_DATA)
    except OSError as error:
        fail(f"project {definition.id}: its page was not written: {error}", EXIT_DATA)
    final = report["attrition"][-1]["persons"] if report["attrition"] else 0
    cohort = "suppressed (small)" if final is None else f"{final:,} persons"
    console.print(
        f"project {definition.id}: page {html_path} ({json_path.name}); cohort {cohort}, "
        f"{report['suppressed_cells']} counts suppressed under {report['small_cell_threshold']}",
        highlight=False,
    )


project.add_command(export)
project.add_command(project_import)
project.add_command(project_close)
