"""The probabilistic linkage: Splink's Fellegi-Sunter model, trained by expectation-maximisation, on DuckDB.

Called by a project's generated Python model `<id>__linkage_pairs` (dbt-duckdb runs it in dbt's process) with the
linkage's two sides as Arrow tables: the cohort's subjects and the base's persons (one row per person and stay), each
criterion as text (`snds.projects.quasi_identifiers`). It returns the pairs scored at or above the threshold, one per
subject and person; the SQL model `<id>__linkage_pass_1` turns them into outcomes as the cascade's passes do (a
subject matched when it has one such person, whom no other subject has).

Comparisons: exact on sex, birth year and month, department and FINESS; a commune within one character (a typo); a
stay's dates within one day, then within a week. Pairs are generated only within blocks (RULES) that share the birth,
the residence or the stay; the model's probabilities are trained on other blocks than the ones a comparison is
estimated from. Splink works in a DuckDB of its own, in memory (spilling to a temporary folder), so that none of its
working tables lands in the warehouse.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from snds.projects.quasi_identifiers import DATE, QUASI_IDENTIFIERS

# Blocks within which pairs are compared (each used when the linkage has all of its criteria), and trained on.
RULES = (
    ("birth_year", "birth_month", "sex"),
    ("birth_year", "department", "commune"),
    ("finess", "discharge_date"),
    ("finess", "admission_date"),
)
# Blocks EM may train on, in order; a block estimates the comparisons outside it, and is used when the linkage has
# its criteria and it estimates a comparison no block learnt from before it did (a block that fails is passed). First
# the pairs that share a stay (FINESS and admission): near-certain matches, from which the person's comparisons are
# learnt; then those that share the whole person, for the stay's. Trained on the residence first, EM took the few
# pairs that share a stay for the matches on a million persons (a stay is so telling) and learnt a commune agreeing
# for 6 % of them: 17 % of the cohort found. Without stays, or on a cohort too small to learn from them, the
# residence, the person without the department, the birth and department, each teaching what it leaves free.
TRAINING = (
    ("finess", "admission_date"),
    ("sex", "birth_year", "birth_month", "department", "commune"),
    ("department", "commune"),
    ("sex", "birth_year", "birth_month", "commune"),
    ("birth_year", "birth_month", "department"),
)
SUBJECTS, PERSONS = "subjects", "persons"  # the two datasets, as Splink names them
MEMORY_LIMIT = "4GB"
RANDOM_PAIRS = 10_000_000  # sampled to estimate how often values agree by chance (a stay's dates rarely do)
# The prior (two random rows match) is estimated from the pairs that agree on every person criterion the linkage
# has, taken to find this share of the true matches (a precise rule: a looser one would count strangers as matches).
PRIOR_RULE = ("sex", "birth_year", "birth_month", "department", "commune")
RECALL = 0.8
SEED = 1


def blocking_rules(criteria: Sequence[str]) -> list[tuple[str, ...]]:
    """RULES whose criteria the linkage compares: what the definition check requires one of."""
    return [rule for rule in RULES if set(rule) <= set(criteria)]


def training_blocks(criteria: Sequence[str]) -> list[tuple[str, ...]]:
    """The TRAINING blocks EM runs on for these criteria when each succeeds: each estimating something new."""
    blocks: list[tuple[str, ...]] = []
    while (rule := _next_block(criteria, _taught(criteria, blocks), set(blocks))) is not None:
        blocks.append(rule)
    return blocks


def _taught(criteria: Sequence[str], blocks: Sequence[tuple[str, ...]]) -> set[str]:
    return {c for rule in blocks for c in criteria if c not in rule}


def _next_block(criteria: Sequence[str], estimated: set[str], tried: set[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The first TRAINING block not tried whose criteria the linkage has and that estimates something new."""
    for rule in TRAINING:
        if rule not in tried and set(rule) <= set(criteria) and set(criteria) - set(rule) - estimated:
            return rule
    return None


def _train(con: duckdb.DuckDBPyConnection, linker: Any, criteria: Sequence[str]) -> Any:
    """EM on the training blocks in order; the trained linker. A block whose pairs cannot be learnt from (on a tiny
    cohort, a level that never occurs, which Splink refuses, leaving the linker's settings half-changed) gives way to
    the next ones, the linker rebuilt from the model as it was before."""
    from splink import block_on

    learnt: list[tuple[str, ...]] = []
    tried: set[tuple[str, ...]] = set()
    while (rule := _next_block(criteria, _taught(criteria, learnt), tried)) is not None:
        tried.add(rule)
        before = linker.misc.save_model_to_json()
        try:
            # every record: Splink's default, a 1 % sample of each side, keeps 1 in 10,000 of the true pairs
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), record_sample_proportion=1.0
            )
        except ValueError as error:
            logging.getLogger(__name__).warning("EM on %s skipped: %s", ", ".join(rule), str(error)[:200])
            linker = _linker(con, before)
            continue
        learnt.append(rule)
    return linker


