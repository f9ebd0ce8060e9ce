"""Benchmark: `snds project build P_T2D` against the same cohort and extracts written by hand in SQL, side by side.

Run from the project root:  .venv/bin/python benchmarks/project_vs_hand_sql.py [--repeat N] [--delivery DIR]

Issue 11: on a synthetic delivery of at least 1 GiB, the build of the example project P_T2D (adults with type 2
diabetes, 2019-2020) is timed against a hand-written SQL file of the same cohort, attrition and extracts
(`benchmarks/sql/p_t2d_hand.sql`) run by bare DuckDB, in the same invocation: the ratio must be at most 1.5 (aim:
1.2). The time of the event layer against the staging build it reads is printed too.

The default delivery, data/bench/BENCH_5GB (generated when absent: `snds synth --patients 1320000 --seed 12`, 5.0 GiB,
45 s), is large enough for the SQL to outweigh what any build pays whatever the data: about 1.9 s of Python and
dbt start-up, checks and page. On the 1.25 GiB delivery of the ingestion benchmark (`--delivery data/bench/BENCH_1GB
--database data/bench/p_t2d_bench.duckdb --target data/bench/target`) that constant is most of the build.

The warehouse (default data/bench/p_t2d_bench5.duckdb, dbt target data/bench/target5) is prepared once and reused
while the delivery, the seeds and the landing code are unchanged (`--rebuild` prepares it again; `--prepared` takes
one prepared elsewhere as it is, as the test suite's smoke run does): landing, a random
platform key and P_T2D's key (nothing written outside the database), the dictionary's code lists as a delivery,
the delivery ingested and validated, then `dbt build` of the base without the projects. Every `snds` and dbt call
points at it through SNDS_DUCKDB_PATH and writes dbt's files into its own target path, never into target/.

Each measured step runs in a fresh child process; its wall time is the whole process (start-up included, as a user
runs it) and its peak memory the child's peak resident set (os.wait4), its own children included.

1. Event layer against staging: `dbt run --select path:models/staging` (every staging model: the pseudonymised
   copy of the base the layer reads), then `dbt run --select path:models/intermediate path:models/marts` (the
   event layer: int_* and the marts persons, events, cleaning_rules), with dbt's partial parse warm.
2. The two sides, each starting from the same warehouse (the outputs of both dropped first), alternated --repeat
   times; the best time of each side counts:
   - project build: `snds project build P_T2D` (definition and key checks, regeneration, `dbt build` of
     models/projects/p_t2d: the cohort models over the marts `events` and `persons` already built, the NUM_ENQ
     pseudonyms, the extracts, the profile, the build record and the data tests of the project's models; then the
     project page, written beside the target path). A first build, timed apart, parses the whole dbt project and
     cuts the project's slice of it (`snds.dbt_slice`), as the first build after a change of the project, a macro or
     the dbt set-up does; the timed builds reuse it. The build writes no JSON artifacts (`--no-write-json`): its
     node timings are taken from dbt's result in memory and printed by the child.
   - hand SQL: the SQL file run statement by statement by the `duckdb` module alone. It reads the staging tables
     `snds.*` directly, as an SNDS programmer does (it applies the event layer's cleaning rules to the rows it
     needs, not to the whole base), the project key from `keys.key_material` as `project_pseudonyms` does, and
     writes the same outputs into the schema hand_p_t2d. No tests, no build record, no checks.
   So the project side reads a layer built beforehand for every project (its time is step 1) while the hand side
   pays its own share of that work.
3. Both sides must give the same cohort (same NUM_ENQ, index dates and ends of follow-up), the same attrition and
   the same rows and columns in each extract: the benchmark exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]
PROJECT = "P_T2D"
PROJECT_SCHEMA = "project_p_t2d"
HAND_SCHEMA = "hand_p_t2d"
HAND_SQL = ROOT / "benchmarks" / "sql" / "p_t2d_hand.sql"
OUTPUTS = ("cohort", "attrition", "ER_PHA_F", "ER_PHA_F_2019", "ER_PHA_F_2020", "T_MCO19B", "T_MCO20B", "IR_BEN_R")
STAGING = ("path:models/staging",)
EVENT_LAYER = ("path:models/intermediate", "path:models/marts")
PREPARED_INPUTS = ("seeds", "scripts/snds/landing.py", "scripts/snds/ingest", "scripts/snds/catalog/conventions.yml")


# ---------------------------------------------------------------------------------------------------------------
# Children: each runs in a fresh process and prints one JSON line last.


def _child_prepare(database: Path, delivery: Path, target: Path) -> dict:
    import secrets

    import duckdb

    from snds import config
    from snds.catalog.committed import load_tables
    from snds.conformity.checks import project_rules
    from snds.conformity.validate import validate_delivery
    from snds.dbt import dbt_database, run_dbt
    from snds.ingest import ingest_delivery
    from snds.keys import store
    from snds.landing import init_landing
    from snds.reference_delivery import build_reference_delivery

    steps: dict[str, float] = {}

    def step(name: str, action):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        result = action()
        steps[name] = time.perf_counter() - started
        print(f"  {name}: {steps[name]:.1f} s", file=sys.stderr, flush=True)
        return result

    tables = load_tables()
    rules = project_rules(tables)

    def validated(delivery_id: str) -> None:
        report = validate_delivery(database, delivery_id, rules, target / "conformity")
        if report["status"] != "validated":
            raise SystemExit(f"delivery {delivery_id} is {report['status']}: it would not be promoted")

    def keys() -> None:
        with duckdb.connect(str(database)) as con:  # random keys, never written anywhere but the key store
            store.init_platform(con, secrets.token_bytes(32))
            store.init_project(con, PROJECT)

    codes = database.parent / "REFERENCE_SCHEMA_SNDS"
    with dbt_database(database):
        step("landing", lambda: init_landing(database, tables))
        step("keys", keys)
        if not (codes / "MANIFEST.csv").exists():
            shutil.rmtree(codes, ignore_errors=True)
            step("code lists", lambda: build_reference_delivery(config.reference_dir(), codes, tables))
        step("ingest code lists", lambda: ingest_delivery(codes, database, tables))
        step("validate code lists", lambda: validated(codes.name))
        step("ingest delivery", lambda: ingest_delivery(delivery, database, tables))
        step("validate delivery", lambda: validated(delivery.name))
        step("dbt build (base)", lambda: run_dbt("build", "--exclude", "path:models/projects", target_path=target))
    return {"steps": steps}


def _child_dbt(database: Path, target: Path, args: list[str]) -> dict:
    from snds.dbt import dbt_database, run_dbt

    with dbt_database(database):
        run = run_dbt(*args, target_path=target)
    results = getattr(run.result.result, "results", None) or []
    return {"nodes": len(results), "dbt_seconds": getattr(run.result.result, "elapsed_time", None)}


def _child_project(target: Path) -> None:
    """`snds project build P_T2D --report-dir <target>/../reports`, as the console script runs it, with dbt's files
    in `target` (the page it publishes goes beside them, not into data/reports/); then dbt's node timings, read
    from its result in memory (the build writes no run_results.json), as the last line of stdout."""
    import snds.dbt

    run_dbt = snds.dbt.run_dbt
    runs = []

    def redirected(*args: str, target_path: Path | None = None, manifest=None):  # noqa: ANN001, ANN202
        runs.append(run_dbt(*args, target_path=target_path or target, manifest=manifest))
        return runs[-1]

    snds.dbt.run_dbt = redirected
    from snds.cli import main

    try:
        main(["project", "build", PROJECT, "--report-dir", str(target.parent / "reports")], prog_name="snds")
    finally:
        if runs:
            print(json.dumps(_node_timings(runs[-1].result.result)), flush=True)


def _node_timings(result) -> dict:  # noqa: ANN001
    """dbt's elapsed time of an invocation and each node's kind, execution time and compile/execute seconds."""
    nodes = []
    for node in getattr(result, "results", None) or []:
        phases = {t.name: (t.completed_at - t.started_at).total_seconds() for t in node.timing if t.completed_at}
        nodes.append([node.node.unique_id.split(".")[0], node.execution_time or 0.0, phases])
    return {"elapsed_time": getattr(result, "elapsed_time", 0.0), "nodes": nodes}


def _child_hand(database: Path, sql_file: Path) -> dict:
    import duckdb

    statements = [s.strip() for s in _statements(sql_file.read_text(encoding="utf-8"))]
    steps = []
    started = time.perf_counter()
    with duckdb.connect(str(database)) as con:
        for statement in statements:
            begun = time.perf_counter()
            con.execute(statement)
            first_line = next(ln for ln in statement.splitlines() if ln.strip() and not ln.startswith("--"))
            steps.append((first_line[:90], time.perf_counter() - begun))
    return {"sql_seconds": time.perf_counter() - started, "steps": steps}


def _statements(text: str) -> list[str]:
    """The SQL file's statements: each ends with `;` at the end of a line (no `;` inside comments or strings)."""
    statements, current = [], []
    for line in text.splitlines():
        current.append(line)
        if line.rstrip().endswith(";") and not line.lstrip().startswith("--"):
            statement = "\n".join(current).strip().rstrip(";")
            if any(ln.strip() and not ln.strip().startswith("--") for ln in statement.splitlines()):
                statements.append(statement)
            current = []
    return statements


