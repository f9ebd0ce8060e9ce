"""Benchmark: staging with platform pseudonyms against the same staging without them, on one database.

Run from the project root:  .venv/bin/python benchmarks/pseudonymisation_vs_plain.py [--patients N]

A synthetic delivery is ingested into a fresh DuckDB file, validated (staging reads promoted deliveries only) and a
random platform key is loaded. Then, side by side in this one run, each staging table that holds identifiers is
built twice from the same landing rows:
- plain: `create table ... as select cast(col as type) ...` (what staging was before pseudonymisation);
- ours: the SQL that dbt compiles for the project (the correspondences first, hashing each distinct identifier
  once with HMAC-SHA-256, then the staging tables joining them).
Both run in DuckDB directly, so the ratio measures the SQL, not dbt's own per-model overhead; the two builds
alternate (--repeat) and the best time of each is kept.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

import duckdb

from snds import config
from snds.catalog.committed import load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import run_dbt
from snds.ingest import ingest_delivery
from snds.keys import store
from snds.landing import init_landing
from snds.synth import SynthSpec, synthesize

STAGING = ("IR_BEN_R", "ER_PRS_F", "T_MCO19C", "T_MCO20C", "T_SSR19C", "T_HAD19C", "T_RIP19C", "KI_CCI_R")
CORRESPONDENCES = ("pseudonymisation_keys", "person_pseudonyms", "professional_pseudonyms")
PROMOTED = "promoted_deliveries"  # the deliveries staging reads


def _compiled(target: Path, name: str) -> str:
    (path,) = (target / "compiled").rglob(f"{name}.sql")
    return path.read_text(encoding="utf-8")


def _timed(con: duckdb.DuckDBPyConnection, statements: list[str]) -> float:
    started = time.perf_counter()
    for statement in statements:
        con.execute(statement)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=2, help="Alternate the two builds this many times; keep the best."
    )
    args = parser.parse_args()
    tables = load_tables()
    with tempfile.TemporaryDirectory(prefix="snds-bench-") as scratch:
        root = Path(scratch)
        database = root / "warehouse.duckdb"
        print(f"synthetic delivery of {args.patients:,} patients ...", flush=True)
        synthesize(root / "D", SynthSpec(args.patients, (2019, 2020), seed=3), tables, config.reference_dir(), 0.0)
        init_landing(database, tables)
        ingest_delivery(root / "D", database, tables)
        target = root / "target"
        # staging reads only promoted deliveries: the delivery is validated (promoted) as on the platform
        report = validate_delivery(database, "D", project_rules(tables), target / "conformity")
        if report["status"] != "validated":
            raise SystemExit(f"the synthetic delivery was not promoted: {report['status']}")
        with duckdb.connect(str(database)) as con:
            store.init_platform(con, secrets.token_bytes(32))
        os.environ["SNDS_DUCKDB_PATH"] = str(database)
        run_dbt(
            "compile",
            "--quiet",
            "--log-level",
            "none",
            "--select",
            " ".join((PROMOTED, *CORRESPONDENCES, *STAGING)),
            target_path=target,
        )
        with duckdb.connect(str(database)) as con:
            rows = sum(con.execute(f"select count(*) from landing.{t}").fetchone()[0] for t in STAGING)
            con.execute(f"create or replace view landing.{PROMOTED} as {_compiled(target, PROMOTED)}")
            con.execute("create schema if not exists keys")
            con.execute(f"create or replace view keys.pseudonymisation_keys as {_compiled(target, CORRESPONDENCES[0])}")
            con.execute("create schema if not exists plain")
            con.execute("create schema if not exists snds")
            plain = [
                f"create or replace table plain.{t} as select "
                + ", ".join(f"cast({c.name} as {c.data_type}) as {c.name}" for c in tables[t].columns)
                + f" from landing.{t}"
                for t in STAGING
            ]
            ours = [
                f"create or replace table keys.{name} as {_compiled(target, name)}" for name in CORRESPONDENCES[1:]
            ] + [f"create or replace table snds.{t} as {_compiled(target, t)}" for t in STAGING]
            timings = [(_timed(con, plain), _timed(con, ours)) for _ in range(args.repeat)]
            plain_seconds, ours_seconds = min(t[0] for t in timings), min(t[1] for t in timings)
            persons = con.execute("select count(*) from keys.person_pseudonyms").fetchone()[0]
        print(f"{rows:,} landing rows in {len(STAGING)} staging tables; {persons:,} distinct person identifiers")
        print(f"plain staging (casts only):            {plain_seconds:8.2f} s")
        print(f"pseudonymised staging (hash + joins):  {ours_seconds:8.2f} s")
        print(f"ratio pseudonymised / plain:           {ours_seconds / plain_seconds:8.2f}")


if __name__ == "__main__":
    main()
