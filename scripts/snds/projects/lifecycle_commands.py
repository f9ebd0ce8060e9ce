"""`snds project import ID FILE --as NAME` and `snds project close ID|--expired`: a project's own data in, its end."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import NoReturn

import click

from snds import config
from snds.cli_common import EXIT_DATA, EXIT_TOOL, EXIT_USAGE, console, database_option, fail


def _refuse(as_json: bool, project_id: str, problems: list[str], code: int) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"project": project_id, "status": "refused", "exit_code": code, "problems": problems}))
    fail(problems[0] if len(problems) == 1 else "\n".join(["refused:", *(f"  - {p}" for p in problems)]), code)


@click.command("import")
@click.argument("project_id", metavar="ID")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--as", "name", required=True, metavar="NAME", help="The import's name: table project_<id>.import_<name>."
)
@click.option(
    "--identifier",
    metavar="COLUMN",
    default=None,
    help="The column holding the person as the CNAM identifies it (BEN_NIR_PSA as delivered): stored pseudonymised "
    "with the project key as NUM_ENQ, never as it is.",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The file's columns and types (YAML). Default: FILE with .schema.yml for .csv (persons.schema.yml).",
)
@click.option("--replace", is_flag=True, help="Replace an earlier import of the same name.")
@click.option("--sha256", default=None, metavar="HEX", help="Refuse the file unless its sha256 is this one.")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the counts (or the refusal) as JSON on stdout.")
def project_import(
    project_id: str,
    file: Path,
    name: str,
    identifier: str | None,
    schema_file: Path | None,
    replace: bool,
    sha256: str | None,
    database: Path | None,
    as_json: bool,
) -> None:
    """Import a project's own data (a reference table, a list of persons) into project_<id>.import_<NAME>.

    FILE is a `;`-separated UTF-8 CSV with a header (.csv or .csv.gz), verified like a delivery's file and typed
    exactly by its schema file; lines that cannot land are quarantined (line, column, reason: never a value) in
    project_<id>.imports_quarantine, and rows in = loaded + quarantined. Only the project's own models read the
    table, through {{ project_import('NAME') }}. Recorded in audit.events (project.import).

    Exit 1 when the file, its schema or the project's state (closed, authorisation) refuses it; 2 when ID or NAME is
    not a safe name or the project has no definition; 3 when the database cannot be used.
    """
    from snds import audit, identifiers, warehouse
    from snds.ingest.limits import load_limits
    from snds.projects.commands import definition_or_fail
    from snds.projects.imports import (
        IMPORT_ACTION,
        ImportRefused,
        default_schema_path,
        import_file,
        import_name,
        load_import_schema,
        refusal_detail,
    )
    from snds.projects.lifecycle import ProjectClosed, closed_on

    try:
        identifiers.project_id(project_id)
        import_name(name)
    except identifiers.InvalidIdentifier as error:
        _refuse(as_json, project_id, [str(error)], EXIT_USAGE)
    target = database or config.database_path()
    problem = None
    try:
        closed = closed_on(target, project_id)
        if closed is None:
            definition = definition_or_fail(project_id)
            problem = definition.authorisation.problem_on(date.today())
        with warehouse.connect(target) as con:
            audit.create_audit_trail(con)
            try:
                if closed is not None:
                    raise ProjectClosed(project_id, closed)
                if problem:
                    raise ImportRefused(f"project {project_id}: {problem}; nothing is imported")
                schema = load_import_schema(schema_file or default_schema_path(file), identifier)
                with console.status(f"importing {file.name}"):
                    report = import_file(con, project_id, file, name, schema, load_limits(), replace, sha256)
            except (ImportRefused, ProjectClosed) as error:
                audit.record(con, IMPORT_ACTION, project_id, "refused", refusal_detail(file, name, error))
                problems = error.problems if isinstance(error, ImportRefused) else [str(error)]
                _refuse(as_json, project_id, problems, EXIT_DATA)
    except warehouse.WarehouseError as error:
        _refuse(as_json, project_id, [str(error)], EXIT_TOOL)
    console.print(
        f"project {project_id}: {report.table} {'replaced' if report.replaced else 'created'} from {file.name} "
        f"(sha256 {report.sha256[:12]}): {report.rows} rows in, {report.loaded} loaded, {report.quarantined} "
        "quarantined"
        + (f" (see {report.table.split('.')[0]}.imports_quarantine)" if report.quarantined else "")
        + (f"; {report.identifier} stored pseudonymised as NUM_ENQ" if report.identifier else ""),
        markup=False,
        highlight=False,
    )
    if as_json:
        click.echo(json.dumps({"status": "imported", **report.as_json()}, indent=2))


@click.command("close")
@click.argument("project_id", metavar="ID", required=False)
@click.option("--expired", is_flag=True, help="Close every project of projects/ whose authorisation has expired.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (the data is destroyed for good).")
@click.option(
    "--projects-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the definitions are. Default: projects/ of the platform.",
)
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print what was closed as JSON on stdout.")
def project_close(
    project_id: str | None, expired: bool, yes: bool, projects_dir: Path | None, database: Path | None, as_json: bool
) -> None:
    """End a project: drop its schema project_<id> and its restricted tables keys.<id>__*, retire its key.

    The audit trail stays (`snds audit --project ID`); every later build, import or export of the project is refused
    with the day it was closed. With --expired, every project whose authorisation expired before today is closed.

    Exit 1 when the project was closed already or holds nothing to close; 2 when the command line is wrong (ID and
    --expired together, or neither) or ID is not a safe project identifier; 3 when the database cannot be used.
    """
    from snds import identifiers, warehouse
    from snds.projects.build import definitions_in
    from snds.projects.definition import DefinitionNotFound, ProjectDefinitionError, existing_definition_path
    from snds.projects.definition import load_definition as load
    from snds.projects.lifecycle import NothingToClose, ProjectClosed, close_project, closed_on_with
    from snds.projects.schema import PROJECTS_DIR

    if (project_id is None) == (not expired):
        fail("give a project ID or --expired (not both)", EXIT_USAGE)
    today = date.today()
    wanted: list[tuple[str, str, bool]] = []  # (id, reason, has a definition)
    if project_id is not None:
        try:
            identifiers.project_id(project_id)
        except identifiers.InvalidIdentifier as error:
            fail(str(error), EXIT_USAGE)
        try:
            existing_definition_path(project_id, projects_dir or PROJECTS_DIR)
            defined = True
        except DefinitionNotFound:
            defined = False
        wanted.append((project_id, "closed on request", defined))
    else:
        for path in definitions_in(projects_dir or PROJECTS_DIR):
            try:
                definition = load(path)
            except ProjectDefinitionError as error:
                console.print(f"[yellow]warning:[/] {path.name} not read, not closed: {str(error).splitlines()[0]}")
                continue
            authorisation = definition.authorisation
            if authorisation.expires < today:
                reason = f"authorisation {authorisation.reference} expired on {authorisation.expires.isoformat()}"
                wanted.append((definition.id, reason, True))
    closures, problems = [], []
    try:
        with warehouse.connect(database or config.database_path()) as con:
            if expired:
                wanted = [w for w in wanted if closed_on_with(con, w[0]) is None]
            if wanted and not yes:
                listed = ", ".join(w[0] for w in wanted)
                click.confirm(f"close {listed}: drop its data and retire its key for good?", abort=True, err=True)
            for wanted_id, reason, defined in wanted:
                try:
                    closures.append(close_project(con, wanted_id, reason, defined))
                except (ProjectClosed, NothingToClose) as error:
                    problems.append(str(error))
    except warehouse.WarehouseError as error:
        fail(str(error), EXIT_TOOL)
    for closure in closures:
        key = f"key {closure.key_id} retired" if closure.key_id else "no active key to retire"
        console.print(
            f"project {closure.project_id} closed on {closure.closed_on} ({closure.reason}): {len(closure.dropped)} "
            f"tables dropped ({closure.schema} and keys.{closure.project_id.lower()}__*), {key}; its history stays "
            f"(`snds audit --project {closure.project_id}`)",
            markup=False,
            highlight=False,
        )
    if expired and not wanted:
        console.print("no project to close: none has an expired authorisation that is not closed yet")
    if as_json:
        click.echo(json.dumps({"closed": [c.as_json() for c in closures], "problems": problems}, indent=2))
    if problems:
        fail("\n".join(problems), EXIT_DATA)
