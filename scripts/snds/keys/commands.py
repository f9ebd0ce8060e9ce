"""`snds keys`: load, rotate, retire and list pseudonymisation keys; scan the work tree and git for leaked keys."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from snds import config, engine
from snds.cli_common import EXIT_TOOL, chosen_engine, console, database_option, fail, target_option
from snds.engine import Connection, EngineError
from snds.keys import leaks, store
from snds.keys.material import DEFAULT_SECRET_ENV, KeyRefused, read_secret, write_new_secret
from snds.warehouse import WarehouseError


@contextmanager
def _store(target: str | None, database: Path | None) -> Iterator[Connection]:
    try:
        with engine.connect(chosen_engine(target, database), database, create=True) as con:
            yield con
    except (EngineError, WarehouseError) as error:
        fail(str(error), EXIT_TOOL)


def _secret_options(command: Callable) -> Callable:
    command = click.option(
        "--from-env",
        "from_env",
        default=None,
        metavar="VAR",
        help=f"Read the secret from this environment variable (default when no file is given: {DEFAULT_SECRET_ENV}).",
    )(command)
    return click.option(
        "--from-file",
        "from_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Read the secret from this file (at least 32 bytes; a trailing line break is ignored).",
    )(command)


def _secret(from_file: Path | None, from_env: str | None) -> bytes:
    if from_file is None and from_env is None:
        from_env = DEFAULT_SECRET_ENV
    return read_secret(from_file, from_env)


def _run(action: Callable[[], str], done: str) -> None:
    try:
        key_id = action()
    except KeyRefused as error:
        fail(str(error))
    console.print(done.format(key_id=key_id))


@click.group()
def keys() -> None:
    """Pseudonymisation keys, kept in the restricted `keys` schema and never in SQL, logs or exports."""


@keys.command("generate")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def generate(path: Path) -> None:
    """Write a new random secret to PATH (mode 0600; never overwrites). Keep it out of git."""
    try:
        write_new_secret(path)
    except FileExistsError:
        fail(f"{path} already exists; a secret is never overwritten")
    console.print(f"new secret written to {path} (readable by you only)")


@keys.command("init")
@_secret_options
@click.option("--project", default=None, help="Create a random key for this research project instead.")
@database_option
@target_option
def init(
    from_file: Path | None, from_env: str | None, project: str | None, database: Path | None, target: str | None
) -> None:
    """Load the platform key (derived from the secret), or create a project's key."""
    with _store(target, database) as con:
        if project is not None:
            if from_file or from_env:
                fail("a project key is random: --from-file and --from-env apply to the platform key only")
            _run(lambda: store.init_project(con, project), f"project {project}: key {{key_id}} created")
            return
        try:
            secret = _secret(from_file, from_env)
        except KeyRefused as error:
            fail(str(error))
        _run(lambda: store.init_platform(con, secret), "platform key {key_id} loaded (person and professional)")


@keys.command("rotate")
@_secret_options
@database_option
@target_option
def rotate(from_file: Path | None, from_env: str | None, database: Path | None, target: str | None) -> None:
    """Renew the platform key: the new key becomes active, the current one is kept until `retire`."""
    with _store(target, database) as con:
        try:
            secret = _secret(from_file, from_env)
        except KeyRefused as error:
            fail(str(error))
        _run(
            lambda: store.rotate_platform(con, secret),
            "platform key {key_id} active; run `dbt build` to re-pseudonymise the base, then `snds keys retire`",
        )


@keys.command("retire")
@click.option("--project", default=None, help="Destroy this closed project's key instead.")
@database_option
@target_option
def retire(project: str | None, database: Path | None, target: str | None) -> None:
    """Destroy the previous platform key once the base is rebuilt under the new one (or a project's key)."""
    with _store(target, database) as con:
        if project is not None:
            _run(lambda: store.retire_project(con, project), f"project {project}: key {{key_id}} destroyed")
        else:
            _run(lambda: store.retire_previous_platform_key(con), "previous platform key {key_id} destroyed")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON on stdout.")
@database_option
@target_option
def list_(as_json: bool, database: Path | None, target: str | None) -> None:
    """Keys by scope, domain and status, with their fingerprints (never the material)."""
    with _store(target, database) as con:
        store.create_key_store(con)
        found = store.list_keys(con)
    if as_json:
        click.echo(json.dumps(store.as_json(found), indent=2))
        return
    if not found:
        console.print("no keys loaded; run `snds keys init`")
    for key in found:
        retired = f" retired {key.retired_at}" if key.retired_at else ""
        console.print(
            f"{key.scope:<24} {key.key_id:<28} {key.domain:<13} {key.status:<9} {key.fingerprint}  "
            f"created {key.created_at}{retired}"
        )


@keys.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--git/--no-git", "scan_git", default=True, show_default=True, help="Scan every git object too.")
@click.option(
    "--secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Look for this secret too, as written and decoded (hex, base64); under data/ this file is not read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON on stdout.")
@database_option
@target_option
def scan(
    paths: tuple[Path, ...],
    scan_git: bool,
    secret_file: Path | None,
    as_json: bool,
    database: Path | None,
    target: str | None,
) -> None:
    """Fail if any key or pad of the store (or the secret) appears in the work tree or git, in any encoding.

    \b
    Read by default: every file git tracks (its working copy) and every
    untracked file git does not ignore; target/, logs/ and all of data/
    except the database files (*.duckdb, *.duckdb.wal, *.wal) and the
    --secret-file itself (any other file in data/secrets is read); with
    --git (the default), every git object. PATHS, if given, replace the
    work tree (the same exceptions under data/). .git/ and .venv/ are
    never walked, no symlink is followed. A finding names the file and
    the form, never the key.
    """
    with _store(target, database) as con:
        store.create_key_store(con)
        needles = leaks.key_store_needles(con)
    if secret_file is not None:
        try:
            needles += leaks.secret_needles(read_secret(secret_file, None))
        except KeyRefused as error:
            fail(str(error))
    if not needles:
        fail("the key store holds no key: nothing to look for")
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        fail(f"nothing to scan at {', '.join(missing)}")
    links = [str(p) for p in paths if p.is_symlink()]
    if links:
        fail(f"{', '.join(links)}: a symbolic link, never followed by the scan")
    root = config.PROJECT_ROOT
    with console.status("scanning for key material"):
        try:
            if paths:
                found = leaks.scan_paths(paths, needles, leaks.not_read(root, secret_file))
            else:
                found = leaks.scan_work_tree(root, needles, secret_file)
            if scan_git:
                found += leaks.scan_git(root, needles)
        except (OSError, RuntimeError) as error:
            fail(f"scan stopped: {error}")
    if as_json:
        click.echo(json.dumps([{"where": f.where, "what": f.label} for f in found], indent=2))
    scanned = ", ".join(map(str, paths)) or f"the work tree of {root} (with target/, logs/, data/)"
    scanned += " and git" if scan_git else ""
    if found:
        for leak in found:
            console.print(f"[red]key material[/] {leak.label} in {leak.where}", highlight=False)
        fail(f"{len(found)} leak(s) of key material found")
    console.print(f"no key material found ({len(needles)} encodings of keys, pads and secrets) in {scanned}")
