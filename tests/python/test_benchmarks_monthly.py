"""Smoke runs of the benchmarks that receive a synthetic SNDS split into monthly deliveries (incremental staging):
each still runs to its end on the current schema and prints its figures; no time is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_runs import run_benchmark

# the project parsed and kept for the checkout first: each benchmark's dbt steps load it (seconds) instead of parsing
# the project again for its own new database (a minute each)
pytestmark = pytest.mark.usefixtures("parsed_project")


@pytest.mark.slow
def test_pseudonymisation_benchmark_runs() -> None:
    output = run_benchmark("pseudonymisation_vs_plain.py", "--patients", "300", "--repeat", "1", "--months", "2")
    assert "ratio pseudonymised / plain:" in output


@pytest.mark.slow
def test_monthly_benchmark_runs(tmp_path: Path) -> None:
    options = ("--patients", "200", "--work", str(tmp_path), "--deliveries", "3", "--warm")  # one dbt parse
    output = run_benchmark("monthly_at_scale.py", *options)
    assert "S200_M201903" in output and "build of the last flow month / the first:" in output
    assert (tmp_path / "monthly_at_scale.png").stat().st_size > 10_000
