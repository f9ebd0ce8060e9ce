"""Benchmark: a synthetic SNDS received delivery by delivery, as the CNAM sends it; a delivery's cost should follow
its own size, not the base's.

Run from the project root:  .venv/bin/python benchmarks/monthly_at_scale.py [--patients 1000000]

1. `snds synth` of the persons over 2019-2020 (its throughput in GB per minute), split as the CNAM sends it
   (`snds.synth.split`): the referentials first, one delivery per DCIR flow month, one per PMSI year (after its
   last month). Both are kept in --work and reused by the next run.
2. A fresh warehouse (a random platform key) receives them in order: `snds ingest`, `snds validate`,
   `snds promote` (the incremental build of what the delivery touches), each as the command runs it, dbt's parse
   of the project included (a partial parse: about 10 s here); --warm parses once for the whole run.
3. Per delivery: its size, the three times, dbt's time by layer and of the data tests, the base before it (landing
   rows, database file) and the peak memory of the step (the process's resident high-water mark, reset before
   each step).
4. The build time of the last flow month over the first one's (the aim: within 2x), the run's peak memory, and a
   PNG plot of the growth curve (--plot).
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb
from fresh_warehouse import fresh_warehouse
from peak_memory import peak_mib, reset_peak

from snds import config
from snds.catalog.committed import load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import dbt_database, parse_project
from snds.ingest import ingest_delivery
from snds.promotion import Promotion, promote
from snds.synth import SynthSpec, synthesize
from snds.synth.split import SplitDelivery, deliveries_in, split_delivery

T = TypeVar("T")
STAGING_LAYER, TEST_LAYER = "staging", "test"


@dataclass(frozen=True)
class Step:
    delivery: str
    size_bytes: int
    ingest: float
    validate: float
    build: float
    staging: float  # dbt's execution time of the staging models, summed
    downstream: float  # of the event layer and marts
    tests: float  # of the data tests
    base_rows_before: int
    base_bytes_before: int
    peak_mib: float


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())


def prepare(work: Path, patients: int) -> list[SplitDelivery]:
    """The synthetic delivery and its split (reused when already there)."""
    tables = load_tables()
    source, split = work / f"S{patients}", work / f"split{patients}"
    if not (source / "MANIFEST.csv").exists():
        shutil.rmtree(source, ignore_errors=True)
        _, seconds = _timed(
            lambda: synthesize(source, SynthSpec(patients, (2019, 2020), seed=5), tables, config.reference_dir())
        )
        size = _size(source)
        print(
            f"snds synth: {patients:,} persons, {size / 1e9:.2f} GB in {seconds:.1f} s: "
            f"{size / 1e9 / seconds * 60:.2f} GB/min"
        )
    if not (split / "done").exists():
        shutil.rmtree(split, ignore_errors=True)
        _, seconds = _timed(lambda: split_delivery(source, split, tables))
        (split / "done").touch()
        print(f"split into deliveries in {seconds:.1f} s")
    return deliveries_in(split)


def receive(work: Path, deliveries: list[SplitDelivery], warm: bool = False) -> list[Step]:
    """A fresh warehouse receives the deliveries in order; one Step per delivery, printed as it ends. `warm`: dbt
    parses the project once, and every validation and promotion reuses the parse."""
    tables = load_tables()
    rules = project_rules(tables)
    database, target = fresh_warehouse(work, tables)
    manifest = None
    if warm:
        with dbt_database(database):
            manifest = parse_project("--quiet", target_path=target)
    steps: list[Step] = []
    print(_header(), flush=True)
    for delivery in deliveries:
        name = delivery.directory.name
        with duckdb.connect(str(database)) as con:
            rows_before = con.execute("select coalesce(sum(LOADED_COUNT), 0) from landing.deliveries").fetchone()[0]
        bytes_before = database.stat().st_size
        reset_peak()
        _, ingest = _timed(lambda d=delivery: ingest_delivery(d.directory, database, tables))
        report, validate = _timed(lambda n=name: validate_delivery(database, n, rules, target, manifest=manifest))
        if report["status"] != "validated":
            raise SystemExit(f"{name} was {report['status']}: the benchmark needs every delivery promoted")
        done, build = _timed(lambda n=name: promote(database, [n], target, manifest, extra=("--quiet",)))
        steps.append(_step(delivery, done, ingest, validate, build, rows_before, bytes_before))
        print(_row(steps[-1]), flush=True)
    return steps


def _step(
    delivery: SplitDelivery, done: Promotion, ingest: float, validate: float, build: float, rows: int, size: int
) -> Step:
    layers = done.seconds_by_layer
    staging = sum(seconds for layer, seconds in layers.items() if layer == STAGING_LAYER)
    downstream = sum(seconds for layer, seconds in layers.items() if layer in ("intermediate", "marts"))
    tests = sum(seconds for layer, seconds in layers.items() if layer == TEST_LAYER)
    return Step(
        delivery.directory.name,
        _size(delivery.directory),
        ingest,
        validate,
        build,
        staging,
        downstream,
        tests,
        rows,
        size,
        peak_mib(),
    )


def _header() -> str:
    return (
        f"{'delivery':<22} {'MB':>8} {'ingest s':>9} {'validate s':>10} {'build s':>8} {'staging':>8} "
        f"{'int+marts':>9} {'tests':>6} {'base rows before':>17} {'base GB':>8} {'peak MiB':>9}"
    )


def _row(step: Step) -> str:
    return (
        f"{step.delivery:<22} {step.size_bytes / 1e6:8.1f} {step.ingest:9.1f} {step.validate:10.1f} {step.build:8.1f} "
        f"{step.staging:8.1f} {step.downstream:9.1f} {step.tests:6.1f} {step.base_rows_before:17,} "
        f"{step.base_bytes_before / 1e9:8.2f} {step.peak_mib:9.0f}"
    )


def plot(steps: list[Step], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    positions = range(len(steps))
    figure, (times, base) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for label, values in (
        ("ingest", [s.ingest for s in steps]),
        ("validate", [s.validate for s in steps]),
        ("build (snds promote)", [s.build for s in steps]),
    ):
        times.plot(positions, values, marker="o", label=label)
    times.set_ylabel("seconds")
    times.set_title("Cost of each delivery as the base grows")
    times.legend()
    base.bar(positions, [s.base_rows_before / 1e6 for s in steps], color="lightgrey")
    base.set_ylabel("landing rows before (millions)")
    delivered = base.twinx()
    delivered.plot(positions, [s.size_bytes / 1e6 for s in steps], color="black", marker=".")
    delivered.set_ylabel("delivery size (MB), line")
    base.set_xticks(list(positions), [s.delivery.split("_")[-1] for s in steps], rotation=90)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=config.PROJECT_ROOT / "data" / "bench" / "monthly")
    parser.add_argument("--deliveries", type=int, default=None, help="Only the first N deliveries (a smoke run).")
    parser.add_argument("--plot", type=Path, default=None, help="Default: <work>/monthly_at_scale.png")
    parser.add_argument("--prepare-only", action="store_true", help="Generate and split the deliveries, then stop.")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="Parse the dbt project once and hand it to every step, as a service keeping it parsed would: the times "
        "then leave out dbt's parse of each command (about 10 s here).",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    deliveries = prepare(args.work, args.patients)[: args.deliveries]
    if args.prepare_only:
        print(f"{len(deliveries)} deliveries in {args.work}")
        return
    steps = receive(args.work, deliveries, warm=args.warm)
    months = [s for s in steps if "_M" in s.delivery]
    if len(months) >= 2:
        first, last = months[0], months[-1]
        print(
            f"build of the last flow month / the first: {last.build:.1f} s / {first.build:.1f} s = "
            f"{last.build / first.build:.2f} (aim: within 2)"
        )
    print(f"peak memory of any step: {max(s.peak_mib for s in steps):,.0f} MiB")
    path = args.plot or args.work / "monthly_at_scale.png"
    plot(steps, path)
    print(f"plot: {path}")
    print(f"whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
