"""Opening the DuckDB warehouse: one place that refuses unusable names, waits for a lock, never creates by accident.

DuckDB names a database's catalog after its file: a file called `landing.duckdb` makes `landing.deliveries`
ambiguous between the catalog and the schema, so such names are refused. DuckDB lets one process write a file at
a time: a second `snds` run waits for the lock a while, then says which run holds it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from snds.engine import Connection

# The schemas of the platform (and DuckDB's own catalogs): a database file may not be named after them.
RESERVED_NAMES = frozenset({"landing", "snds", "int", "marts", "audit", "keys", "main", "system", "temp", "memory"})
LOCK_WAIT_SECONDS = 30.0
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


class WarehouseError(Exception):
    """The database cannot be used as asked: the message says why and what to do."""


def check_path(path: Path) -> Path:
    """The database path, or WarehouseError when its name would collide with a schema of the platform."""
    name = path.name.split(".", 1)[0].lower()
    if name in RESERVED_NAMES or name.startswith("project_"):
        raise WarehouseError(
            f"{path}: a database file may not be named after a schema of the platform ({name}); "
            "choose another name, such as warehouse.duckdb"
        )
    return path


@contextmanager
def connect(
    path: Path, *, create: bool = False, wait_seconds: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file; `create=False` refuses a missing file instead of creating an empty one;
    `wait_seconds`: how long another run's lock is waited for (LOCK_WAIT_SECONDS, read when called)."""
    check_path(path)
    wait_seconds = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    if not create and not path.is_file():
        raise WarehouseError(f"no database at {path}: ingest a delivery first (`snds ingest`)")
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise WarehouseError(f"{path}: its folder cannot be created ({error.strerror})") from None
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.Error as error:
            if not isinstance(error, duckdb.IOException) or "lock" not in str(error).lower():
                raise WarehouseError(
                    f"{path}: cannot be opened as a DuckDB database ({type(error).__name__})"
                ) from None
            if time.monotonic() >= deadline:
                holder = _LOCK_HOLDER.search(str(error))
                by = f" (process {holder.group(1)})" if holder else ""
                raise WarehouseError(
                    f"{path} is in use by another run{by}; waited {wait_seconds:g} s, try again when it ends"
                ) from error
            time.sleep(0.5)
    con.execute("set enable_progress_bar = false")  # DuckDB would print it on stdout, where `--json` goes
    try:
        yield con
    finally:
        con.close()


def require_landing(con: Connection, path: Path | str) -> None:
    """WarehouseError unless the landing bookkeeping exists (a delivery was ingested or `snds landing init` ran);
    `path`: the database as the message names it (its file, or the server)."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'landing' and table_name = 'deliveries'"
    ).fetchone()
    if not found or not found[0]:
        raise WarehouseError(f"{path} holds no landing schema: ingest a delivery first (`snds ingest`)")
