"""Benchmark: `snds validate` against `snds ingest` of the same delivery (at least 1 GiB), side by side.

Run from the project root:  .venv/bin/python benchmarks/validation_vs_ingest.py [--patients N] [--delivery DIR]

One child process, one fresh database: the code lists are loaded and validated first (not timed: validation
compares codes with them, and a running platform has dbt's partial parse warm, as this leaves it), then the
delivery is ingested (timed) and validated (timed: the dbt parse and compile of every table's checks, the
queries, the thresholds, the examples and the report). Validation must never be the bottleneck of the
incoming flow: the ratio validation / ingestion must stay at or under 1. A bare DuckDB baseline is printed too:
the same compiled queries run by DuckDB alone (what dbt's compile, the thresholds and the report add).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbt.contracts.graph.manifest import Manifest

    from snds.conformity.checks import Rules

GIB = 1 << 30


def _compiled_queries(
    database: Path, delivery_id: str, rules: Rules, target: Path, manifest: Manifest
) -> dict[str, str]:
    import duckdb

    from snds.conformity.checks import month_column
    from snds.conformity.validate import compile_queries, conformity_compiler, delivered_tables, plan

    with duckdb.connect(str(database)) as con:
        names = delivered_tables(con, delivery_id)
        checks, _ = plan(con, rules, delivery_id, names)
    months = {name: month_column(rules.tables[name], rules) for name in names}
    return compile_queries(conformity_compiler(target, database, manifest=manifest), delivery_id, checks, months)


def _child(delivery: Path, scratch: Path) -> dict:
    import duckdb

    from snds import config
    from snds.catalog.committed import load_tables
    from snds.conformity.checks import project_rules
    from snds.conformity.validate import validate_delivery
    from snds.dbt import dbt_database, parse_project
    from snds.ingest import ingest_delivery
    from snds.landing import init_landing
    from snds.reference_delivery import build_reference_delivery

    tables = load_tables()
    database = scratch / "warehouse.duckdb"  # the name of the parse kept for the checkout (dbt's database name)
    with dbt_database(database):
        init_landing(database, tables)
        codes = build_reference_delivery(config.reference_dir(), scratch / "REFERENCE", tables)
        ingest_delivery(codes.directory, database, tables)
        rules = project_rules(tables)
        # dbt's parse, once for the untimed steps; kept for the checkout, the timed validation loads it again
        manifest = parse_project("--quiet", target_path=scratch / "target")
        # code lists become usable
        validate_delivery(database, codes.directory.name, rules, scratch / "target", manifest=manifest)
        started = time.perf_counter()
        ingested = ingest_delivery(delivery, database, tables)
        ingest_seconds = time.perf_counter() - started
        started = time.perf_counter()
        report = validate_delivery(database, delivery.name, rules, scratch / "target")
        validate_seconds = time.perf_counter() - started
        # Baseline: the same compiled queries, run by DuckDB alone (no dbt, no thresholds, no report).
        queries = _compiled_queries(database, delivery.name, rules, scratch / "target", manifest)
        started = time.perf_counter()
        with duckdb.connect(str(database)) as con:
            for sql in queries.values():
                con.execute(sql).fetchall()
        scan_seconds = time.perf_counter() - started
    return {
        "ingest_seconds": ingest_seconds,
        "validate_seconds": validate_seconds,
        "scan_seconds": scan_seconds,
        "rows": sum(t["rows"] for t in ingested.tables().values()),
        "tables": len(report["tables"]),
        "checks": report["checks"],
        "check_kinds": report["check_kinds"],
        "status": report["status"],
        "errors": report["errors"],
        "warnings": report["warnings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delivery", type=Path, default=Path("data/bench/BENCH_1GB"))
    parser.add_argument("--patients", type=int, default=330_000, help="synthetic patients when generating")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(_child(args.delivery.resolve(), args.scratch)))
        return

    if not (args.delivery / "MANIFEST.csv").exists():
        print(f"generating {args.delivery} ({args.patients} patients) ...", flush=True)
        command = [Path(sys.executable).parent / "snds", "synth", str(args.delivery), "--patients", str(args.patients)]
        subprocess.run([*command, "--years", "2019-2020", "--seed", "11"], check=True)
    size = sum(p.stat().st_size for p in args.delivery.iterdir() if p.name != "MANIFEST.csv")
    print(f"delivery {args.delivery}: {size / GIB:.2f} GiB")
    if size < GIB:
        print("warning: the delivery is under 1 GiB; pass more --patients", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="snds-bench-") as scratch:
        child = [sys.executable, __file__, "--child", "--delivery", str(args.delivery), "--scratch", scratch]
        run = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    print(
        f"{run['rows']:,} rows in {run['tables']} tables; {run['checks']:,} checks of {run['check_kinds']} kinds; "
        f"status {run['status']} ({run['errors']} errors, {run['warnings']} warnings)"
    )
    for label, key in (("ingest", "ingest_seconds"), ("validate", "validate_seconds"), ("bare SQL", "scan_seconds")):
        print(f"{label:9} {run[key]:7.1f} s  {size / run[key] / (1 << 20):8.1f} MiB/s")
    print(f"time ratio validation / ingestion: {run['validate_seconds'] / run['ingest_seconds']:.2f} (must be <= 1)")
    print(f"time ratio validation / its SQL run by bare DuckDB: {run['validate_seconds'] / run['scan_seconds']:.1f}")


if __name__ == "__main__":
    main()
