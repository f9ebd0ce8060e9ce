"""Run dbt in-process with the project's profiles, the way an analytics engineer runs it by hand."""

from __future__ import annotations

import atexit
import gc
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest

from snds.config import PROFILES_DIR, PROJECT_ROOT
from snds.dbt_slice import save_parse, saved_parse, sources_slice

DUCKDB_ONLY = "duckdb_only"  # the tag of models that run on DuckDB alone (Splink's linkage)
ORACLE_OFFLINE_TARGET = "oracle_offline"
ORACLE_TARGET_PATH = PROJECT_ROOT / "target" / "oracle"
MACRO_PROJECT = PROJECT_ROOT / "target" / "snds_macro_project"  # `macro_project`
MACRO_PROJECT_FILES = ("dbt_project.yml", "macros")
# For the platform's own bounded builds (a project, a promotion): no JSON artifacts (the 34 MB manifest.json ...:
# the build record and the audit say what was built); the relation cache of the selected nodes' schemas only, not
# of the thousands of tables their parents live beside; dbt's fast ordering of tests before their models' children
# (the same order, from far fewer graph edges: a build of one model from the whole parse starts in 2 s, not 6 s).
BUILD_OPTIONS = ("--no-write-json", "--cache-selected-only", "--use-fast-test-edges")


class DbtError(Exception):
    """A dbt command failed."""


@dataclass(frozen=True)
class DbtRun:
    result: dbtRunnerResult
    target_path: Path

    def manifest(self) -> dict:
        return json.loads((self.target_path / "manifest.json").read_text(encoding="utf-8"))


@contextmanager
def dbt_database(path: Path) -> Iterator[Path]:
    """Point dbt's DuckDB profile (SNDS_DUCKDB_PATH) at another database file for a while."""
    with dbt_environment("SNDS_DUCKDB_PATH", str(path.resolve())):
        yield path


@contextmanager
def dbt_environment(name: str, value: str) -> Iterator[None]:
    """Set one environment variable that dbt reads (`env_var`) for a while. A value that changes from one
    invocation to the next belongs here rather than in `--vars`: dbt re-parses only the files that read a changed
    variable, while other `--vars` than the last invocation's make it parse the whole project again."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection during a bounded dbt invocation (a project's few nodes), nor at the
    interpreter's exit. dbt's parsed project is millions of long-lived objects that each full collection walks
    again: about 4 s of `snds project build` went to collections during dbt, and 3 s to those at exit. The cycles
    the invocation leaves are collected after it; peak memory measured unchanged."""
    if not _exit_without_collection:
        atexit.register(gc.freeze)  # atexit runs before the interpreter's final collections
        _exit_without_collection.append(True)
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_exit_without_collection: list[bool] = []


def default_target_path() -> Path:
    """dbt's target path: DBT_TARGET_PATH (dbt's own variable) when set, else target/ in the project."""
    return Path(os.environ.get("DBT_TARGET_PATH") or PROJECT_ROOT / "target")


def run_dbt(
    *args: str, target_path: Path | None = None, manifest: Manifest | None = None, project_dir: Path = PROJECT_ROOT
) -> DbtRun:
    """`dbt <args>` against this project (parsed already when `manifest` is given), or against `project_dir` (the
    macro project); raises DbtError on failure."""
    path = target_path or default_target_path()
    argv = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(PROFILES_DIR)]
    argv += ["--target-path", str(path)]
    cwd = Path.cwd()
    os.chdir(project_dir)  # the profile's relative DuckDB path is relative to the project
    try:
        result = dbtRunner(manifest=manifest).invoke(argv)
    finally:
        os.chdir(cwd)
    if not result.success:
        raise DbtError(f"`dbt {' '.join(args)}` failed{_failure_detail(result)}")
    return DbtRun(result, path)


def target_options(dbt_target: str | None) -> tuple[str, ...]:
    """dbt's `--target` option for another target than the profile's default (None)."""
    return ("--target", dbt_target) if dbt_target else ()


def parse_project(*options: str, target_path: Path | None = None, dbt_target: str | None = None) -> Manifest:
    """The whole project parsed for `dbt_target` (the profile's default when None): the parse kept for this checkout
    while nothing dbt reads has changed (`snds.dbt_slice.saved_parse`: seconds, for a database in any folder), else
    `dbt parse <options>`, kept for the next. It writes no manifest.json (a tenth of a whole parse): the kept parse
    is what the next command reads."""
    manifest = saved_parse(dbt_target)
    if manifest is None:
        parse = ("parse", "--no-write-json", *options, *target_options(dbt_target))
        manifest = run_dbt(*parse, target_path=target_path).result.result
        save_parse(manifest, dbt_target)
    return manifest


