"""Running a benchmark script as a user does, for the smoke runs of tests/python/test_benchmarks*.py."""

from __future__ import annotations

import subprocess
import sys

from snds.config import PROJECT_ROOT

BENCHMARKS = PROJECT_ROOT / "benchmarks"


def run_benchmark(script: str, *args: str) -> str:
    """`python benchmarks/<script> <args>` from the project root; its standard output, or a failed assertion."""
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
