"""`snds postgres`: start, stop and locate the embedded PostgreSQL server (the `postgres` dbt target)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from snds import postgres_server
from snds.cli_common import EXIT_TOOL, console, fail

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=postgres_server.DEFAULT_DATA_DIR,
    show_default=True,
    help="The server's data folder (created and initialised on first start).",
)


def _print_environment(server: postgres_server.RunningServer, as_json: bool) -> None:
    variables = server.environment()
    if as_json:
        click.echo(json.dumps({"data_dir": str(server.data_dir), "pid": server.pid, "environment": variables}))
        return
    for name, value in variables.items():
        click.echo(f"export {name}={shlex.quote(value)}")


@click.group()
def postgres() -> None:
    """The embedded PostgreSQL 16 server: a real multi-user engine (roles, grants) for the `postgres` target.

    \b
    eval "$(snds postgres start)"   start it and set what dbt's profile reads
    dbt build --target postgres ...  then run dbt (or `snds ... --target postgres`)
    """


@postgres.command("start")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the server and its variables as JSON.")
def start(data_dir: Path, as_json: bool) -> None:
    """Start the server (unless it runs) and print the variables of the `postgres` dbt target."""
    try:
        with console.status("starting PostgreSQL"):
            server = postgres_server.start(data_dir)
    except postgres_server.PostgresServerError as error:
        fail(str(error), EXIT_TOOL)
    console.print(f"PostgreSQL runs on {server.data_dir} (process {server.pid}), database {postgres_server.DATABASE}")
    _print_environment(server, as_json)


@postgres.command("status")
@data_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the server and its variables as JSON.")
def status(data_dir: Path, as_json: bool) -> None:
    """Print the variables of the running server; fail when none runs on the data folder."""
    server = postgres_server.status(data_dir)
    if server is None:
        fail(f"no PostgreSQL server runs on {data_dir}: `snds postgres start`", EXIT_TOOL)
    _print_environment(server, as_json)


@postgres.command("stop")
@data_dir_option
def stop(data_dir: Path) -> None:
    """Stop the server (its sessions are ended); its data stay in the folder for the next start."""
    if postgres_server.stop(data_dir):
        console.print(f"PostgreSQL on {data_dir} stopped")
    else:
        console.print(f"no PostgreSQL server was running on {data_dir}")
