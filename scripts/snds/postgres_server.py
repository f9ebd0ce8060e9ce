"""The embedded PostgreSQL server (the `pgserver` wheel): started and stopped by `snds postgres` and by the tests.

PostgreSQL is the project's real multi-user engine: roles, grants and logins are enforced, so the access rights
of research projects can be proved here. The wheel carries PostgreSQL 16; `initdb` runs on first start, the
server listens on a Unix socket only (no TCP port), in its data folder (or a short runtime folder when the data
folder's path is too long for a socket). Run as root, the server runs as the system user `pgserver`.

The connection settings dbt reads (`profiles/profiles.yml`, target `postgres`) come from the environment
variables named here; `profile_environment` gives them for a running server.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from snds.config import PROJECT_ROOT

SERVER_FOLDER = Path("data") / "postgres"  # in the checkout, as the DuckDB file data/warehouse.duckdb
DEFAULT_DATA_DIR = PROJECT_ROOT / SERVER_FOLDER
LOG_FILE = "log"  # the server's log, in its data folder (pg_ctl -l, as pgserver starts it)
DATABASE = "warehouse"  # the platform's database (schemas landing, snds, int, marts, keys, audit, project_<id>)
SUPERUSER = "postgres"
# The variables the `postgres` profile reads, named once.
HOST_VARIABLE = "SNDS_POSTGRES_HOST"
PORT_VARIABLE = "SNDS_POSTGRES_PORT"
USER_VARIABLE = "SNDS_POSTGRES_USER"
PASSWORD_VARIABLE = "SNDS_POSTGRES_PASSWORD"  # none on the embedded server (its socket's folder is private)
DATABASE_VARIABLE = "SNDS_POSTGRES_DATABASE"


class PostgresServerError(Exception):
    """The embedded server cannot be started, found or stopped: the message says why."""


@dataclass(frozen=True)
class RunningServer:
    data_dir: Path
    socket_dir: Path
    port: int
    pid: int

    def environment(self, user: str = SUPERUSER) -> dict[str, str]:
        """What the `postgres` dbt target needs to reach this server as `user`."""
        return {
            HOST_VARIABLE: str(self.socket_dir),
            PORT_VARIABLE: str(self.port),
            USER_VARIABLE: user,
            DATABASE_VARIABLE: DATABASE,
        }


def status(data_dir: Path = DEFAULT_DATA_DIR) -> RunningServer | None:
    """The server running on `data_dir`, or None."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset: pgserver then uses /tmp
        warnings.simplefilter("ignore")
        from pgserver.utils import PostmasterInfo

    folder = data_dir.expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(folder) if (folder / "PG_VERSION").is_file() else None
    if info is None or not info.is_running() or info.status != "ready" or info.socket_dir is None:
        return None
    return RunningServer(folder, Path(info.socket_dir), int(info.port), int(info.pid))


def start(data_dir: Path = DEFAULT_DATA_DIR) -> RunningServer:
    """Start the server on `data_dir` (initialised on first use) unless it runs; it keeps running until `stop`.
    The platform's database is created on first start."""
    folder = data_dir.expanduser().resolve()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():  # as in `status`
            warnings.simplefilter("ignore")
            import pgserver

            server = pgserver.get_server(folder, cleanup_mode=None)
    except Exception as error:  # pgserver raises what initdb or pg_ctl raised (CalledProcessError, timeouts ...)
        raise PostgresServerError(f"{data_dir}: PostgreSQL cannot start ({error}); see {folder}/log") from None
    running = status(folder)
    if running is None:
        raise PostgresServerError(f"{data_dir}: the PostgreSQL server did not become ready; see {folder}/log")
    created = server.psql(f"select 1 from pg_database where datname = '{DATABASE}';")
    if "(0 rows)" in created:
        server.psql(f"create database {DATABASE};")
    # Every login and refused login in the server's log (LOG_FILE), which the yearly access review reads.
    # No statement text in the log, even of a failing one: parameters are written into the statements (psycopg2)
    # and may hold key material or delivered values.
    server.psql(
        "alter system set log_connections = on; alter system set log_min_error_statement = panic; "
        "alter system set log_statement = none; select pg_reload_conf();"
    )
    return running


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the server on `data_dir` (fast shutdown: sessions are ended); False when none was running."""
    import pgserver

    running = status(data_dir)
    if running is None:
        return False
    user = "pgserver" if os.geteuid() == 0 else None  # the system user the wheel runs the server as under root
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=running.data_dir, user=user)
    return True
