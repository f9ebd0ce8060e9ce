"""Run dbt in-process with the project's profiles, the way an analytics engineer runs it by hand."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dbt.cli.main import dbtRunner, dbtRunnerResult

from snds.config import PROFILES_DIR, PROJECT_ROOT

ORACLE_OFFLINE_TARGET = "oracle_offline"
ORACLE_TARGET_PATH = PROJECT_ROOT / "target" / "oracle"


class DbtError(Exception):
    """A dbt command failed."""


@dataclass(frozen=True)
class DbtRun:
    result: dbtRunnerResult
    target_path: Path

    def manifest(self) -> dict:
        return json.loads((self.target_path / "manifest.json").read_text(encoding="utf-8"))


def run_dbt(*args: str, target_path: Path | None = None) -> DbtRun:
    """`dbt <args>` against this project; raises DbtError when dbt reports a failure."""
    path = target_path or PROJECT_ROOT / "target"
    argv = [*args, "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROFILES_DIR)]
    argv += ["--target-path", str(path)]
    cwd = Path.cwd()
    os.chdir(PROJECT_ROOT)  # the profile's relative DuckDB path is relative to the project
    try:
        result = dbtRunner().invoke(argv)
    finally:
        os.chdir(cwd)
    if not result.success:
        raise DbtError(f"`dbt {' '.join(args)}` failed{_failure_detail(result)}")
    return DbtRun(result, path)


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


def compile_oracle_offline(*extra: str, target_path: Path = ORACLE_TARGET_PATH) -> DbtRun:
    """Compile the whole project for Oracle without a database (nothing connects)."""
    return run_dbt("compile", "--target", ORACLE_OFFLINE_TARGET, "--no-populate-cache", *extra, target_path=target_path)