# ---------------------------------------------------------------------------------------------------------------
# The parent: runs the children, measures them, compares the outputs.


def _run_child(kind: str, args: argparse.Namespace, *extra: str, env: dict[str, str] | None = None) -> dict:
    """Run one child (`env`: more environment variables); its wall time and peak resident set (os.wait4: the child
    and its own children). The preparation's progress (its stderr) is shown as it goes."""
    command = [sys.executable, __file__, "--child", kind, "--database", str(args.database)]
    command += ["--target", str(args.target), "--delivery", str(args.delivery), *extra]
    env = {**os.environ, **(env or {}), "SNDS_DUCKDB_PATH": str(args.database)}
    env["DBT_LOG_PATH"], env["DBT_TARGET_PATH"] = str(args.target / "logs"), str(args.target)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        shown = kind == "prepare"
        started, wall = time.perf_counter(), time.time()
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=None if shown else err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds, ended = time.perf_counter() - started, time.time()
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if child.returncode != 0:
        tail = "\n".join((stdout + stderr).strip().splitlines()[-40:])
        raise SystemExit(f"child {kind} failed (exit {child.returncode}):\n{tail}")
    lines = [line for line in stdout.strip().splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    result.update(seconds=seconds, peak_mib=usage.ru_maxrss / 1024, output=stdout + stderr, wall=(wall, ended))
    return result


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for file in files if path.is_dir() else [path]:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _prepare(args: argparse.Namespace) -> tuple[str, float | None]:
    stamp_path = args.database.with_suffix(".json")
    stamp = {
        "delivery": str(args.delivery.resolve()),
        "manifest_sha256": hashlib.sha256((args.delivery / "MANIFEST.csv").read_bytes()).hexdigest(),
        "inputs_sha256": _digest([ROOT / p for p in PREPARED_INPUTS]),
    }
    if not args.rebuild and args.database.exists() and stamp_path.exists():
        previous = json.loads(stamp_path.read_text(encoding="utf-8"))
        if {k: previous.get(k) for k in stamp} == stamp:
            return f"reused (prepared in {previous['seconds']:.0f} s)", None
        print("the warehouse is out of date: preparing it again", flush=True)
    for path in (args.database, args.database.with_name(args.database.name + ".wal"), stamp_path):
        path.unlink(missing_ok=True)
    print(f"preparing {args.database} (landing, keys, code lists, ingest, validate, dbt build) ...", flush=True)
    run = _run_child("prepare", args)
    stamp.update(seconds=run["seconds"], steps=run["steps"], prepared=time.strftime("%Y-%m-%d %H:%M"))
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n", encoding="utf-8")
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in run["steps"].items())
    return f"prepared in {run['seconds']:.0f} s ({steps}; peak {run['peak_mib']:.0f} MiB)", run["seconds"]


