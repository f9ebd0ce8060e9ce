"""Benchmark: `snds project export P_T2D` against a bare DuckDB `COPY ... TO ... (FORMAT parquet)` of the same tables.

Run from the project root:  .venv/bin/python benchmarks/export_vs_duckdb.py [--repeat N] [--source DB]

Issue 12: the extracts of a project built on at least 1 GiB of synthetic data, exported with every check (the
definition, the key, the recipients and the build record before writing; then, on the written files, the
perimeter's columns, the scan of every value against the pseudonym correspondences, the page's small cells),
against DuckDB alone writing the same tables to Parquet, in the same invocation. Encryption (age, pyrage) is timed
apart. Aim: ratio (bare DuckDB / export without encryption) at least 0.8.

The warehouse is a copy of the one `benchmarks/project_vs_hand_sql.py` prepares from the 1.25 GiB BENCH_1GB (its
`--prepare-only` with the options the error message gives when it is missing; data/bench/p_t2d_bench.duckdb: landing,
keys, code lists, the delivery ingested and validated, the base built),
made once into data/bench/export_bench.duckdb, where P_T2D is built with the current definition (its own dbt target
data/bench/export_target, never target/) and rebuilt only when the definition changes. The recipient is an age key
made for the run (its identity in the work directory, deleted at the end with the packages).

Each measured run is a fresh child process, the two sides alternated --repeat times, the best of each counting:
- export: `export_project` as `snds project export` calls it, formats Parquet only (the bare side writes Parquet),
  into a new directory; its time from the call to the package in place (seconds of writing, checking and
  encrypting reported apart by the export itself), the interpreter's start-up and imports excluded on both sides;
- bare DuckDB: open the database, `COPY (select * from project_p_t2d."T") TO 'T.parquet' (FORMAT parquet)` for
  the cohort and each extract, nothing else.
Peak memory is each child's peak resident set (os.wait4), start-up included.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]
PROJECT = "P_T2D"
SCHEMA = "project_p_t2d"
KEY_FILE = "demo-recipient.pub"  # the file projects/P_T2D.yml names


# --- children: each runs in a fresh process and prints one JSON line last ----------------------------------------


def _child_export(database: Path, work: Path, out: Path) -> dict:
    from snds.export.package import export_project
    from snds.projects.definition import load_definition
    from snds.projects.schema import PROJECTS_DIR

    definition = load_definition(PROJECTS_DIR / f"{PROJECT}.yml")
    export = dataclasses.replace(definition.outputs.export, formats=("parquet",))
    definition = dataclasses.replace(definition, outputs=dataclasses.replace(definition.outputs, export=export))
    started = time.perf_counter()
    result = export_project(definition, database, out, recipients_dir=work / "recipients")
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "parts": result.seconds,
        "rows": sum(f.rows for f in result.files if f.format == "parquet"),
        "plain_bytes": sum(f.size for f in result.files),
        "encrypted_bytes": result.encrypted_bytes,
        "files": len(result.files),
    }


def _child_baseline(database: Path, out: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    rows = 0
    out.mkdir(parents=True)
    with duckdb.connect(str(database)) as con:
        opened = time.perf_counter() - started
        listed = con.execute(
            f"select item_name from {SCHEMA}.build where item_kind = 'output' "
            "and item_name not in ('attrition', 'profile') order by item_name"
        ).fetchall()
        for (table,) in listed:
            target = str(out / f"{table}.parquet").replace("'", "''")
            rows += con.execute(f"copy (select * from {SCHEMA}.\"{table}\") to '{target}' (format parquet)").fetchall()[
                0
            ][0]
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"seconds": seconds, "open_seconds": opened, "rows": rows, "plain_bytes": size}


def _child_build(database: Path, target: Path) -> dict:
    """P_T2D built on the copy with the current definition (its own dbt target)."""
    from snds.dbt import BUILD_OPTIONS, dbt_database, dbt_environment, run_dbt
    from snds.projects.build import generate_all, git_commit, selector, write_generated
    from snds.projects.definition import load_definition
    from snds.projects.schema import PROJECTS_DIR

    definition = load_definition(PROJECTS_DIR / f"{PROJECT}.yml")
    write_generated(ROOT, generate_all())
    started = time.perf_counter()
    with dbt_database(database), dbt_environment("SNDS_GIT_COMMIT", git_commit(ROOT)):
        run_dbt("build", *BUILD_OPTIONS, "--select", selector(definition), target_path=target)
    return {"seconds": time.perf_counter() - started}


# --- the parent ---------------------------------------------------------------------------------------------------


def _run_child(kind: str, args: argparse.Namespace, *extra: str) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--database", str(args.database), *extra]
    env = {**os.environ, "SNDS_DUCKDB_PATH": str(args.database), "DBT_LOG_PATH": str(args.target / "logs")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join((stdout + stderr).strip().splitlines()[-30:])
        raise SystemExit(f"child {kind} failed:\n{tail}")
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    result = json.loads(lines[-1])
    result.update(wall=wall, peak_mib=usage.ru_maxrss / 1024)
    return result


def _prepared(args: argparse.Namespace) -> str:
    """The copy of the prepared warehouse, with P_T2D built from the current definition."""
    import duckdb

    from snds.projects.definition import load_definition
    from snds.projects.schema import PROJECTS_DIR

    definition = load_definition(PROJECTS_DIR / f"{PROJECT}.yml")
    if not args.database.exists():
        if not args.source.exists():
            raise SystemExit(
                f"no {args.source}: run benchmarks/project_vs_hand_sql.py --prepare-only --delivery "
                "data/bench/BENCH_1GB --patients 330000 --seed 11 --database data/bench/p_t2d_bench.duckdb "
                "--target data/bench/target first"
            )
        print(f"copying {args.source} ({args.source.stat().st_size / GIB:.2f} GiB) to {args.database} ...", flush=True)
        shutil.copyfile(args.source, args.database)
    with duckdb.connect(str(args.database), read_only=True) as con:
        built = con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = 'build'", [SCHEMA]
        ).fetchall()[0][0]
        sha = con.execute(f"select max(definition_sha256) from {SCHEMA}.build").fetchall()[0][0] if built else None
        persons = con.execute("select count(*) from keys.person_pseudonyms").fetchall()[0][0]
    if sha == definition.sha256:
        return f"reused ({persons:,} persons in the correspondences)"
    print(f"building {PROJECT} on {args.database} (own dbt target {args.target}) ...", flush=True)
    run = _run_child("build", args, "--target", str(args.target))
    return f"{PROJECT} built in {run['seconds']:.0f} s ({persons:,} persons in the correspondences)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("data/bench/p_t2d_bench.duckdb"))
    parser.add_argument("--database", type=Path, default=Path("data/bench/export_bench.duckdb"))
    parser.add_argument("--target", type=Path, default=Path("data/bench/export_target"), help="dbt's target path")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, alternated; the best time counts")
    parser.add_argument("--child", choices=["export", "baseline", "build"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.source, args.database, args.target = (ROOT / p for p in (args.source, args.database, args.target))
    if args.child == "export":
        print(json.dumps(_child_export(args.database, args.work, args.out)))
        return
    if args.child == "baseline":
        print(json.dumps(_child_baseline(args.database, args.out)))
        return
    if args.child == "build":
        print(json.dumps(_child_build(args.database, args.target)))
        return

    status = _prepared(args)
    print(f"warehouse {args.database} ({args.database.stat().st_size / GIB:.2f} GiB): {status}")
    from pyrage import x25519

    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    try:
        (work / "recipients").mkdir()
        identity = x25519.Identity.generate()  # kept in memory only: the packages are not decrypted here
        (work / "recipients" / KEY_FILE).write_text(f"{identity.to_public()}\n", encoding="ascii")
        runs: dict[str, list[dict]] = {"export": [], "baseline": []}
        for n in range(args.repeat):
            for side in ("export", "baseline"):
                out = work / f"{side}{n}"
                runs[side].append(_run_child(side, args, "--work", str(work), "--out", str(out)))
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def without_encryption(run: dict) -> float:
        return run["seconds"] - run["parts"]["encrypt"]

    best_export = min(runs["export"], key=without_encryption)
    best_base = min(runs["baseline"], key=lambda r: r["seconds"])
    print(
        f"rows exported: {best_base['rows']:,} (cohort and {PROJECT}'s extracts); Parquet "
        f"{best_export['plain_bytes'] / MIB:.1f} MiB (bare DuckDB's default settings: "
        f"{best_base['plain_bytes'] / MIB:.1f} MiB), encrypted package {best_export['encrypted_bytes'] / MIB:.1f} MiB"
    )
    print(f"\n{'side':28} {'seconds':>8} {'peak MiB':>9}   runs (s)")
    listed = " ".join(f"{without_encryption(r):.2f}" for r in runs["export"])
    print(
        f"{'export (checks, no age)':28} {without_encryption(best_export):8.2f} "
        f"{best_export['peak_mib']:9.0f}   {listed}"
    )
    parts = best_export["parts"]
    rest = without_encryption(best_export) - parts["write"] - parts["checks"]
    print(
        f"  of which: write {parts['write']:.2f} s, checks on the files {parts['checks']:.2f} s, "
        f"before writing (definition, key, recipients, build record, page) and the rest {rest:.2f} s"
    )
    print(f"  encryption apart: {parts['encrypt']:.2f} s")
    listed = " ".join(f"{r['seconds']:.2f}" for r in runs["baseline"])
    print(f"{'bare DuckDB COPY to parquet':28} {best_base['seconds']:8.2f} {best_base['peak_mib']:9.0f}   {listed}")
    copy = best_base["seconds"] - best_base["open_seconds"]
    print(
        f"  of which: opening the database {best_base['open_seconds']:.2f} s, the copies {copy:.2f} s; against "
        f"the export's write and file checks ({parts['write'] + parts['checks']:.2f} s): "
        f"{copy / (parts['write'] + parts['checks']):.2f}"
    )
    ratio = best_base["seconds"] / without_encryption(best_export)
    print(
        f"\nratio bare DuckDB / export without encryption: {ratio:.2f} (aim >= 0.8); "
        f"with encryption: {best_base['seconds'] / best_export['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
