"""Shared fixtures: the dictionary, the built catalog, and real dbt runs on this project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from snds import config
from snds.catalog.build import Catalog, build_catalog
from snds.catalog.conventions import Conventions, load_conventions
from snds.catalog.dictionary import DictTable, read_dictionary


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
    path = tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb"
    previous = os.environ.get("SNDS_DUCKDB_PATH")
    os.environ["SNDS_DUCKDB_PATH"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("SNDS_DUCKDB_PATH", None)
    else:
        os.environ["SNDS_DUCKDB_PATH"] = previous


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target path for this session, kept apart from the developer's own target/."""
    return tmp_path_factory.mktemp("dbt_target")


@pytest.fixture(scope="session")
def manifest(scratch_database: Path, dbt_target: Path) -> dict:
    from snds.dbt import run_dbt

    return run_dbt("parse", target_path=dbt_target).manifest()


@contextmanager
def dbt_database(path: Path) -> Iterator[Path]:
    """Point dbt (SNDS_DUCKDB_PATH) at another DuckDB file for a while."""
    previous = os.environ.get("SNDS_DUCKDB_PATH")
    os.environ["SNDS_DUCKDB_PATH"] = str(path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop("SNDS_DUCKDB_PATH", None)
        else:
            os.environ["SNDS_DUCKDB_PATH"] = previous
