"""What every `snds` command shares: the console, failing with a message, common options."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)

# Exit codes of every `snds` command (documented in the README): data refused or rejected is not a tool failure.
EXIT_OK = 0
EXIT_DATA = 1  # the delivery (or other input data) was refused or rejected: nothing wrong with the platform
EXIT_USAGE = 2  # the command line is wrong (click's own code)
EXIT_TOOL = 3  # the tool could not do its work: database missing or locked, dbt failed, environment


def fail_reporting(message: str, code: int, as_json: bool, delivery: str | None = None) -> NoReturn:
    """Fail with a message (stderr) and, with --json, an error object on stdout (which stays valid JSON)."""
    if as_json:
        click.echo(json.dumps({"delivery": delivery, "status": "error", "exit_code": code, "message": message}))
    fail(message, code)


def fail(message: str, code: int = EXIT_DATA) -> NoReturn:
    console.print("[bold red]error:[/]", end=" ")
    console.print(message, markup=False, highlight=False)
    sys.exit(code)


reference_option = click.option(
    "--reference",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The SNDS dictionary (schema-snds). Default: $SNDS_REFERENCE_DIR or ../shared/reference/schema-snds.",
)


database_option = click.option(
    "--database",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="DuckDB file. Default: $SNDS_DUCKDB_PATH or data/warehouse.duckdb.",
)


def chosen_engine(target: str | None, database: Path | None) -> str:
    """The engine a command works on: `--target`, else SNDS_TARGET, else duckdb. Exit 3 for a wrong SNDS_TARGET, 2
    for a DuckDB file (`--database`) named for the server."""
    from snds import engine

    try:
        chosen = target or engine.default_target()
    except engine.EngineError as error:
        fail(str(error), EXIT_TOOL)
    if database is not None and chosen != engine.EMBEDDED:
        fail(f"--database names a DuckDB file: it has no meaning on the {chosen} target", EXIT_USAGE)
    return chosen


target_option = click.option(
    "--target",
    type=click.Choice(["duckdb", "postgres"]),
    default=None,
    help="The engine whose database the command works on (the dbt target). Default: $SNDS_TARGET or duckdb; "
    "postgres: the server of `snds postgres start`.",
)
