"""A `dbt build` of the whole project on a real DuckDB file, and tests that can fail.

Every distinct definition is built (distinct_models.py): every node outside the catalog's staging, every staging
table the test delivers rows to, and one staging model of each class of definitions equal up to the table's name
(the DCIR archives of one structure, the PMSI years that did not change): 3,300 nodes would take this suite's
budget on their own, each run by dbt at about 0.14 s."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from dbt.contracts.graph.manifest import Manifest

from distinct_build import DistinctBuild, linked_folders
from distinct_models import model_classes
from identifier_checks import delivered_identifiers, identifier_columns, surviving_identifiers
from selection_slice import selection_slice
from snds.catalog.build import Catalog
from snds.dbt import BUILD_OPTIONS, DbtError, DbtRun, run_dbt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def build(distinct_build: DistinctBuild) -> DbtRun:
    """The run's build of every distinct definition (distinct_build.py), on this worker's scratch database."""
    return distinct_build.run


def _built_tables(build: DbtRun, catalog: Catalog) -> set[str]:
    """The catalog's tables the build staged."""
    built = {r.node.name for r in build.result.result.results if r.node.resource_type == "model"}
    return built & {t.name for t in catalog.tables}


def _base_tables(distinct_build: DistinctBuild, catalog: Catalog) -> int:
    """How many tables the base's schema holds: those the build staged, and those created empty."""
    return len(_built_tables(distinct_build.run, catalog) | distinct_build.created)


def test_every_distinct_node_builds(
    build: DbtRun, distinct_build: DistinctBuild, catalog: Catalog, dbt_manifest: Manifest
) -> None:
    results = build.result.result.results
    failed = [
        r.node.name for r in results if str(r.status) not in ("success", "pass", "warn", "no-op")
    ]  # exposures: no-op
    assert not failed
    warned_on = {r.node.attached_node.split(".")[-1] for r in results if str(r.status) == "warn"}
    assert all(catalog.table(name).template.is_nomenclature for name in warned_on), warned_on
    built_models = {r.node.name for r in results if r.node.resource_type == "model"}
    keys_models = {"pseudonymisation_keys", "person_pseudonyms", "professional_pseudonyms", "pseudonym_renewals"}
    keys_models.update({"promoted_deliveries", "promoted_tables", "pending_deliveries", "pending_event_deliveries"})
    layers = {"intermediate", "marts", "projects"}  # the event layer and every research project of projects/
    later = {r.node.name for r in results if r.node.resource_type == "model" and r.node.fqn[1] in layers}
    assert {"events", "persons", "p_t2d__cohort", "p_mi__cohort"} <= later and len(linked_folders()) == 3
    assert not any(name.startswith("p_link_") for name in later)  # built by the shared projects warehouse
    classes = model_classes(dbt_manifest)
    staged = built_models - keys_models - later
    assert all(staged.intersection(uid.split(".")[-1] for uid in group) for group in classes)  # each class built
    assert staged == _built_tables(build, catalog) and len(staged) < len(catalog.tables)
    landed_codes = {"IR_BEN_R", "ER_PRS_F", "T_MCO19B", "T_MCO20B", "IR_CIP_V", "IR_NAT_V"}  # delivered: built
    assert landed_codes <= staged
    assert len(distinct_build.created) > 100 and not distinct_build.created & staged  # years nobody delivered


def test_snds_schema_has_the_typed_tables(
    distinct_build: DistinctBuild, scratch_database: Path, catalog: Catalog
) -> None:
    with duckdb.connect(str(scratch_database)) as con:
        tables = con.execute("select count(*) from information_schema.tables where table_schema = 'snds'").fetchone()
        columns = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'snds' and table_name = 'T_MCO19B' order by ordinal_position"
        ).fetchall()
        catalog_rows = con.execute("select count(*) from catalog.snds_tables").fetchone()
    assert tables == (_base_tables(distinct_build, catalog),) and catalog_rows == (len(catalog.tables),)
    assert [name for name, _ in columns] == [c.name for c in catalog.table("T_MCO19B").columns]
    assert dict(columns)["ETA_NUM"] == "VARCHAR"


def test_staging_holds_every_landed_row(build: DbtRun, scratch_database: Path) -> None:
    with duckdb.connect(str(scratch_database)) as con:
        for table in ("IR_SEX_V", "IR_BEN_R", "ER_PRS_F", "ER_PHA_F", "T_MCO19B", "T_MCO19C", "KI_CCI_R"):
            landed = con.execute(f"select count(*) from landing.{table}").fetchone()
            staged = con.execute(f"select count(*) from snds.{table}").fetchone()
            assert landed == staged and landed[0] > 0, table


def test_primary_key_test_fails_on_a_duplicate(
    build: DbtRun, scratch_database: Path, dbt_target: Path, dbt_manifest: Manifest
) -> None:
    with duckdb.connect(str(scratch_database)) as con:
        con.execute(  # in a promoted delivery, so that staging reads it
            "insert into landing.IR_BEN_R select * replace ('DUPLICATE' as DELIVERY_FILE) from landing.IR_BEN_R "
            "where DELIVERY_ID = 'D2019' limit 1"
        )
    try:
        with pytest.raises(DbtError, match="primary_key_IR_BEN_R_BEN_NIR_PSA__BEN_RNG_GEM: "):  # the test, nothing else
            # the delivery was applied already: only a full rebuild reads landing again
            run_dbt(
                "build",
                *BUILD_OPTIONS,
                "--select",
                "IR_BEN_R",
                "--full-refresh",
                target_path=dbt_target,
                manifest=selection_slice(dbt_manifest, "IR_BEN_R"),
            )
    finally:
        with duckdb.connect(str(scratch_database)) as con:
            con.execute("delete from landing.IR_BEN_R where DELIVERY_FILE = 'DUPLICATE'")


def test_code_list_key_defects_warn_without_blocking(build: DbtRun) -> None:
    results = {r.node.name: str(r.status) for r in build.result.result.results}
    assert results["primary_key_IR_DTE_V_DTE_DTE"] == "warn"  # the dictionary's IR_DTE_V has an empty key


def test_no_delivered_identifier_survives_anywhere_in_the_base(
    distinct_build: DistinctBuild, scratch_database: Path, catalog: Catalog
) -> None:
    professional_columns = identifier_columns(catalog, "professional")
    with duckdb.connect(str(scratch_database)) as con:
        persons = delivered_identifiers(con, catalog, "person")
        professionals = delivered_identifiers(con, catalog, "professional")
        # Person pseudonyms (17 characters) are looked for in every text column; professionals' numbers (8 digits)
        # in identifier columns, since an establishment number may equal one by chance.
        survivors = surviving_identifiers(con, persons) + surviving_identifiers(
            con, professionals, professional_columns
        )
        tables = con.execute("select count(*) from information_schema.tables where table_schema = 'snds'").fetchone()
    assert len(persons) > 500 and len(professionals) > 100 and tables == (_base_tables(distinct_build, catalog),)
    assert not survivors, survivors
