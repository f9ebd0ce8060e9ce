"""A warehouse with the example projects built, made once per test run and copied for each module that uses it.

A synthetic delivery (1,500 persons, 2019-2020, seed 7, no faults, an external cohort of a fifth of them for the
linked projects) and the code list IR_CIP_V are ingested and validated, the platform key and the projects' keys
made, the cohort files imported into the linked projects, both deliveries promoted (`snds promote`: the base's
first build) and `dbt build` run on the projects.
The first worker that needs it builds it (`_shared.run_wide`); every module works on its own copy (DuckDB lets
one process write a file), so a module may rebuild, close or break its copy.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dbt.contracts.graph.manifest import Manifest

from code_lists import cip_code_list_delivery
from snds import config
from snds.catalog.committed import load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import BUILD_OPTIONS, dbt_database, run_dbt
from snds.ingest import ingest_delivery
from snds.keys import store
from snds.landing import init_landing
from snds.projects.build import selector
from snds.projects.definition import existing_definition_path, load_definition
from snds.promotion import promote
from snds.synth import LinkageSpec, SynthSpec, linkage_dir, synthesize
from snds.synth.linkage import import_for_projects

YEARS = (2019, 2020)
PROJECTS = ("P_T2D", "P_MI", "P_LINK_DIRECT", "P_LINK_CASCADE", "P_LINK_SPLINK")
SYNTH = SynthSpec(1500, YEARS, seed=7, linkage=LinkageSpec(cohort_share=0.2))
READY = "ready"


@dataclass(frozen=True)
class Warehouse:
    database: Path
    deliveries: Path  # the delivered files (shared by the copies: read them, never change them)
    target: Path  # this copy's dbt target path

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.database)) as con:
            return con.execute(sql).fetchall()

    def csv(self, table: str, delivery: str = "D2019") -> str:
        path = str(self.deliveries / delivery / f"{table}.csv").replace("'", "''")
        return f"read_csv('{path}', delim=';', header=true, all_varchar=true)"

    def copy(self, folder: Path) -> Warehouse:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.database, folder / self.database.name)
        return Warehouse(folder / self.database.name, self.deliveries, folder / "target")


def build(root: Path, manifest: Manifest) -> Warehouse:
    """The warehouse in `root` (made once: a `ready` file says it is complete)."""
    here = Warehouse(root / "warehouse.duckdb", root / "deliveries", root / "target")
    if (root / READY).exists():
        return here
    with dbt_database(here.database):
        tables = load_tables()
        init_landing(here.database, tables)
        codes = cip_code_list_delivery(here.deliveries / "CODES")
        synthesize(here.deliveries / "D2019", SYNTH, tables, config.reference_dir(), 0.0)
        for delivery in (codes, here.deliveries / "D2019"):
            ingest_delivery(delivery, here.database, tables)
            report = validate_delivery(
                here.database, delivery.name, project_rules(tables), here.target, manifest=manifest
            )
            assert report["status"] == "validated", report
        with duckdb.connect(str(here.database)) as con:
            store.init_platform(con, secrets.token_bytes(32))
            for project in PROJECTS:
                store.init_project(con, project)
        definitions = [load_definition(existing_definition_path(p)) for p in PROJECTS]
        import_for_projects(here.database, linkage_dir(here.deliveries / "D2019"), definitions)
        promote(here.database, [codes.name, "D2019"], here.target, manifest)
        selection = [selector(definition) for definition in definitions]
        run_dbt("build", *BUILD_OPTIONS, "--select", *selection, target_path=here.target, manifest=manifest)
    with duckdb.connect(str(here.database)) as con:
        con.execute("checkpoint")  # everything in the file itself, none in a write-ahead log: a copy is whole
    (root / READY).touch()
    return here
