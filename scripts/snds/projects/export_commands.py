"""`snds project export ID [--to DIR]`: the project's extracts as a checked, encrypted package (snds.export)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from snds import config
from snds.cli_common import console, database_option, fail


@click.command("export")
@click.argument("project_id", metavar="ID")
@click.option(
    "--to",
    "destination",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The package directory (must not exist, or be empty). Default: data/exports/ID/.",
)
@click.option("--replace", is_flag=True, help="Replace an earlier export in the destination (it has export.json).")
@database_option
@click.option(
    "--projects-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the definitions are. Default: projects/ of the platform.",
)
@click.option(
    "--recipients-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the public key files named by public_key_file are. Default: data/recipients/.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def export(
    project_id: str,
    destination: Path | None,
    replace: bool,
    database: Path | None,
    projects_dir: Path | None,
    recipients_dir: Path | None,
    as_json: bool,
) -> None:
    """Export the project's last build for its secure environment: the extracts and the cohort (Parquet; CSV and
    SAS transport when the definition asks), the project page, MANIFEST.csv, export.json and a README, encrypted
    with age to the definition's recipients. Refused, with the reasons and nothing written, when the
    authorisation has expired, the project key is not active, a file holds a column outside the perimeter or a
    platform or CNAM pseudonym, or the page shows a small count. Every export and refusal goes to audit.events.

    Exit 1 when refused, 2 when ID or the destination is wrong, 3 when the database cannot be used.
    """
    from snds import identifiers, warehouse
    from snds.cli_common import EXIT_DATA, EXIT_TOOL, EXIT_USAGE
    from snds.export.package import EXPORTS_DIR, DestinationError, ExportRefused, export_project
    from snds.export.recipients import RECIPIENTS_DIR
    from snds.projects.definition import (
        DefinitionNotFound,
        ProjectDefinitionError,
        existing_definition_path,
        load_definition,
    )
    from snds.projects.schema import PROJECTS_DIR

    def refuse(message: str, code: int, status: str = "error") -> None:
        if as_json:
            click.echo(json.dumps({"project": project_id, "status": status, "exit_code": code, "message": message}))
        fail(message, code)

    try:
        path = existing_definition_path(project_id, projects_dir or PROJECTS_DIR)
    except (identifiers.InvalidIdentifier, DefinitionNotFound) as error:
        refuse(str(error), EXIT_USAGE)
    try:
        definition = load_definition(path)
    except ProjectDefinitionError as error:
        refuse(str(error), EXIT_DATA)
    target = destination or EXPORTS_DIR / definition.id
    try:
        with _RichProgress() as progress:
            result = export_project(
                definition,
                database or config.database_path(),
                target,
                recipients_dir=recipients_dir or RECIPIENTS_DIR,
                replace=replace,
                progress=progress,
            )
    except ExportRefused as refusal:
        refuse(f"project {definition.id}: export refused, nothing written:\n" + str(refusal), EXIT_DATA, "refused")
    except DestinationError as error:
        refuse(str(error), EXIT_USAGE)
    except warehouse.WarehouseError as error:
        refuse(str(error), EXIT_TOOL)
    except OSError as error:
        refuse(f"project {definition.id}: the package could not be written ({error}); nothing was left", EXIT_TOOL)
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    plain = sum(f.size for f in result.files)
    console.print(
        f"project {definition.id}: exported {len(result.files)} files ({plain / 2**20:,.1f} MiB, "
        f"{result.encrypted_bytes / 2**20:,.1f} MiB encrypted) to {result.destination} for "
        f"{', '.join(r.name for r in result.recipients)}; write {result.seconds['write']:.1f} s, checks "
        f"{result.seconds['checks']:.1f} s, encryption {result.seconds['encrypt']:.1f} s",
        highlight=False,
    )


class _RichProgress:
    """The export's progress on stderr: files and rows done (rich), silent when stderr is not a terminal."""

    def __enter__(self) -> _RichProgress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.__enter__()
        self.files = self.bar.add_task("files", total=None, visible=False)
        self.rows = self.bar.add_task("rows", total=None, visible=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)

    def start(self, files: int, rows: int) -> None:
        self.bar.update(self.files, total=files, visible=True)
        self.bar.update(self.rows, total=rows, visible=True)

    def done(self, name: str, rows: int) -> None:
        self.bar.update(self.files, advance=1, description=f"files ({name})")
        self.bar.update(self.rows, advance=rows)

    def phase(self, text: str) -> None:
        self.bar.console.print(text, style="dim", highlight=False)