def _dbt(args: argparse.Namespace, *dbt_args: str, env: dict[str, str] | None = None) -> dict:
    return _run_child("dbt", args, "--dbt-args", json.dumps(list(dbt_args)), env=env)


def _drop_outputs(database: Path, project: bool, hand: bool) -> None:
    import duckdb

    with duckdb.connect(str(database)) as con:
        if hand:
            con.execute(f"drop schema if exists {HAND_SCHEMA} cascade")
        if project:
            con.execute(f"drop schema if exists {PROJECT_SCHEMA} cascade")
            restricted = con.execute(
                "select table_name, table_type from information_schema.tables "
                "where table_schema = 'keys' and starts_with(lower(table_name), ?)",
                [f"{PROJECT.lower()}__"],
            ).fetchall()
            for name, kind in restricted:
                con.execute(f'drop {"view" if kind == "VIEW" else "table"} keys."{name}"')
        con.execute("checkpoint")


def _outputs(database: Path, schema: str) -> dict:
    """Rows and columns of each output, and the attrition's counts."""
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        found = {}
        for name in OUTPUTS:
            rows = con.execute(f'select count(*) from {schema}."{name}"').fetchone()[0]
            columns = [r[0].upper() for r in con.execute(f'describe {schema}."{name}"').fetchall()]
            found[name] = {"rows": rows, "columns": columns}
        attrition = con.execute(f"select step, persons, persons_excluded from {schema}.attrition order by step")
        found["attrition_steps"] = [tuple(int(v) for v in row) for row in attrition.fetchall()]
    return found