def macro_project() -> Path:
    """The project reduced to its configuration and macros (MACRO_PROJECT, one folder per version of those files):
    a snippet that calls macros and reads no model or source (the access plan) compiles there after a parse of a
    few seconds, where the whole project's takes a minute. Written once per version, complete before it is seen."""
    files = sorted(p for name in MACRO_PROJECT_FILES for p in [PROJECT_ROOT / name, *(PROJECT_ROOT / name).rglob("*")])
    digest = hashlib.sha256()
    for path in (p for p in files if p.is_file()):
        digest.update(f"{path.relative_to(PROJECT_ROOT)}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    folder = MACRO_PROJECT / digest.hexdigest()[:16]
    if not folder.is_dir():
        MACRO_PROJECT.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix="building-", dir=MACRO_PROJECT))
        shutil.copy2(PROJECT_ROOT / "dbt_project.yml", building / "dbt_project.yml")
        shutil.copytree(PROJECT_ROOT / "macros", building / "macros")
        try:
            building.rename(folder)
        except OSError:  # another process wrote the same version first
            shutil.rmtree(building, ignore_errors=True)
    return folder


class InlineCompiler:
    """Compile SQL snippets (Jinja with the project's macros and sources), parsing the project once: a compile with
    the parsed manifest in memory, no relation cache and no JSON written takes about a second instead of twenty.
    `database`: the DuckDB file the snippets will run on; `dbt_target`: another profile target (Oracle offline);
    `manifest`: the project parsed already by the caller (for a database file of the same name), not parsed again;
    `macros_only`: the snippets call macros and read no model nor source (`macro_project`: a parse of seconds);
    `sources_only`: they read sources and no model (the conformity checks): compiled against the parse cut to its
    sources (`sources_slice`), whose graph dbt links in a fraction of a second instead of 2 to 4 s each compile;
    `project_dir`: a copy of the project instead (a test's, cut), parsed by dbt when no `manifest` is given, never
    kept as the checkout's parse.
    """

    def __init__(
        self,
        target_path: Path,
        database: Path | None = None,
        dbt_target: str | None = None,
        manifest: Manifest | None = None,
        macros_only: bool = False,
        sources_only: bool = False,
        project_dir: Path = PROJECT_ROOT,
    ) -> None:
        self.target_path, self.database, self.dbt_target = target_path, database, dbt_target
        self._quiet = ("--quiet", "--log-level", "none")
        self._options = (*self._quiet, *target_options(dbt_target))
        self._manifest = manifest
        self._sources_only = sources_only
        self._project = macro_project() if macros_only else project_dir
        if macros_only:  # its own target: dbt's partial parse state there is the macro project's
            self.target_path = self._project / "target"

    def compile(self, sql: str) -> str:
        with dbt_database(self.database) if self.database else nullcontext():
            if self._manifest is None and self._project != PROJECT_ROOT:
                parsed = run_dbt("parse", *self._options, target_path=self.target_path, project_dir=self._project)
                self._manifest = parsed.result.result
            elif self._manifest is None:
                self._manifest = parse_project(*self._quiet, target_path=self.target_path, dbt_target=self.dbt_target)
            if self._sources_only:
                self._manifest, self._sources_only = sources_slice(self._manifest), False  # cut once
            run = run_dbt(
                "compile",
                *self._options,
                "--no-populate-cache",
                "--no-write-json",
                "--inline",
                sql,
                target_path=self.target_path,
                manifest=self._manifest,
                project_dir=self._project,
            )
        return run.result.result.results[0].node.compiled_code


def _failure_detail(result: dbtRunnerResult) -> str:
    """What failed: dbt's exception, and each failed or erroring node with its message."""
    details = []
    error: BaseException | None = result.exception
    while error is not None:  # dbt wraps the compiler's message: keep every level
        details.append(str(error).strip())
        error = error.__cause__ or error.__context__
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in ("error", "fail", "runtime error"):
            details.append(f"{node_result.node.name}: {node_result.message}")
    return ": " + "; ".join(details) if details else ""


def compile_oracle_offline(
    *extra: str,
    target_path: Path = ORACLE_TARGET_PATH,
    manifest: Manifest | None = None,
    project_dir: Path = PROJECT_ROOT,
) -> DbtRun:
    """Compile the whole project for Oracle without a database (nothing connects), except the models tagged
    DUCKDB_ONLY and what depends on them (a Python model: dbt-oracle connects to compile one). `manifest`: the
    project parsed for ORACLE_OFFLINE_TARGET already (`parse_project`), not parsed again; `project_dir`: a copy of
    the project instead (a test's, cut), `manifest` its parse."""
    excluded = ("--exclude", f"tag:{DUCKDB_ONLY}+")
    return run_dbt(
        "compile",
        "--target",
        ORACLE_OFFLINE_TARGET,
        "--no-populate-cache",
        *excluded,
        *extra,
        target_path=target_path,
        manifest=manifest,
        project_dir=project_dir,
    )
