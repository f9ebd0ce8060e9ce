"""Benchmark: staging with platform pseudonyms against the same staging without them, on one database, for a full
build and for the next monthly delivery applied incrementally.

Run from the project root:  .venv/bin/python benchmarks/pseudonymisation_vs_plain.py [--patients N]

A synthetic delivery is split as the CNAM sends it (`snds.synth.split`). The referentials, the first flow months
(--months) and the PMSI 2019 year are ingested and validated (promoted) and a random platform key is loaded; then,
side by side in this one run, each staging table that holds identifiers is built twice from the same landing rows:
- plain: `select cast(col as type) ...` of the rows staging would apply (what staging was before pseudonymisation);
- ours: the SQL that dbt compiles for the project: the correspondences first (each new identifier hashed once with
  HMAC-SHA-256), then the staging tables joining them.
1. Full build: every promoted delivery (`create table ... as`).
2. Incremental: dbt builds the measured tables (as `snds promote` builds them), the next flow month is validated,
   and the SQL dbt compiles for an incremental build applies only it, as dbt's incremental models do: the
   correspondences hash the identifiers they do not hold yet and merge them (delete+insert), the staging tables
   insert the month's rows; plain inserts the month's rows cast.
   Each run is rolled back.
Both run in DuckDB directly, so the ratios measure the SQL, not dbt's own per-model overhead; the builds alternate
(--repeat) and the best time of each is kept.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

import duckdb
from dbt.contracts.graph.manifest import Manifest

from snds import config
from snds.catalog.committed import CatalogTable, load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import BUILD_OPTIONS, parse_project, run_dbt
from snds.ingest import ingest_delivery
from snds.keys import store
from snds.landing import init_landing
from snds.synth import SynthSpec, synthesize
from snds.synth.split import SplitDelivery, split_delivery

STAGING = ("IR_BEN_R", "ER_PRS_F", "ER_PHA_F", "T_MCO19C", "T_SSR19C", "T_HAD19C", "T_RIP19C", "KI_CCI_R")
CORRESPONDENCES = ("person_pseudonyms", "professional_pseudonyms")
GATE = "+pending_deliveries pseudonymisation_keys"  # the promotion gate's views, the catalog seed, the keys view


def _compiled(target: Path, name: str) -> str:
    (path,) = (target / "compiled").rglob(f"{name}.sql")
    return path.read_text(encoding="utf-8")


def _pending(table: str) -> str:
    return f"(select DELIVERY_ID from landing.pending_deliveries where MODEL_NAME = '{table}')"


def _pending_rows(con: duckdb.DuckDBPyConnection) -> int:
    return sum(
        con.execute(f"select count(*) from landing.{t} where DELIVERY_ID in {_pending(t)}").fetchone()[0]
        for t in STAGING
    )


def _plain_select(table: CatalogTable) -> str:
    casts = ", ".join(f"cast({c.name} as {c.data_type}) as {c.name}" for c in table.columns)
    return f"select {casts} from landing.{table.name} where DELIVERY_ID in {_pending(table.name)}"


def _timed(con: duckdb.DuckDBPyConnection, statements: list[str], rollback: bool) -> float:
    if rollback:
        con.execute("begin transaction")
    started = time.perf_counter()
    for statement in statements:
        con.execute(statement)
    seconds = time.perf_counter() - started
    if rollback:
        con.execute("rollback")
    return seconds


def _best(con: duckdb.DuckDBPyConnection, plain: list[str], ours: list[str], repeat: int, rollback: bool) -> tuple:
    timings = [(_timed(con, plain, rollback), _timed(con, ours, rollback)) for _ in range(repeat)]
    return min(t[0] for t in timings), min(t[1] for t in timings)


def _receive(
    database: Path,
    target: Path,
    tables: dict[str, CatalogTable],
    deliveries: list[SplitDelivery],
    manifest: Manifest,
) -> None:
    rules = project_rules(tables)
    for delivery in deliveries:
        ingest_delivery(delivery.directory, database, tables)
        report = validate_delivery(database, delivery.directory.name, rules, target, manifest=manifest)
        if report["status"] != "validated":
            raise SystemExit(f"{delivery.directory.name} was not promoted: {report['status']}")


def _report(title: str, rows: int, persons: int, plain: float, ours: float) -> None:
    print(f"{title}: {rows:,} landing rows applied; {persons:,} distinct person identifiers in the base")
    print(f"  plain staging (casts only):            {plain:8.2f} s")
    print(f"  pseudonymised staging (hash + joins):  {ours:8.2f} s")
    print(f"  ratio pseudonymised / plain:           {ours / plain:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="Alternate the builds this many times; keep the best.")
    parser.add_argument("--months", type=int, default=11, help="Flow months in the base before the next one.")
    args = parser.parse_args()
    tables = load_tables()
    with tempfile.TemporaryDirectory(prefix="snds-bench-") as scratch:
        root = Path(scratch)
        database, target = root / "warehouse.duckdb", root / "target"
        print(f"synthetic delivery of {args.patients:,} patients, split by month ...", flush=True)
        synthesize(root / "S", SynthSpec(args.patients, (2019, 2020), seed=3), tables, config.reference_dir(), 0.0)
        deliveries = {
            d.directory.name.removeprefix("S_"): d for d in split_delivery(root / "S", root / "split", tables)
        }
        flow_months = sorted(name for name in deliveries if name.startswith("M"))
        months, next_month = flow_months[: args.months], flow_months[args.months]
        os.environ["SNDS_DUCKDB_PATH"] = str(database)
        quiet = ("--quiet", "--log-level", "none", "--no-write-json")
        manifest = parse_project(*quiet, target_path=target)  # once: every dbt step below reuses it
        init_landing(database, tables)
        with duckdb.connect(str(database)) as con:
            store.init_platform(con, secrets.token_bytes(32))
        _receive(database, target, tables, [deliveries[n] for n in ("REF", *months, "Y2019")], manifest)
        run_dbt("build", *quiet, *BUILD_OPTIONS, "--select", GATE, target_path=target, manifest=manifest)
        selected = " ".join((*CORRESPONDENCES, *STAGING))
        run_dbt("compile", *quiet, "--select", selected, target_path=target, manifest=manifest)
        with duckdb.connect(str(database)) as con:
            con.execute("create schema if not exists plain")
            con.execute("create schema if not exists snds")
            rows = _pending_rows(con)
            plain = [f"create or replace table plain.{t} as {_plain_select(tables[t])}" for t in STAGING]
            ours = [f"create or replace table keys.{n} as {_compiled(target, n)}" for n in CORRESPONDENCES]
            ours += [f"create or replace table snds.{t} as {_compiled(target, t)}" for t in STAGING]
            full = _best(con, plain, ours, args.repeat, rollback=False)
            persons = con.execute("select count(*) from keys.person_pseudonyms").fetchone()[0]
            for name in (*CORRESPONDENCES, *STAGING):  # dbt builds them next, as incremental models
                con.execute(f"drop table if exists {'keys' if name in CORRESPONDENCES else 'snds'}.{name}")
        _report("full build", rows, persons, *full)
        # The base as `snds promote` leaves it, for the measured tables: dbt builds them (and what they read).
        measured = ("--select", GATE, *CORRESPONDENCES, *STAGING)
        run_dbt("build", *quiet, *BUILD_OPTIONS, *measured, target_path=target, manifest=manifest)
        _receive(database, target, tables, [deliveries[next_month]], manifest)
        # compiled again, now that the tables exist: a correspondence's increment hashes only new identifiers
        run_dbt("compile", *quiet, "--select", selected, target_path=target, manifest=manifest)
        with duckdb.connect(str(database)) as con:
            rows = _pending_rows(con)
            persons = con.execute("select count(*) from keys.person_pseudonyms").fetchone()[0]
            plain = [f"insert into plain.{t} {_plain_select(tables[t])}" for t in STAGING]
            ours = []
            for name in CORRESPONDENCES:  # dbt's delete+insert on delivered_identifier
                ours += [
                    f"create or replace temp table new_{name} as {_compiled(target, name)}",
                    f"delete from keys.{name} where delivered_identifier in "
                    f"(select delivered_identifier from new_{name})",
                    f"insert into keys.{name} select * from new_{name}",
                ]
            ours += [f"insert into snds.{t} {_compiled(target, t)}" for t in STAGING]
            incremental = _best(con, plain, ours, args.repeat, rollback=True)
        _report("next flow month, incremental", rows, persons, *incremental)


if __name__ == "__main__":
    main()