def _cohort_difference(database: Path) -> int:
    """Rows of one side's cohort (NUM_ENQ, index date, end of follow-up) missing from the other's."""
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        one = f"select NUM_ENQ, index_date, end_of_followup from {PROJECT_SCHEMA}.cohort"
        other = f"select NUM_ENQ, index_date, end_of_followup from {HAND_SCHEMA}.cohort"
        return con.execute(
            f"select count(*) from (({one} except {other}) union all ({other} except {one}))"
        ).fetchone()[0]


def _dbt_profile(timings: dict) -> str:
    """dbt's own time of the build's invocation (`_node_timings`), split into node kinds and compile/execute."""
    kinds: dict[str, list[float]] = {}
    phases = {"compile": 0.0, "execute": 0.0}
    for kind, seconds, timing in timings.get("nodes", []):
        kinds.setdefault(kind, []).append(seconds)
        for name in phases:
            phases[name] += timing.get(name, 0.0)
    nodes = ", ".join(f"{len(times)} {kind}s {sum(times):.1f} s" for kind, times in sorted(kinds.items()))
    return (
        f"dbt's nodes {timings.get('elapsed_time', 0):.1f} s ({nodes}; summed over the profile's threads: "
        f"compile {phases['compile']:.1f} s, execute {phases['execute']:.1f} s)"
    )


LOG_MARKS = (
    ("Running with dbt=", "before dbt (start-up, checks, generation)"),
    ("Found ", "dbt start (and the slice's graph)"),
    ("Finished running ", "hooks, models and tests"),
    ("Command `cli ", "artifacts written"),
)


def _build_phases(log: Path, started: float, ended: float) -> list[tuple[str, float]]:
    """Where the wall time of the last dbt invocation's process went, from dbt's log (times of day)."""
    import re

    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    first = max((i for i, line in enumerate(lines) if "Running with dbt=" in line), default=None)
    if first is None:
        return []
    seen: dict[str, float] = {}
    for line in lines[first:]:
        stamp = re.search(r"(\d\d):(\d\d):(\d\d\.\d+) \[\w+\s*\] \[MainThread\]: (.*)", line)
        if stamp:
            for mark, _ in LOG_MARKS:
                if stamp.group(4).startswith(mark) and mark not in seen:
                    seen[mark] = int(stamp.group(1)) * 3600 + int(stamp.group(2)) * 60 + float(stamp.group(3))
    if len(seen) < len(LOG_MARKS):
        return []
    day = time.localtime(started)
    midnight = started - (day.tm_hour * 3600 + day.tm_min * 60 + day.tm_sec + started % 1)
    previous, phases = started, []
    for mark, label in LOG_MARKS:
        at = midnight + seen[mark] + (86400 if midnight + seen[mark] < started - 1 else 0)
        phases.append((label, at - previous))
        previous = at
    phases.append(("after dbt (project page, interpreter exit)", ended - previous))
    return phases


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _check_delivery(args: argparse.Namespace) -> float:
    if not (args.delivery / "MANIFEST.csv").exists():
        print(f"generating {args.delivery} ({args.patients} patients) ...", flush=True)
        command = [Path(sys.executable).parent / "snds", "synth", str(args.delivery), "--patients", str(args.patients)]
        subprocess.run([*command, "--years", "2019-2020", "--seed", str(args.seed)], check=True)
    size = sum(p.stat().st_size for p in args.delivery.iterdir() if p.name != "MANIFEST.csv")
    if size < GIB:
        print("warning: the delivery is under 1 GiB; pass more --patients", file=sys.stderr)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delivery", type=Path, default=Path("data/bench/BENCH_5GB"))
    parser.add_argument("--patients", type=int, default=1_320_000, help="synthetic patients when generating")
    parser.add_argument("--seed", type=int, default=12, help="synthetic delivery's seed when generating")
    parser.add_argument("--database", type=Path, default=Path("data/bench/p_t2d_bench5.duckdb"))
    parser.add_argument("--target", type=Path, default=Path("data/bench/target5"), help="dbt's target path")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side, alternated; the best time counts")
    parser.add_argument("--rebuild", action="store_true", help="prepare the warehouse again even if up to date")
    parser.add_argument("--skip-layer", action="store_true", help="do not time the event layer against staging")
    parser.add_argument("--prepare-only", action="store_true", help="prepare the warehouse, measure nothing")
    parser.add_argument(
        "--prepared",
        action="store_true",
        help="--database is a warehouse prepared elsewhere (the base built, P_T2D's key): use it as it is",
    )
    parser.add_argument("--child", choices=["prepare", "dbt", "project", "hand"], help=argparse.SUPPRESS)
    parser.add_argument("--dbt-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.database, args.target, args.delivery = (ROOT / p for p in (args.database, args.target, args.delivery))

    if args.child == "project":
        _child_project(args.target)
        return
    if args.child:
        if args.child == "prepare":
            result = _child_prepare(args.database, args.delivery, args.target)
        elif args.child == "dbt":
            result = _child_dbt(args.database, args.target, json.loads(args.dbt_args))
        else:
            result = _child_hand(args.database, HAND_SQL)
        print(json.dumps(result))
        return

    if args.prepared:
        if not args.database.exists():
            raise SystemExit(f"--prepared: no warehouse at {_shown(args.database)}")
        status = "prepared elsewhere, used as it is"
    else:
        size = _check_delivery(args)
        print(f"delivery {_shown(args.delivery)}: {size / GIB:.2f} GiB")
        args.database.parent.mkdir(parents=True, exist_ok=True)
        status, _ = _prepare(args)
    print(f"warehouse {_shown(args.database)}: {status}", flush=True)
    if args.prepare_only:
        return

    if not args.skip_layer:
        _dbt(args, "parse")  # partial parse warm for the plain invocations, as on a running platform
        staging = _dbt(args, "run", "--select", *STAGING)
        layer = _dbt(args, "run", "--select", *EVENT_LAYER)
        print("event layer against the staging it reads (dbt run, fresh process each, partial parse warm):")
        for label, run, selection in (("staging", staging, STAGING), ("event layer", layer, EVENT_LAYER)):
            print(
                f"  {label:12} {' '.join(selection):48} {run['nodes']:5} models {run['seconds']:7.1f} s "
                f"(dbt {run['dbt_seconds']:.1f} s)  peak {run['peak_mib']:5.0f} MiB"
            )
        print(f"  time ratio event layer / staging: {layer['seconds'] / staging['seconds']:.2f}", flush=True)

    from snds.dbt_slice import SLICES_DIR

    _drop_outputs(args.database, project=True, hand=True)
    shutil.rmtree(args.target / SLICES_DIR, ignore_errors=True)
    first = _run_child("project", args)
    print(
        f"first snds project build: {first['seconds']:.1f} s (the whole project parsed, or its parse kept for this "
        "checkout, then the project's slice cut and kept: what the first build after a change of the project, a "
        "macro or the dbt set-up costs); the builds timed below reuse the slice",
        flush=True,
    )

    best: dict[str, dict] = {}
    runs: dict[str, list[float]] = {"project": [], "hand": []}
    for attempt in range(args.repeat):
        _drop_outputs(args.database, project=True, hand=True)
        project = _run_child("project", args)
        project["dbt_profile"] = _dbt_profile(project)
        project["nodes_seconds"] = project["elapsed_time"]
        project["phases"] = _build_phases(args.target / "logs" / "dbt.log", *project["wall"])
        _drop_outputs(args.database, project=False, hand=True)
        hand = _run_child("hand", args)
        for side, run in (("project", project), ("hand", hand)):
            runs[side].append(run["seconds"])
            if side not in best or run["seconds"] < best[side]["seconds"]:
                best[side] = run
        if not _report_equal(args.database, shown=attempt == args.repeat - 1):
            raise SystemExit(1)

    outputs = _outputs(args.database, PROJECT_SCHEMA)
    total = sum(outputs[name]["rows"] for name in OUTPUTS)
    print(f"\n{'side':14} {'seconds':>8} {'peak MiB':>9} {'rows':>10}   runs (s)")
    for side, label in (("project", "project build"), ("hand", "hand SQL")):
        run = best[side]
        listed = ", ".join(f"{s:.1f}" for s in runs[side])
        print(f"{label:14} {run['seconds']:8.1f} {run['peak_mib']:9.0f} {total:10,}   {listed}")
    written = [ln for ln in best["project"]["output"].splitlines() if "generated files written" in ln]
    print(f"  project build: {' '.join(written[0].split()) if written else ''}")
    print(f"  project build: {best['project']['dbt_profile']}")
    if best["project"]["phases"]:
        print(
            "  project build, where its wall time went: "
            + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in best["project"]["phases"])
        )
    print(f"  hand SQL: {best['hand']['sql_seconds']:.1f} s in DuckDB; slowest statements:")
    for text, seconds in sorted(best["hand"]["steps"], key=lambda s: -s[1])[:5]:
        print(f"    {seconds:6.1f} s  {text}")
    nodes, sql = best["project"]["nodes_seconds"], best["hand"]["sql_seconds"]
    print(
        f"  the SQL work alone: dbt's hooks, models and tests {nodes:.1f} s, DuckDB's {sql:.1f} s "
        f"(ratio {nodes / sql:.1f})"
    )
    ratio = best["project"]["seconds"] / best["hand"]["seconds"]
    verdict = "ok" if ratio <= 1.2 else ("within the limit, above the aim" if ratio <= 1.5 else "ABOVE THE LIMIT")
    print(f"time ratio project build / hand SQL: {ratio:.2f} (best of {args.repeat} each; aim <= 1.2, must be <= 1.5)")
    print(f"  {verdict}")


