"""Linkage with an external cohort (issue 14) on the shared projects warehouse: the direct protocol and the cascade,
measured against the truth `snds synth --linkage` wrote beside the delivery (never loaded)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pyrage
import pytest
from click.testing import CliRunner
from dbt.contracts.graph.manifest import Manifest
from pyrage import x25519

from benchmark_runs import BENCHMARKS
from project_warehouse import Warehouse
from selection_slice import selection_slice
from snds import config
from snds.cli import main
from snds.dbt import dbt_database, run_dbt
from snds.projects import linkage_models
from snds.projects.definition import load_definition
from snds.projects.probabilistic import scored_pairs
from snds.synth import linkage_dir
from snds.synth.linkage_truth import LinkageQuality, measure

pytestmark = pytest.mark.slow

DIRECT, CASCADE, SPLINK = "P_LINK_DIRECT", "P_LINK_CASCADE", "P_LINK_SPLINK"


@pytest.fixture(scope="module")
def warehouse(projects_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return projects_warehouse.copy(tmp_path_factory.mktemp("linkage"))


def _quality(warehouse: Warehouse, project: str) -> LinkageQuality:
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{project}.yml")
    with duckdb.connect(str(warehouse.database), read_only=True) as con:
        return measure(con, definition, linkage_dir(warehouse.deliveries / "D2019"))


def _report(warehouse: Warehouse, project: str) -> list[tuple]:
    return warehouse.query(
        "select pass_number, subjects_considered, matched, ambiguous, unmatched, matched_share "
        f"from project_{project.lower()}.linkage order by pass_number"
    )


def test_the_direct_protocol_finds_every_person_of_the_base_and_no_other(warehouse: Warehouse) -> None:
    quality = _quality(warehouse, DIRECT)
    assert quality.subjects > quality.in_base > 200  # a fifth of 1,500 persons, and a tenth more outside the base
    assert quality.true_matches == quality.matched == quality.in_base
    assert quality.passes[0].false_on_outsiders == 0
    total, only = _report(warehouse, DIRECT)
    assert total[1:5] == only[1:5] == (quality.subjects, quality.in_base, 0, quality.subjects - quality.in_base)
    assert warehouse.query("select count(*) from project_p_link_direct.cohort") == [(quality.in_base,)]


def test_linked_extracts_are_keyed_by_ns_and_num_enq_only(warehouse: Warehouse) -> None:
    """No column of a linked project's tables holds a platform or CNAM pseudonym, and NS is the cohort's."""
    with duckdb.connect(str(warehouse.database), read_only=True) as con:

        def values(sql: str) -> set:
            return {v for (v,) in con.execute(sql).fetchall() if v is not None}

        forbidden = values(f"select BEN_NIR_PSA from {warehouse.csv('IR_BEN_R')}") | values(
            "select person_id from marts.persons"
        )
        subjects = values("select NS from project_p_link_direct.import_correspondence")
        for project in (DIRECT, CASCADE, SPLINK):
            schema = f"project_{project.lower()}"
            tables = values(
                f"select table_name from information_schema.tables where table_schema = '{schema}' "
                "and table_name not like 'import%'"
            )
            for table in tables:
                columns = [
                    c
                    for (c,) in con.execute(
                        "select column_name from information_schema.columns where table_schema = ? "
                        "and table_name = ? order by ordinal_position",
                        [schema, table],
                    ).fetchall()
                ]
                for column in columns:
                    held = values(f'select distinct cast("{column}" as varchar) from {schema}."{table}"')
                    assert not held & forbidden, f"{schema}.{table}.{column}"
                if table in ("IR_BEN_R", "T_MCO19B", "T_MCO20B", "cohort"):
                    assert columns[:2] == ["NUM_ENQ", "NS"], (table, columns)
                    ns = values(f'select NS from {schema}."{table}"')
                    assert ns and ns <= subjects, table


def test_a_linked_project_exports_its_extracts_keyed_by_ns(warehouse: Warehouse, tmp_path: Path) -> None:
    """The export's own checks accept NS beside NUM_ENQ and leave the linkage report on the platform."""
    identity = x25519.Identity.generate()
    recipients = tmp_path / "recipients"
    recipients.mkdir()
    (recipients / "demo-recipient.pub").write_text(f"{identity.to_public()}\n", encoding="ascii")
    arguments = ["project", "export", DIRECT, "--database", str(warehouse.database), "--to", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*arguments, "--recipients-dir", str(recipients)])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "cohort.csv.age" in files and "IR_BEN_R.csv.age" in files and not any("linkage" in f for f in files)
    header = pyrage.decrypt((tmp_path / "out" / "IR_BEN_R.csv.age").read_bytes(), [identity]).split(b"\n")[0]
    assert header.decode().split(";")[:2] == ["NUM_ENQ", "NS"]


