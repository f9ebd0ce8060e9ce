"""The run's `dbt build` of every distinct definition of the project, on a worker's scratch DuckDB file.

Landing is filled the way `make demo` fills it (the dictionary's code lists, then a synthetic delivery of 300
persons, 2019-2020, with stays that the PMSI cleaning rules must remove), then dbt builds every distinct definition
(distinct_models.py: the session's parse cut to `distinct_nodes`) but the linked projects' folders: they are built,
each node once in the suite, by the shared projects warehouse with their cohorts imported (project_warehouse.py).
The staging tables that the event layer reads, that no delivery holds and whose definition another model of their
class stands for are created empty by the hook of a first promotion (`created_empty`), as `snds promote` does.
test_duckdb_build.py checks the build and the base; test_events.py checks the event layer on a copy taken right
after the build (`pristine`), since test_duckdb_build changes the base. Both modules run on one worker
(conftest.py: SHARED_WORKER), which makes the build once.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dbt.contracts.graph.manifest import Manifest

from distinct_models import created_empty, distinct_nodes
from snds import config
from snds.catalog.committed import load_tables
from snds.catalog.conventions import load_conventions
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import BUILD_OPTIONS, DbtRun, run_dbt
from snds.dbt_slice import nodes_slice, tagged
from snds.ingest import IngestReport, ingest_delivery
from snds.ingest.verify import write_manifest
from snds.keys import store
from snds.landing import init_landing
from snds.projects.build import definitions_in
from snds.projects.definition import load_definition
from snds.promotion import EMPTY_TAG
from snds.reference_delivery import build_reference_delivery
from snds.synth import SynthSpec, synthesize

YEARS = (2019, 2020)
SYNTH = SynthSpec(300, YEARS, seed=5)
CODES, FLOWS = "REFERENCE", "D2019"  # the deliveries, in the order they are received
PLACEHOLDER = load_conventions().pseudonyms.person_placeholders[0]  # the PMSI's unknown patient, as planted


@dataclass(frozen=True)
class DistinctBuild:
    run: DbtRun
    created: frozenset[str]  # the staging tables created empty (`created_empty`), not dbt nodes of the build
    deliveries: Path  # CODES and FLOWS as delivered (read them, never change them)
    pristine: Path  # a copy of the database as the build left it


def build(database: Path, target: Path, root: Path, manifest: Manifest) -> DistinctBuild:
    """The build on `database` (empty), dbt's target in `target`, the deliveries and the copy in `root`."""
    tables = load_tables()
    init_landing(database, tables)
    deliveries = root / "deliveries"
    codes = build_reference_delivery(config.reference_dir(), deliveries / CODES, tables)
    reports = [ingest_delivery(codes.directory, database, tables)]
    synthesize(deliveries / FLOWS, SYNTH, tables, config.reference_dir(), 0.0)
    plant_pmsi_defects(deliveries / FLOWS)
    reports.append(ingest_delivery(deliveries / FLOWS, database, tables))
    landed = {name for report in reports for name in _landed(report)}
    for delivery in (CODES, FLOWS):
        report = validate_delivery(database, delivery, project_rules(tables), target, manifest=manifest)
        assert report["status"] == "validated", report
    with duckdb.connect(str(database)) as con:
        store.init_platform(con, secrets.token_bytes(32))
        for definition in definitions_in():  # with the project keys present, `dbt build` builds the projects too
            store.init_project(con, definition.stem)
    # Its log beside its target: the project's logs/ keeps the last 60 MB of dbt.log, where test_pseudonymisation,
    # perhaps running beside this build on the other worker, looks for key material.
    logs = ("--log-path", str(target / "logs"))
    nodes = distinct_nodes(manifest, keep=landed)
    created = created_empty(manifest, nodes, held={name for report in reports for name in report.tables()})
    distinct = tagged(nodes_slice(manifest, nodes), created, EMPTY_TAG)
    excluded = (*linked_folders(), f"tag:{EMPTY_TAG}")
    run = run_dbt("build", *BUILD_OPTIONS, *logs, "--exclude", *excluded, target_path=target, manifest=distinct)
    with duckdb.connect(str(database)) as con:
        con.execute("checkpoint")  # everything in the file itself, none in a write-ahead log: a copy is whole
    pristine = root / "pristine.duckdb"
    shutil.copyfile(database, pristine)
    return DistinctBuild(run, frozenset(uid.split(".")[-1] for uid in created), deliveries, pristine)


def plant_pmsi_defects(delivery: Path) -> None:
    """Stays that the cleaning rules must remove, written into the delivery's files (then the manifest again)."""
    with duckdb.connect() as con:
        for year in YEARS:
            yy = f"{year % 100:02d}"
            for table, change in (
                # about one stay in ten fails a quality code, one in ten has an error GHM
                (f"T_MCO{yy}C", "* replace (case when RSA_NUM like '%3' then '1' else NIR_RET end as NIR_RET)"),
                (f"T_MCO{yy}B", "* replace (case when RSA_NUM like '%7' then '90Z00Z' else GRG_GHM end as GRG_GHM)"),
            ):
                path = str(delivery / f"{table}.csv")
                con.execute(f"create table t as select {change} from read_csv('{path}', delim=';', all_varchar=true)")
                if table == f"T_MCO{yy}C":  # an unknown patient, as the PMSI writes it
                    con.execute(f"update t set NIR_ANO_17 = '{PLACEHOLDER}' where RSA_NUM like '%1'")
                con.execute(f"copy t to '{path}' (format csv, delimiter ';', header)")
                con.execute("drop table t")
    (delivery / "MANIFEST.csv").unlink()
    files = sorted(p.name for p in delivery.glob("*.csv"))
    write_manifest(delivery, ((name, name.removesuffix(".csv")) for name in files))


def linked_folders() -> list[str]:
    """dbt selectors of the linked projects' folders."""
    linked = [load_definition(path) for path in definitions_in()]
    return [f"path:models/projects/{d.id.lower()}" for d in linked if d.linkage is not None]


def _landed(report: IngestReport) -> set[str]:
    """The tables a delivery brought rows to: a set, so that a table both deliveries bring stays kept whichever
    brought its rows (a merge of the two count reports would keep the second delivery's count only)."""
    return {table for table, counts in report.tables().items() if counts["rows"]}
