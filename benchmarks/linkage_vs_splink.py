"""Benchmark: the linkage cascade (dbt on DuckDB) against Splink's deterministic linkage with the same rules, and
Splink's probabilistic linkage, on the same external cohort, in one run: times, peak memory, precision and recall.

Run from the project root:  .venv/bin/python benchmarks/linkage_vs_splink.py [--patients 1000000]

1. `snds synth --linkage` of the persons (a tenth of them in an external cohort, plus a tenth more outside the base,
   with typos, missing fields, moves and twins; kept in --work and reused), and a delivery of the three tables the
   linkage reads (IR_BEN_R, T_MCO19C, T_MCO20C), ingested, validated and staged in a fresh warehouse; the cohort
   file imported into P_LINK_CASCADE (projects/P_LINK_CASCADE.yml) as `snds project import` does.
2. The cascade: `dbt build` of P_LINK_CASCADE's linkage models. Reported: dbt's execution time of the two inputs
   (`subjects`, `base`: shared by the three sides) and of the cascade itself (plan, passes, matches).
3. Splink, deterministic: `deterministic_link` with one rule per cascade pass (exact equality on the pass's
   criteria, read from the plan the cascade measured), all passes at once as Splink does; the pairs kept when a
   subject has one person and the person one subject, as the cascade keeps them.
4. Splink, probabilistic: `snds.projects.probabilistic.scored_pairs` (EM-trained, --threshold), kept alike.
Each side is measured in this process: wall time, and the resident high-water mark reset before it. Precision and
recall come from the truth the generator wrote (`snds.synth.linkage_truth`).
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa
from fresh_warehouse import fresh_warehouse
from peak_memory import peak_mib, reset_peak

from snds import config
from snds.catalog.committed import load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import dbt_database, run_dbt
from snds.ingest import ingest_delivery
from snds.ingest.verify import write_manifest
from snds.projects import linkage_models
from snds.projects.definition import load_definition
from snds.projects.probabilistic import deterministic_pairs, scored_pairs
from snds.synth import LinkageSpec, SynthSpec, linkage_dir, synthesize
from snds.synth.linkage import import_for_projects
from snds.synth.linkage_truth import LinkageQuality, measure, measure_matches

T = TypeVar("T")
PROJECT = "P_LINK_CASCADE"
TABLES = ("IR_BEN_R", "T_MCO19C", "T_MCO20C")  # what the linkage reads
INPUTS = ("subjects", "base")
UNIQUE_PAIRS = """
    with pairs as (select distinct subject_id, person_id from {pairs}),
    per_subject as (select subject_id, count(*) as persons from pairs group by subject_id),
    per_person as (select person_id, count(*) as subjects from pairs group by person_id)
    select 1 as pass_number, pairs.subject_id, pairs.person_id
    from pairs join per_subject using (subject_id) join per_person using (person_id)
    where per_subject.persons = 1 and per_person.subjects = 1
"""


def _measured(action: Callable[[], T]) -> tuple[T, float, float]:
    reset_peak()
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started, peak_mib()


def prepare(work: Path, patients: int, share: float) -> Path:
    """The synthetic delivery with its linkage inputs (reused), and the delivery of the linkage's tables."""
    source = work / f"S{patients}L"
    if not (source / "MANIFEST.csv").exists():
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(linkage_dir(source), ignore_errors=True)
        spec = SynthSpec(patients, (2019, 2020), seed=11, linkage=LinkageSpec(cohort_share=share))
        _, seconds, _ = _measured(lambda: synthesize(source, spec, load_tables(), config.reference_dir()))
        print(f"snds synth --linkage {share}: {patients:,} persons in {seconds:.1f} s", flush=True)
    subset = work / f"L{patients}"
    if not (subset / "MANIFEST.csv").exists():
        shutil.rmtree(subset, ignore_errors=True)
        subset.mkdir(parents=True)
        for table in TABLES:
            shutil.copyfile(source / f"{table}.csv", subset / f"{table}.csv")  # a hard link is refused
        write_manifest(subset, ((f"{table}.csv", table) for table in TABLES))
    return subset


def warehouse(work: Path, delivery: Path, inputs: Path) -> tuple[Path, Path]:
    """A fresh warehouse holding the delivery, validated, and the cohort imported into the project."""
    tables = load_tables()
    database, target = fresh_warehouse(work, tables, (PROJECT,))
    ingest_delivery(delivery, database, tables)
    with dbt_database(database):
        report = validate_delivery(database, delivery.name, project_rules(tables), target)
    if report["status"] != "validated":
        raise SystemExit(f"{delivery.name} was {report['status']}")
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{PROJECT}.yml")
    import_for_projects(database, inputs, [definition])
    return database, target


