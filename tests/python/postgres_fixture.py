"""The embedded PostgreSQL server of a test module, and the `snds` command line run against it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from snds import postgres_server
from snds.cli import main


@contextmanager
def running_server(root: Path) -> Iterator[postgres_server.RunningServer]:
    """A server on `root`/data for the block, reached through the `postgres` target's variables; the CLI's dbt
    compiles go to `root`/target, not to the checkout."""
    running = postgres_server.start(root / "data")
    saved = dict(os.environ)
    os.environ.update(running.environment())
    os.environ["DBT_TARGET_PATH"] = str(root / "target")
    try:
        yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)
        postgres_server.stop(running.data_dir)


def snds(*args: str) -> str:
    """`snds ARGS` in this process; its stdout, after asserting that it succeeded."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout
