"""A fresh warehouse for a benchmark: `<work>/base/warehouse.duckdb` (replaced), landing made, a random platform key
and the keys of the projects asked for (never written anywhere but the key store)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.keys import store
from snds.landing import init_landing


def fresh_warehouse(work: Path, tables: dict[str, CatalogTable], projects: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """(database, dbt target path) of a new warehouse in `work`/base."""
    base = work / "base"
    shutil.rmtree(base, ignore_errors=True)
    database, target = base / "warehouse.duckdb", base / "target"
    init_landing(database, tables)
    with duckdb.connect(str(database)) as con:
        store.init_platform(con, secrets.token_bytes(32))
        for project in projects:
            store.init_project(con, project)
    return database, target
