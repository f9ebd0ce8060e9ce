"""Shared fixtures: the dictionary, the built catalog, and real dbt runs on this project.

`make test` runs the suite on two pytest-xdist workers (processes) with `--dist loadfile`: each module runs whole on
one worker (its module fixtures are made once), and session fixtures are made once per worker, except what a worker
publishes for the others (`_shared.run_wide`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from _shared import run_wide
from snds import config
from snds.catalog.build import Catalog, build_catalog
from snds.catalog.conventions import Conventions, load_conventions
from snds.catalog.dictionary import DictTable, read_dictionary

if TYPE_CHECKING:  # dbt is imported by the fixtures that run it
    from dbt.contracts.graph.manifest import Manifest
    from xdist.remote import Producer
    from xdist.scheduler.protocol import Scheduling

    from distinct_build import DistinctBuild
    from project_warehouse import Warehouse
    from snds.dbt import DbtRun

# The modules that run longest, longest first: with `--dist loadfile --no-loadscope-reorder`, the workers start on
# them and the quick modules fill in behind. The second starts with the Oracle compile, which parses the project for
# its own target: it does not wait for the first worker's parse, as every DuckDB module does.
LONGEST_FIRST = (
    "test_duckdb_build.py",
    "test_oracle_compile.py",
    "test_incremental_staging.py",
    "test_postgres_project.py",
    "test_benchmarks_monthly.py",
    "test_benchmarks.py",
    "test_pseudonymisation.py",
    "test_project_guard.py",
    "test_conformity.py",
)


# Modules that read a session fixture too costly to make on each worker run on the worker of the module named here,
# after it: test_events reads the build of every distinct definition that test_duckdb_build makes (distinct_build).
SHARED_WORKER = {"test_events.py": "test_duckdb_build.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> Scheduling | None:
    """With `--dist loadfile`: each module whole on one worker, the modules of SHARED_WORKER with their host's."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SharedWorkerScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            folder, _, name = scope.rpartition("/")
            return f"{folder}/{SHARED_WORKER[name]}" if name in SHARED_WORKER else scope

    return SharedWorkerScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first; tests keep their order within a module (the sort is stable)."""

    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def conventions() -> Conventions:
    return load_conventions()


@pytest.fixture(scope="session")
def dictionary() -> list[DictTable]:
    reference = config.reference_dir()
    if not reference.is_dir():
        pytest.fail(f"the SNDS dictionary is expected at {reference} (set SNDS_REFERENCE_DIR)")
    return read_dictionary(reference)


@pytest.fixture(scope="session")
def catalog(dictionary: list[DictTable], conventions: Conventions) -> Catalog:
    return build_catalog(dictionary, conventions)


@pytest.fixture(scope="session")
def scratch_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh DuckDB file for this test session, used by dbt through SNDS_DUCKDB_PATH."""
    from snds.dbt import dbt_database

    with dbt_database(tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb") as path:
        yield path


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target path for this session, kept apart from the developer's own target/."""
    return tmp_path_factory.mktemp("dbt_target")


@pytest.fixture(scope="session")
def parsed_project(scratch_database: Path, dbt_target: Path, tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    """The project parsed once per run: the first worker runs `dbt parse` on its scratch database (its target keeps
    dbt's partial parse for the tests that start from it), publishes manifest.json for the other workers'
    `manifest` and keeps the parse for the checkout (`snds.dbt.parse_project`); a worker that comes later loads that
    kept parse in seconds instead of parsing again (a minute), and has no partial parse in its target."""
    from dbt.cli.main import dbtRunnerResult

    from snds.dbt import DbtRun, run_dbt
    from snds.dbt_slice import save_parse, saved_parse

    with run_wide(tmp_path_factory, "parsed_project") as shared:
        published = shared / "manifest.json"
        kept = saved_parse() if published.exists() else None
        if kept is None:
            run = run_dbt("parse", target_path=dbt_target)
            if not published.exists():
                shutil.copy(run.target_path / "manifest.json", published)
                save_parse(run.result.result)
            return run
    shutil.copy(published, dbt_target / "manifest.json")
    return DbtRun(dbtRunnerResult(success=True, result=kept), dbt_target)


@pytest.fixture(scope="session")
def manifest(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The parsed project as dbt writes it (manifest.json): parsed by this worker, or by another one of this run."""
    with run_wide(tmp_path_factory, "parsed_project") as shared:
        published = shared / "manifest.json"
        parsed = published.exists()
    if not parsed:
        request.getfixturevalue("parsed_project")  # parses and publishes
    return json.loads(published.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def projects_warehouse(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Manifest) -> Warehouse:
    """Both example projects built on a synthetic delivery, once per run (`project_warehouse`): copy it
    (`Warehouse.copy`) before use, since two workers may use it."""
    from project_warehouse import build

    with run_wide(tmp_path_factory, "projects_warehouse") as shared:
        return build(shared, dbt_manifest)


@pytest.fixture(scope="session")
def distinct_build(
    dbt_manifest: Manifest, scratch_database: Path, dbt_target: Path, tmp_path_factory: pytest.TempPathFactory
) -> DistinctBuild:
    """Every distinct definition of the project built on this worker's scratch database (distinct_build.py), for
    the modules of SHARED_WORKER."""
    from distinct_build import build

    return build(scratch_database, dbt_target, tmp_path_factory.mktemp("distinct_build"), dbt_manifest)


@pytest.fixture(scope="session")
def dbt_manifest(parsed_project: DbtRun) -> Manifest:
    """The parsed project in memory: `run_dbt(..., manifest=dbt_manifest)` on the scratch database skips dbt's own
    parse (about ten seconds a command, a full parse on a new target or database)."""
    return parsed_project.result.result