def test_the_cascade_is_measured_against_the_truth_and_never_matches_a_twin_wrongly(warehouse: Warehouse) -> None:
    quality = _quality(warehouse, CASCADE)
    report = _report(warehouse, CASCADE)
    total, passes = report[0], report[1:]
    assert total[2] == quality.matched == sum(p.matched for p in quality.passes)
    assert quality.precision >= 0.97 and quality.recall >= 0.75, quality
    assert all(p.false_on_twins == 0 for p in quality.passes), quality
    considered = total[1]
    for (number, subjects, matched, ambiguous, unmatched, _), measured in zip(passes, quality.passes, strict=True):
        assert number == measured.pass_number and matched == measured.matched
        assert subjects == considered and matched + ambiguous + unmatched == subjects  # every subject accounted for
        considered -= matched  # a matched subject leaves the next passes
    print("\ncascade:", quality)


def test_splink_scores_the_same_cohort_into_the_same_outputs(warehouse: Warehouse) -> None:
    quality, cascade = _quality(warehouse, SPLINK), _quality(warehouse, CASCADE)
    (total, only) = _report(warehouse, SPLINK)
    assert total[1:5] == only[1:5] and total[2] == quality.matched
    assert quality.precision >= 0.97 and quality.recall >= 0.75, quality
    assert quality.passes[0].false_on_twins == 0 and quality.passes[0].false_on_outsiders <= 1, quality
    assert quality.subjects == cascade.subjects and quality.in_base == cascade.in_base
    cohort = warehouse.query("select count(*), count(distinct NS) from project_p_link_splink.cohort")
    assert cohort == [(quality.matched, quality.matched)]
    print("\nsplink:", quality, "\ncascade:", cascade)


def test_the_benchmark_sides_run_on_the_built_linkage(warehouse: Warehouse) -> None:
    """The parts of benchmarks/linkage_vs_splink.py after its set-up (a full run is about a minute the suite cannot
    spare): the built cascade's inputs, Splink deterministic with the plan's rules and probabilistic, each measured."""
    bench = _benchmark_module()
    definition = load_definition(config.PROJECT_ROOT / "projects" / f"{CASCADE}.yml")
    assert definition.linkage is not None
    criteria = [c.name for c in definition.linkage.criteria]
    subjects = bench.linkage_input(warehouse.database, linkage_models.model(definition, "subjects"))
    base = bench.linkage_input(warehouse.database, linkage_models.model(definition, "base"))
    truth = linkage_dir(warehouse.deliveries / "D2019")
    deterministic = bench.quality_of_pairs(
        warehouse.database, bench.splink_deterministic(warehouse.database, subjects, base, criteria), truth
    )
    probabilistic = bench.quality_of_pairs(
        warehouse.database, scored_pairs(subjects, base, criteria, definition.linkage.threshold), truth
    )
    for quality in (deterministic, probabilistic):
        assert quality.subjects == subjects.num_rows and quality.precision >= 0.97 and quality.recall >= 0.75, quality


def _benchmark_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("linkage_vs_splink", BENCHMARKS / "linkage_vs_splink.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCHMARKS))  # its helpers beside it
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_the_plan_leaves_out_the_criterion_that_discriminates_least(
    warehouse: Warehouse, dbt_manifest: Manifest, tmp_path: Path
) -> None:
    """On a base where one criterion takes one value, that one goes first, wherever it is listed."""
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute("create schema if not exists scratch")
        con.execute(
            "create or replace table scratch.plan_base as select 'P' || i as person_id, "
            "cast(i % 7 as varchar) as a, cast(i % 11 as varchar) as b, 'same' as c, cast(i % 13 as varchar) as d "
            "from range(1000) t(i)"
        )
    orders = (["a", "b", "c", "d"], ["c", "d", "a", "b"], ["d", "a", "b", "c"])
    sql = "\nunion all\n".join(  # one compile for the three orders
        f"select {n} as listed, left_out, pass_number from ({{{{ linkage_plan('scratch.plan_base', {o!r}, 3) }}}})"
        for n, o in enumerate(orders)
    )
    with dbt_database(warehouse.database):
        run = run_dbt(  # the plan reads no model: the parse cut to none
            "compile", "--no-populate-cache", "--no-write-json", "--inline", sql,
            target_path=tmp_path, manifest=selection_slice(dbt_manifest),
        )  # fmt: skip
    rows = warehouse.query(run.result.result.results[0].node.compiled_code + " order by listed, pass_number")
    dropped = [[left_out for n, left_out, _ in rows if n == listed] for listed in range(len(orders))]
    assert all(d[0] is None and d[1] == "c" for d in dropped), dropped
