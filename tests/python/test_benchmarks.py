"""Smoke runs of every benchmark script on tiny synthetic deliveries: each still runs to its end on the current schema
and prints its ratio. No time is asserted (these machines are noisy); the figures come from full runs.

The project and export benchmarks start from a warehouse with the base built: a copy of the run's
`projects_warehouse` (conftest.py) rather than one they would prepare (a `dbt build` of the base)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from project_warehouse import Warehouse
from snds.config import PROJECT_ROOT

BENCHMARKS = PROJECT_ROOT / "benchmarks"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{script} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def test_ingest_benchmark_runs(tmp_path: Path) -> None:
    output = _run("ingest_vs_duckdb.py", "--delivery", str(tmp_path / "D"), "--patients", "300")
    assert "throughput ratio (snds ingest / bare DuckDB):" in output


@pytest.mark.slow
def test_pseudonymisation_benchmark_runs() -> None:
    output = _run("pseudonymisation_vs_plain.py", "--patients", "300", "--repeat", "1", "--months", "2")
    assert "ratio pseudonymised / plain:" in output


@pytest.mark.slow
def test_validation_benchmark_runs(tmp_path: Path) -> None:
    output = _run("validation_vs_ingest.py", "--delivery", str(tmp_path / "D"), "--patients", "300")
    assert "status validated" in output


@pytest.mark.slow
def test_monthly_benchmark_runs(tmp_path: Path) -> None:
    output = _run("monthly_at_scale.py", "--patients", "200", "--work", str(tmp_path), "--deliveries", "3")
    assert "S200_M201903" in output and "build of the last flow month / the first:" in output
    assert (tmp_path / "monthly_at_scale.png").stat().st_size > 10_000


@pytest.mark.slow
def test_project_benchmark_runs(projects_warehouse: Warehouse, tmp_path: Path) -> None:
    copy = projects_warehouse.copy(tmp_path)
    options = ("--prepared", "--skip-layer", "--repeat", "1")
    output = _run("project_vs_hand_sql.py", "--database", str(copy.database), "--target", str(copy.target), *options)
    assert "time ratio project build / hand SQL:" in output


@pytest.mark.slow
def test_export_benchmark_runs(projects_warehouse: Warehouse, tmp_path: Path) -> None:
    database, target = tmp_path / "export.duckdb", tmp_path / "target"
    options = ("--source", str(projects_warehouse.database), "--database", str(database), "--target", str(target))
    output = _run("export_vs_duckdb.py", *options, "--repeat", "1")
    assert "reused" in output and "bare DuckDB COPY to parquet" in output