def cascade(database: Path, target: Path) -> dict[str, float]:
    """`dbt build` of the staging and the linkage models; dbt's execution seconds by part."""
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{PROJECT}.yml")
    matches = linkage_models.matches_model(definition)
    with dbt_database(database):
        run = run_dbt("build", "--select", f"+{matches}", "--quiet", target_path=target)
    seconds = {"staging": 0.0, "inputs": 0.0, "plan": 0.0, "passes": 0.0}
    for result in run.result.result.results:
        name = result.node.name
        part = "staging"
        if "__linkage_" in name:
            step = name.rsplit("__linkage_", 1)[1]
            part = "inputs" if step in INPUTS else "plan" if step == "plan" else "passes"
        seconds[part] += result.execution_time
    seconds["cascade"] = seconds["plan"] + seconds["passes"]
    return seconds


def linkage_input(database: Path, relation: str) -> pa.Table:
    with duckdb.connect(str(database)) as con:
        return con.sql(f"select * from keys.{relation}").to_arrow_table()


def splink_deterministic(database: Path, subjects: pa.Table, base: pa.Table, criteria: list[str]) -> pa.Table:
    """Splink's deterministic link, one rule per pass of the cascade's plan; (subject_id, person_id) pairs."""
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{PROJECT}.yml")
    plan = linkage_models.model(definition, "plan")
    flags = ", ".join(f"use_{c}" for c in criteria)
    with duckdb.connect(str(database)) as con:
        rows = con.execute(f"select {flags} from keys.{plan} order by pass_number").fetchall()
    rules = [[c for c, used in zip(criteria, row, strict=True) if used] for row in rows]
    return deterministic_pairs(subjects, base, criteria, rules)


def quality_of_pairs(database: Path, pairs: pa.Table, directory: Path) -> LinkageQuality:
    with duckdb.connect(str(database)) as con:
        con.register("scored", pairs)
        return measure_matches(con, UNIQUE_PAIRS.format(pairs="scored"), directory, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--cohort-share", type=float, default=0.1)
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--work", type=Path, default=Path("/tmp/snds-linkage-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    delivery = prepare(args.work, args.patients, args.cohort_share)
    truth = linkage_dir(args.work / f"S{args.patients}L")
    (database, target), seconds, peak = _measured(lambda: warehouse(args.work, delivery, truth))
    print(f"warehouse: ingest, validate, import in {seconds:.1f} s (peak {peak:,.0f} MiB)", flush=True)
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{PROJECT}.yml")
    assert definition.linkage is not None
    criteria = [c.name for c in definition.linkage.criteria]

    parts, wall, cascade_peak = _measured(lambda: cascade(database, target))
    with duckdb.connect(str(database)) as con:
        cascade_quality = measure(con, definition, truth)
        sizes = con.execute(
            f"select (select count(*) from keys.{linkage_models.model(definition, 'subjects')}), "
            f"(select count(*) from keys.{linkage_models.model(definition, 'base')})"
        ).fetchone()
    print(f"cohort: {sizes[0]:,} subjects; base: {sizes[1]:,} person and stay rows", flush=True)
    subjects = linkage_input(database, linkage_models.model(definition, "subjects"))
    base = linkage_input(database, linkage_models.model(definition, "base"))

    deterministic, det_seconds, det_peak = _measured(lambda: splink_deterministic(database, subjects, base, criteria))
    det_quality = quality_of_pairs(database, deterministic, truth)
    scored, prob_seconds, prob_peak = _measured(lambda: scored_pairs(subjects, base, criteria, args.threshold))
    prob_quality = quality_of_pairs(database, scored, truth)

    print(f"\ndbt build (staging, inputs, cascade) wall {wall:.1f} s; dbt execution by part: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in parts.items()))  # fmt: skip
    print(f"\n{'side':36} {'seconds':>8} {'peak MiB':>9} {'matched':>8} {'precision':>9} {'recall':>7}")
    sides = (
        ("cascade (dbt on DuckDB: plan, passes)", parts["cascade"], cascade_peak, cascade_quality),
        ("Splink deterministic, same rules", det_seconds, det_peak, det_quality),
        (f"Splink probabilistic, threshold {args.threshold}", prob_seconds, prob_peak, prob_quality),
    )
    for name, secs, mib, quality in sides:
        print(f"{name:36} {secs:8.1f} {mib:9,.0f} {quality.matched:8,} {quality.precision:9.4f} {quality.recall:7.4f}")
    print(f"(the cascade's inputs, shared by all three: {parts['inputs']:.1f} s; peak of the dbt build)")
    print("\ncascade per pass: pass, matched, true matches, false on twins, false on outsiders, recall so far")
    for p in cascade_quality.passes:
        recall = cascade_quality.recall_after(p.pass_number)
        counts = f"{p.matched:,} {p.true_matches:,} {p.false_on_twins} {p.false_on_outsiders}"
        print(f"  {p.pass_number}: {counts} {recall:.4f}")
    print(f"\nratio Splink deterministic / cascade: {det_seconds / max(parts['cascade'], 1e-9):.2f}")
    print(f"ratio Splink probabilistic / cascade: {prob_seconds / max(parts['cascade'], 1e-9):.2f}")
    print(f"subjects {cascade_quality.subjects:,}, in the base {cascade_quality.in_base:,}; "
          f"whole run {time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
