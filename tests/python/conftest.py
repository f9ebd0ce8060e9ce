"""Shared fixtures: the dictionary, the built catalog, and real dbt runs on this project."""

from __future__ import annotations

from collections.abc import Iterator
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
    from snds.dbt import dbt_database

    with dbt_database(tmp_path_factory.mktemp("duckdb") / "warehouse.duckdb") as path:
        yield path


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target path for this session, kept apart from the developer's own target/."""
    return tmp_path_factory.mktemp("dbt_target")


@pytest.fixture(scope="session")
def manifest(scratch_database: Path, dbt_target: Path) -> dict:
    from snds.dbt import run_dbt

    return run_dbt("parse", target_path=dbt_target).manifest()
