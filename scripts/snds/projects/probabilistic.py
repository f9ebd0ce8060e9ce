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
# its criteria and it estimates a comparison no block before it did: the residence teaches the birth, sex and stays;
# the person without the department teaches the department; the birth and department teach the commune.
TRAINING = (
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


def training_blocks(criteria: Sequence[str], estimated: frozenset[str] = frozenset()) -> list[tuple[str, ...]]:
    """The TRAINING blocks EM would run on for these criteria, each estimating something new."""
    blocks, known = [], set(estimated)
    for rule in TRAINING:
        taught = set(criteria) - set(rule)
        if set(rule) <= set(criteria) and taught - known:
            blocks.append(rule)
            known |= taught
    return blocks


def _train(linker: Any, criteria: Sequence[str]) -> None:
    """EM on the training blocks in order; a block whose pairs cannot be learnt from (on a tiny cohort, a level that
    never occurs, which Splink refuses) gives way to the next ones."""
    from splink import block_on

    estimated: set[str] = set()
    tried: set[tuple[str, ...]] = set()
    while blocks := [b for b in training_blocks(criteria, frozenset(estimated)) if b not in tried]:
        rule = blocks[0]
        tried.add(rule)
        prior = linker._settings_obj._probability_two_random_records_match  # Splink has no public accessor
        try:
            # every record: Splink's default, a 1 % sample of each side, keeps 1 in 10,000 of the true pairs: on a
            # million persons EM then took a handful of shared stays for the matches and missed 83 % of the cohort
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), record_sample_proportion=1.0
            )
        except ValueError as error:
            linker._settings_obj._probability_two_random_records_match = prior  # a failed session leaves its own
            logging.getLogger(__name__).warning("EM on %s skipped: %s", ", ".join(rule), str(error)[:200])
            continue
        estimated |= set(criteria) - set(rule)


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
        _train(linker, criteria)
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
