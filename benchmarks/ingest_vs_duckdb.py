"""Benchmark: `snds ingest` against a bare DuckDB load of the same files with the same types.

Run from the project root:  .venv/bin/python benchmarks/ingest_vs_duckdb.py [--patients N] [--delivery DIR]

Both loads run in this same invocation, each in a fresh child process with a fresh database, so that the
ratio compares them on the same machine at the same moment. The baseline is what DuckDB alone does:
`create table ... as select * from read_csv(...)` per file, with the catalog's types and the delivery's
date formats, without digests, row counting, rejects, quarantine or provenance. A second baseline runs with
the one engine setting `snds ingest` changes (`preserve_insertion_order = false`: landing rows have no order);
its ratio is what the verification and the exact-value checks cost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

GIB = 1 << 30


def _child_baseline(delivery: Path, database: Path, unordered: bool = False) -> dict:
    import duckdb

    from snds.catalog.committed import load_tables
    from snds.formats import DATE_FORMAT, TIMESTAMP_FORMAT
    from snds.ingest.manifest import read_manifest

    tables = load_tables()
    manifest = read_manifest(delivery)
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        if unordered:
            con.execute("set preserve_insertion_order = false")
        for n, entry in enumerate(manifest.entries):
            path = delivery / entry.file
            header = path.open(encoding="utf-8").readline().rstrip("\n").split(";")
            types = {c.name.upper(): c.sql_type.duckdb for c in tables[entry.table].columns}
            columns = ", ".join(f"'{h}': '{types[h.upper()]}'" for h in header)
            con.execute(
                f"create table t{n} as select * from read_csv('{path}', delim=';', header=true, auto_detect=false, "
                f"columns={{{columns}}}, dateformat='{DATE_FORMAT}', timestampformat='{TIMESTAMP_FORMAT}')"
            )
    return {"seconds": time.perf_counter() - started}


def _child_ingest(delivery: Path, database: Path) -> dict:
    from snds.catalog.committed import load_tables
    from snds.ingest import ingest_delivery

    tables = load_tables()
    started = time.perf_counter()
    report = ingest_delivery(delivery, database, tables)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sum(t["rows"] for t in report.tables().values())}


KINDS: dict[str, Callable[[Path, Path], dict]] = {
    "baseline": _child_baseline,
    "baseline-unordered": lambda delivery, database: _child_baseline(delivery, database, unordered=True),
    "ingest": _child_ingest,
}


def _run_child(kind: str, delivery: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="snds-bench-") as scratch:
        output = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                kind,
                "--delivery",
                str(delivery),
                "--database",
                f"{scratch}/db.duckdb",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delivery", type=Path, default=Path("data/bench/BENCH_1GB"))
    parser.add_argument("--patients", type=int, default=330_000, help="synthetic patients when generating")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each load; the best time counts")
    parser.add_argument("--child", choices=list(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import resource

        result = KINDS[args.child](args.delivery, args.database)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    if not (args.delivery / "MANIFEST.csv").exists():
        print(f"generating {args.delivery} ({args.patients} patients) ...", flush=True)
        subprocess.run(
            [
                Path(sys.executable).parent / "snds",
                "synth",
                str(args.delivery),
                "--patients",
                str(args.patients),
                "--years",
                "2019-2020",
                "--seed",
                "11",
            ],
            check=True,
        )
    size = sum(p.stat().st_size for p in args.delivery.iterdir() if p.name != "MANIFEST.csv")
    print(f"delivery {args.delivery}: {size / GIB:.2f} GiB")
    if size < GIB:
        print("warning: the delivery is under 1 GiB; pass more --patients", file=sys.stderr)

    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for kind in KINDS:
            run = _run_child(kind, args.delivery)
            if kind not in best or run["seconds"] < best[kind]["seconds"]:
                best[kind] = run
    for kind, run in best.items():
        print(
            f"{kind:18} {run['seconds']:7.1f} s  {size / run['seconds'] / (1 << 20):7.1f} MiB/s  "
            f"peak memory {run['peak_rss_mib']:7.0f} MiB"
        )
    ratio = best["baseline"]["seconds"] / best["ingest"]["seconds"]
    print(f"throughput ratio (snds ingest / bare DuckDB): {ratio:.2f}")
    same = best["baseline-unordered"]["seconds"] / best["ingest"]["seconds"]
    print(f"throughput ratio (snds ingest / bare DuckDB with the same setting): {same:.2f}")


if __name__ == "__main__":
    main()
