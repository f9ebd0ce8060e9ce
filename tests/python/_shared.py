"""What the pytest-xdist workers of one run share: a directory made once, by the first worker that needs it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def run_wide(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """The directory `name` of this run, locked for the block: a worker that comes while another makes what it holds
    waits, then finds it made. Each worker's basetemp is a folder of the run's (`popen-gw0`...); without xdist, the
    run's basetemp itself. Never held by a block that enters it again (the lock is per open file, not per process).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            directory.mkdir(exist_ok=True)
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
