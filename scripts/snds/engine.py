"""One connection to the platform's database, on the engine a command targets: the DuckDB file, or the PostgreSQL
server that dbt's `postgres` target reaches (the same environment variables, so the same server and user).

The platform's own operations (key store, audit, access rights) write portable SQL with `?` placeholders and bound
parameters and run it through `Connection`; where the engines differ, the difference is a named fact here
(`BINARY_TYPE`) or a dispatched dbt macro. Why not `dbt run-operation`: it binds no parameter and writes its
arguments to dbt's logs, and these operations carry key material and delivered values.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import duckdb
import psycopg2

from snds import postgres_server
from snds.sql import quoted_name

ENGINES = ("duckdb", "postgres")  # the dbt targets whose database a command can open
EMBEDDED = ENGINES[0]  # the default: the DuckDB file
TARGET_VARIABLE = "SNDS_TARGET"
BINARY_TYPE = {"duckdb": "blob", "postgres": "bytea"}  # the column type of key material


# What a failing statement raises on either engine (an aborted transaction, a refused value)
ENGINE_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, psycopg2.Error)


class Connection(Protocol):
    """What the platform's operations use of a connection: DuckDB's own, or `PostgresConnection`."""

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...


class EngineError(Exception):
    """The database of the target cannot be reached: the message says why."""


class PostgresConnection:
    """A psycopg2 connection that reads like DuckDB's: `?` placeholders, `execute` returns the connection, and
    transactions are explicit statements (`begin`, `commit`, `rollback`), each statement otherwise on its own."""

    engine = "postgres"

    def __init__(self, raw: Any) -> None:
        raw.autocommit = True
        self._raw, self._cursor = raw, raw.cursor()

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> PostgresConnection:
        if parameters is None:
            self._cursor.execute(sql)
        else:  # psycopg2 writes placeholders %s: a literal % is doubled (the platform's SQL has no `?` in literals)
            self._cursor.execute(sql.replace("%", "%%").replace("?", "%s"), list(parameters))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(sql.replace("%", "%%").replace("?", "%s"), [list(row) for row in rows])

    def copy_csv(self, table: str, columns: Sequence[str], data: BinaryIO) -> int:
        """COPY a CSV stream (no header, empty = null) into `table` (names checked by the caller); its row count."""
        self._cursor.copy_expert(f"copy {table} ({', '.join(columns)}) from stdin with (format csv)", data)
        return int(self._cursor.rowcount)

    @property
    def description(self) -> Any:
        """The columns of the last query's result (name first), as DuckDB's `description`."""
        return self._cursor.description

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def failure(error: Exception) -> str:
    """An engine's error as a message may show it when no delivered value is in play: its kind and first line."""
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def engine_of(con: Connection) -> str:
    return getattr(con, "engine", "duckdb")


def stored_name(con: Connection, name: str) -> str:
    """A name as the engine stores it when written unquoted: PostgreSQL folds it to lower case (`ER_PRS_F`, written
    by dbt or by a user, is `er_prs_f` there); DuckDB keeps it as written (and compares without case)."""
    return name.lower() if engine_of(con) == "postgres" else name


def identifier(con: Connection, name: str) -> str:
    """A catalog name, quoted, as the engine stores it unquoted (`stored_name`)."""
    return quoted_name(stored_name(con, name))


def dbt_target(target: str) -> str | None:
    """The dbt target of an engine: None (the profile's default) for the embedded one."""
    return None if target == EMBEDDED else target


def where(target: str, database: Path) -> Path | str:
    """The target's database as a message names it: the DuckDB file, or the server."""
    return database if target == EMBEDDED else "the PostgreSQL server"


def default_target() -> str:
    """`SNDS_TARGET`, else duckdb (the embedded default)."""
    target = os.environ.get(TARGET_VARIABLE) or "duckdb"
    if target not in ENGINES:
        raise EngineError(f"{TARGET_VARIABLE}={target}: the target is one of {', '.join(ENGINES)}")
    return target


def connect_postgres(user: str | None = None) -> PostgresConnection:
    """The server and database of the `postgres` dbt target, as `user` (default: the target's own user)."""
    host = os.environ.get(postgres_server.HOST_VARIABLE)
    if not host:
        raise EngineError(
            f"{postgres_server.HOST_VARIABLE} is not set: start the server (`snds postgres start`) "
            "and export the variables it prints"
        )
    try:
        raw = psycopg2.connect(
            host=host,
            port=int(os.environ.get(postgres_server.PORT_VARIABLE) or 5432),
            user=user or os.environ.get(postgres_server.USER_VARIABLE) or postgres_server.SUPERUSER,
            password=os.environ.get(postgres_server.PASSWORD_VARIABLE) or None,
            dbname=os.environ.get(postgres_server.DATABASE_VARIABLE) or postgres_server.DATABASE,
        )
    except psycopg2.OperationalError as error:
        raise EngineError(f"PostgreSQL at {host}: {_first_line(error)}") from None
    return PostgresConnection(raw)


@contextmanager
def connect(target: str, database: Path | None = None, *, create: bool = False) -> Iterator[Connection]:
    """The target's database: the DuckDB file (`database`, else the default) or the PostgreSQL server."""
    if target == "postgres":
        con = connect_postgres()
        try:
            yield con
        finally:
            con.close()
        return
    from snds import config, warehouse

    with warehouse.connect(database or config.database_path(), create=create) as duck:
        yield duck


@contextmanager
def held(target: str, database: Path | None = None) -> Iterator[None]:
    """For a command that connects several times in turn (`snds validate`, `snds promote`): the DuckDB file stays
    open in between, so that each later connection of this process, dbt's included, joins the open database instead
    of reading its catalog again (0.3 s with landing's 2,500 tables) and checkpointing when it closes. A server
    needs nothing."""
    if target != EMBEDDED:
        yield
        return
    with connect(target, database):
        yield