def _report_equal(database: Path, shown: bool) -> bool:
    """Whether both sides wrote the same outputs; the comparison is printed when `shown` or when they differ."""
    project, hand = _outputs(database, PROJECT_SCHEMA), _outputs(database, HAND_SCHEMA)
    lines, same = [], True
    lines.append(f"\n{'output':16} {'project build':>14} {'hand SQL':>10}")
    for name in OUTPUTS:
        rows = (project[name]["rows"], hand[name]["rows"])
        columns_equal = sorted(project[name]["columns"]) == sorted(hand[name]["columns"])
        flag = "" if rows[0] == rows[1] and columns_equal else "  DIFFERENT" + ("" if columns_equal else " columns")
        same = same and not flag
        lines.append(f"{name:16} {rows[0]:14,} {rows[1]:10,}{flag}")
    for one, other in zip(project["attrition_steps"], hand["attrition_steps"], strict=False):
        flag = "" if one == other else "  DIFFERENT"
        same = same and not flag and len(project["attrition_steps"]) == len(hand["attrition_steps"])
        lines.append(
            f"attrition step {one[0]}: {one[1]:,} persons ({one[2]:,} excluded) | {other[1]:,} ({other[2]:,}){flag}"
        )
    difference = _cohort_difference(database)
    lines.append(f"cohort rows (NUM_ENQ, index date, end of follow-up) on one side only: {difference}")
    same = same and difference == 0
    if shown or not same:
        print("\n".join(lines), flush=True)
    return same


if __name__ == "__main__":
    main()
