"""The committed generated files: they match the generator, and `--check` catches drift."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import duckdb

from snds import config
from snds.catalog import files
from snds.catalog.build import Catalog
from snds.catalog.committed import find_table, load_tables
from snds.catalog.conventions import Conventions
from snds.catalog.generate import render_all, render_model_sql
from snds.landing import init_landing
from snds.projects.build import generate_all, stale_files, write_generated


def test_committed_files_are_what_the_generator_writes(catalog: Catalog, conventions: Conventions) -> None:
    drift = files.compare(config.PROJECT_ROOT, render_all(catalog, conventions))
    assert not drift, f"run `snds catalog`:\n{drift.describe()}"


def test_check_catches_edits_missing_and_extra_files(tmp_path: Path) -> None:
    rendered = {
        PurePosixPath("models/staging/snds/a/A.sql"): "select 1 as a from dual\n",
        PurePosixPath("seeds/catalog/t.csv"): "x\n",
    }
    files.write(tmp_path, rendered)
    assert not files.compare(tmp_path, rendered)
    (tmp_path / "models/staging/snds/a/A.sql").write_text("select 2 as a from dual\n")
    (tmp_path / "seeds/catalog/t.csv").unlink()
    (tmp_path / "models/staging/snds/a/B.sql").write_text("select 3 as b from dual\n")
    drift = files.compare(tmp_path, rendered)
    assert drift.changed == [PurePosixPath("models/staging/snds/a/A.sql")]
    assert drift.missing == [PurePosixPath("seeds/catalog/t.csv")]
    assert drift.unexpected == [PurePosixPath("models/staging/snds/a/B.sql")]
    files.write(tmp_path, rendered)
    assert not files.compare(tmp_path, rendered)


def test_model_sql_is_plain_sql_over_its_landing_source(catalog: Catalog) -> None:
    sql = render_model_sql(catalog.table("IR_SEX_V"))
    assert "cast(landed.SEX_COD as numeric(1))  as SEX_COD" in sql
    assert "from {{ source('landing', 'IR_SEX_V') }} landed\n" in sql
    # only the validated deliveries are promoted into the base, each once
    assert sql.rstrip().endswith(
        "where landed.DELIVERY_ID in (select pending.DELIVERY_ID from {{ ref('pending_deliveries') }} pending "
        "where pending.MODEL_NAME = 'IR_SEX_V')"
    )
    # only source() and ref(): dbt's static parser reads it without Jinja
    assert {part.split("(")[0].strip() for part in sql.split("{{")[1:]} == {"source", "ref"}


def test_direct_identifiers_come_from_the_correspondence(catalog: Catalog) -> None:
    sql = render_model_sql(catalog.table("ER_PRS_F"))
    assert "cast(BEN_NIR_PSA_pseudonym.platform_pseudonym as varchar(17))" in sql
    assert "left join {{ ref('person_pseudonyms') }} BEN_NIR_PSA_pseudonym\n" in sql
    assert "    on landed.BEN_NIR_PSA = BEN_NIR_PSA_pseudonym.delivered_identifier" in sql
    assert "left join {{ ref('professional_pseudonyms') }} PFS_EXE_NUM_pseudonym" in sql
    assert "cast(landed.BEN_NIR_PSA" not in sql and "cast(landed.PRS_NAT_REF as" in sql
    # only source() and ref(): still read by dbt's static parser
    assert {part.split("(")[0].strip() for part in sql.split("{{")[1:]} == {"source", "ref"}


def test_direct_identifier_columns_hold_a_pseudonym(catalog: Catalog) -> None:
    types = {c.name: c.data_type for c in catalog.table("ER_PRS_F").columns}
    assert types["BEN_NIR_PSA"] == "varchar(17)" and types["PFS_EXE_NUM"] == "varchar(17)"
    assert {c.data_type for t in catalog.tables for c in t.columns if c.name == "NIR_ANO_MAM"} == {"varchar(32)"}


def test_table_names_keep_the_dictionarys_spelling(tmp_path: Path) -> None:
    tables = load_tables()
    spelt = [name for name in tables if name != name.upper()]
    assert len(spelt) == 18 and "T_MCO19GVxx" in spelt  # T_MCOaaGVxx, one table a year
    assert find_table(tables, "T_MCO19GVxx") is tables["T_MCO19GVxx"]
    assert find_table(tables, "T_MCO19GVXX") is tables["T_MCO19GVxx"]  # a manifest in another case
    assert find_table(tables, "ir_sex_v") is tables["IR_SEX_V"]
    assert find_table(tables, "T_MCO19GVX") is None
    # landing creates the table with the catalog's spelling, and recognises it on the next run
    database = tmp_path / "warehouse.duckdb"
    one = {"T_MCO19GVxx": tables["T_MCO19GVxx"]}
    assert init_landing(database, one).created == 1
    with duckdb.connect(str(database)) as con:
        names = con.execute("select table_name from information_schema.tables where table_schema = 'landing'")
        assert ("T_MCO19GVxx",) in names.fetchall()
    assert init_landing(database, one).unchanged == 1
    # a table spelt otherwise (SQL names are case-insensitive) is recreated with the catalog's spelling
    with duckdb.connect(str(database)) as con:
        con.execute("drop table landing.T_MCO19GVxx")
        con.execute("create table landing.T_MCO19GVXX (X integer)")
    assert init_landing(database, one).recreated == 1


def test_committed_project_models_are_what_the_project_generator_writes(tmp_path: Path) -> None:
    """models/projects/ and the guard's perimeters are regenerated from projects/*.yml; hand-written files stay."""
    generated = generate_all()
    assert {d.id for d in generated.definitions} >= {"P_T2D", "P_MI"}
    assert stale_files(config.PROJECT_ROOT, generated) == []
    for relative, text in generated.files.items():  # a copy where one file was edited and one hand-written added
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    edited = next(p for p in generated.files if p.name == "p_t2d__cohort.sql")
    (tmp_path / edited).write_text("select 1\n", encoding="utf-8")
    custom = tmp_path / "models/projects/p_t2d/p_t2d__custom.sql"
    custom.write_text("select 1 as x\n", encoding="utf-8")
    assert stale_files(tmp_path, generated) == [str(edited)]
    assert write_generated(tmp_path, generated) == (1, 0) and custom.exists()
