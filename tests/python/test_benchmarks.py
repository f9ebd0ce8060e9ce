"""Smoke runs of every benchmark script on tiny synthetic deliveries: each still runs to its end on the current schema
and prints its ratio. No time is asserted (these machines are noisy); the figures come from full runs. The two that
receive monthly deliveries are in test_benchmarks_monthly.py (a module apart: the test workers share the load).

The project and export benchmarks start from a warehouse with the base built: a copy of the run's
`projects_warehouse` (conftest.py) rather than one they would prepare (a `dbt build` of the base)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_runs import run_benchmark
from project_warehouse import Warehouse

# the project parsed and kept for the checkout first: each benchmark's dbt steps load it (seconds) instead of parsing
# the project again for its own new database (a minute each)
pytestmark = pytest.mark.usefixtures("parsed_project")


def test_ingest_benchmark_runs(tmp_path: Path) -> None:
    output = run_benchmark("ingest_vs_duckdb.py", "--delivery", str(tmp_path / "D"), "--patients", "300")
    assert "throughput ratio (snds ingest / bare DuckDB):" in output


@pytest.mark.slow
def test_validation_benchmark_runs(tmp_path: Path) -> None:
    output = run_benchmark("validation_vs_ingest.py", "--delivery", str(tmp_path / "D"), "--patients", "300")
    assert "status validated" in output


@pytest.mark.slow
def test_project_benchmark_runs(projects_warehouse: Warehouse, tmp_path: Path) -> None:
    copy = projects_warehouse.copy(tmp_path)
    options = ("--prepared", "--skip-layer", "--repeat", "1")
    output = run_benchmark(
        "project_vs_hand_sql.py", "--database", str(copy.database), "--target", str(copy.target), *options
    )
    assert "time ratio project build / hand SQL:" in output


@pytest.mark.slow
def test_export_benchmark_runs(projects_warehouse: Warehouse, tmp_path: Path) -> None:
    database, target = tmp_path / "export.duckdb", tmp_path / "target"
    options = ("--source", str(projects_warehouse.database), "--database", str(database), "--target", str(target))
    output = run_benchmark("export_vs_duckdb.py", *options, "--repeat", "1")
    assert "reused" in output and "bare DuckDB COPY to parquet" in output
