"""A full `dbt build` over empty landing tables on a real DuckDB file, and tests that can fail."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from snds.catalog.build import Catalog
from snds.catalog.committed import load_tables
from snds.dbt import DbtError, DbtRun, run_dbt
from snds.landing import init_landing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build(manifest: dict, scratch_database: Path, dbt_target: Path) -> DbtRun:
    init_landing(scratch_database, load_tables())
    return run_dbt("build", target_path=dbt_target)


def test_every_node_builds(build: DbtRun, catalog: Catalog) -> None:
    results = build.result.result.results
    statuses = {str(r.status) for r in results}
    assert statuses <= {"success", "pass"}, [r.node.name for r in results if str(r.status) not in ("success", "pass")]
    built_models = {r.node.name for r in results if r.node.resource_type == "model"}
    assert built_models == {t.name for t in catalog.tables}


def test_snds_schema_has_the_typed_tables(build: DbtRun, scratch_database: Path, catalog: Catalog) -> None:
    with duckdb.connect(str(scratch_database)) as con:
        tables = con.execute("select count(*) from information_schema.tables where table_schema = 'snds'").fetchone()
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'snds' and table_name = 'T_MCO19B' order by ordinal_position"
        ).fetchall()
        catalog_rows = con.execute("select count(*) from catalog.snds_tables").fetchone()
    assert tables == (len(catalog.tables),) and catalog_rows == (len(catalog.tables),)
    assert [name for name, _ in columns] == [c.name for c in catalog.table("T_MCO19B").columns]
    assert dict(columns)["ETA_NUM"] == "VARCHAR"


def test_primary_key_test_fails_on_a_duplicate(build: DbtRun, scratch_database: Path, dbt_target: Path) -> None:
    with duckdb.connect(str(scratch_database)) as con:
        con.execute("insert into landing.IR_SEX_V values (1, 'MASCULIN', 0), (1, 'MASCULIN', 0)")
    try:
        with pytest.raises(DbtError):
            run_dbt("build", "--select", "IR_SEX_V", target_path=dbt_target)
    finally:
        with duckdb.connect(str(scratch_database)) as con:
            con.execute("delete from landing.IR_SEX_V")
