"""What every `snds` command shares: the console, failing with a message, common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> NoReturn:
    console.print("[bold red]error:[/]", end=" ")
    console.print(message, markup=False, highlight=False)
    sys.exit(1)


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
