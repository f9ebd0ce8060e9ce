"""Landing set-up on a real DuckDB file: typed from the catalog, idempotent, never drops data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from snds.catalog.committed import CatalogColumn, CatalogTable, load_tables
from snds.landing import PROVENANCE_COLUMNS, LandingError, init_landing


@pytest.fixture(scope="module")
def tables() -> dict[str, CatalogTable]:
    return load_tables()


def test_landing_tables_have_the_catalog_types(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    database = tmp_path / "db" / "warehouse.duckdb"
    report = init_landing(database, tables)
    assert report.created == len(tables) >= 2000
    with duckdb.connect(str(database)) as con:
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'landing' and table_name = 'ER_PRS_F' order by ordinal_position"
        ).fetchall()
    types = dict(columns)
    assert [name for name, _ in columns] == [c.name for c in tables["ER_PRS_F"].columns] + [
        name for name, _ in PROVENANCE_COLUMNS
    ]
    assert types["BEN_NIR_PSA"] == "VARCHAR" and types["BSE_REM_MNT"] == "DECIMAL(11,2)"
    assert types["EXE_SOI_DTD"] == "DATE"
    again = init_landing(database, tables)
    assert (again.created, again.unchanged, again.recreated) == (0, len(tables), 0)


def test_changed_table_is_recreated_only_when_empty(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    database = tmp_path / "warehouse.duckdb"
    sex = {"IR_SEX_V": tables["IR_SEX_V"]}
    init_landing(database, sex)
    widened = {
        "IR_SEX_V": replace(
            sex["IR_SEX_V"],
            columns=(*sex["IR_SEX_V"].columns, CatalogColumn("NEW_COL", "varchar(3)", "VARCHAR2(3)", "3", "other", "")),
        )
    }
    assert init_landing(database, widened).recreated == 1
    with duckdb.connect(str(database)) as con:
        con.execute("insert into landing.IR_SEX_V (SEX_COD, SEX_LIB) values (1, 'MASCULIN')")
    with pytest.raises(LandingError, match=r"landing.IR_SEX_V holds 1 rows"):
        init_landing(database, sex)
    with duckdb.connect(str(database)) as con:
        assert con.execute("select count(*) from landing.IR_SEX_V").fetchone() == (1,)