def _comparison(criterion: str) -> Any:  # Splink's comparison creators share no public base type
    import splink.comparison_library as cl

    if QUASI_IDENTIFIERS[criterion].kind == DATE:
        return cl.AbsoluteDateDifferenceAtThresholds(
            criterion, input_is_string=True, metrics=["day", "day"], thresholds=[1, 7], datetime_format="%Y-%m-%d"
        )
    if criterion == "commune":
        return cl.LevenshteinAtThresholds(criterion, 1)
    return cl.ExactMatch(criterion)


@contextmanager
def _splink_session(subjects: pa.Table, base: pa.Table, criteria: Sequence[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """Splink's own DuckDB, in memory (spilling to a temporary folder), holding both sides with the same columns, as
    Splink wants them: a unique id per row, the person (null for a subject), the criteria."""
    with tempfile.TemporaryDirectory(prefix="snds-splink-") as spill:
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
        try:
            con.register("subjects_in", subjects)
            con.register("base_in", base)
            kept = ", ".join(criteria)
            con.execute(
                f"create table {SUBJECTS} as select subject_id as unique_id, cast(null as varchar) as person_id, "
                f"{kept} from subjects_in"
            )
            con.execute(
                f"create table {PERSONS} as select 'row' || cast(row_number() over () as varchar) as unique_id, "
                f"person_id, {kept} from base_in"
            )
            yield con
        finally:
            con.close()


def _linker(con: duckdb.DuckDBPyConnection, settings: Any) -> Any:
    from splink import Linker
    from splink.backends.duckdb import DuckDBAPI

    api = DuckDBAPI(con)
    inputs = [api.register(SUBJECTS, table_name=SUBJECTS), api.register(PERSONS, table_name=PERSONS)]
    return Linker(inputs, settings, log_level=logging.WARNING)  # its progress, at INFO, would flood dbt's log


def _pairs(con: duckdb.DuckDBPyConnection, predictions: Any, probability: bool) -> pa.Table:
    """(subject_id, person_id[, match_probability]) from Splink's pairs, one row per subject and person."""
    scored = ", max(match_probability) as match_probability" if probability else ""
    return con.sql(f"""
        select
            case when source_dataset_l = '{SUBJECTS}' then unique_id_l else unique_id_r end as subject_id,
            coalesce(person_id_r, person_id_l) as person_id{scored}
        from {predictions.physical_name}
        group by all
    """).to_arrow_table()


def scored_pairs(subjects: pa.Table, base: pa.Table, criteria: Sequence[str], threshold: float) -> pa.Table:
    """(subject_id, person_id, match_probability): each subject's persons scored at or above `threshold`."""
    from splink import SettingsCreator, block_on

    rules = blocking_rules(criteria)
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[_comparison(c) for c in criteria],
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in rules],
        additional_columns_to_retain=["person_id"],
        retain_intermediate_calculation_columns=False,
    )
    with _splink_session(subjects, base, criteria) as con:
        linker = _linker(con, settings)
        prior = [c for c in PRIOR_RULE if c in criteria] or list(rules[0])
        linker.training.estimate_probability_two_random_records_match([block_on(*prior)], recall=RECALL)
        linker.training.estimate_u_using_random_sampling(max_pairs=RANDOM_PAIRS, seed=SEED)
        linker = _train(con, linker, criteria)
        return _pairs(con, linker.inference.predict(threshold_match_probability=threshold), probability=True)


def deterministic_pairs(
    subjects: pa.Table, base: pa.Table, criteria: Sequence[str], rules: Sequence[Sequence[str]]
) -> pa.Table:
    """(subject_id, person_id): Splink's deterministic link, pairs equal on every criterion of any rule (the
    benchmark's baseline for the cascade, whose passes it takes as rules)."""
    from splink import SettingsCreator, block_on

    settings = SettingsCreator(
        link_type="link_only",
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in rules],
        additional_columns_to_retain=["person_id"],
    )
    with _splink_session(subjects, base, criteria) as con:
        return _pairs(con, _linker(con, settings).inference.deterministic_link(), probability=False)
