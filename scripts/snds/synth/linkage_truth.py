"""A built linkage measured against the truth `snds synth --linkage` wrote (`truth.csv`): for tests and benchmarks.

The truth is read where it lies, in the one query that compares it with each pass's matches: each subject's person
(BEN_NIR_PSA as delivered) turned into its platform pseudonym with the platform key, as staging does, in SQL (the
key stays in the database). Nothing of it is stored. DuckDB is used directly: the truth is a file beside the
delivery, which only DuckDB's CSV reader reads in place, and measuring is not part of the platform's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.catalog.conventions import load_conventions
from snds.keys import store
from snds.projects import linkage_models
from snds.projects.definition import ProjectDefinition
from snds.projects.imports import key_join, keyed_sql
from snds.sql import sql_literal
from snds.synth.linkage import SUBJECT

TRUTH_FILE = "truth.csv"


@dataclass(frozen=True)
class PassQuality:
    pass_number: int
    matched: int
    true_matches: int
    false_on_twins: int  # false matches of subjects whose twin is in the base
    false_on_outsiders: int  # subjects outside the base, matched to someone

    @property
    def precision(self) -> float:
        return self.true_matches / self.matched if self.matched else 1.0


@dataclass(frozen=True)
class LinkageQuality:
    subjects: int
    in_base: int  # subjects who are persons of the base: what a perfect linkage finds
    passes: tuple[PassQuality, ...]

    @property
    def matched(self) -> int:
        return sum(p.matched for p in self.passes)

    @property
    def true_matches(self) -> int:
        return sum(p.true_matches for p in self.passes)

    @property
    def precision(self) -> float:
        return self.true_matches / self.matched if self.matched else 1.0

    @property
    def recall(self) -> float:
        return self.true_matches / self.in_base if self.in_base else 1.0

    def recall_after(self, pass_number: int) -> float:
        found = sum(p.true_matches for p in self.passes if p.pass_number <= pass_number)
        return found / self.in_base if self.in_base else 1.0


def measure(con: duckdb.DuckDBPyConnection, definition: ProjectDefinition, directory: Path) -> LinkageQuality:
    """The project's linkage, as built in the database, against `directory`/truth.csv."""
    if definition.linkage is None:
        raise ValueError(f"project {definition.id} has no linkage")
    passes = "\n    union all\n".join(
        f"    select pass_number, subject_id, person_id from keys.{m} where outcome = 'matched'"
        for m in linkage_models.pass_models(definition)
    )
    return measure_matches(con, passes, directory, definition.linkage.passes)


def measure_matches(con: duckdb.DuckDBPyConnection, matched: str, directory: Path, passes: int) -> LinkageQuality:
    """Matches given by the query `matched` (pass_number, subject_id, person_id: a platform pseudonym), against
    `directory`/truth.csv."""
    truth = sql_literal(str(directory / TRUTH_FILE))
    length = load_conventions().pseudonyms.length
    rows = con.execute(f"""
        with truth as (
            select {SUBJECT} as subject_id, BEN_NIR_PSA as delivered, coalesce(FAULTS, '') as faults
            from read_csv({truth}, delim=';', header=true, all_varchar=true)
        ),
        expected as (
            select truth.subject_id, truth.faults,
                case when truth.delivered is not null then {keyed_sql("truth.delivered", "platform_key", length)} end
                    as person_id
            from truth {key_join(store.PLATFORM, "platform_key")}
        ),
        matched as (
        {matched}
        )
        select matched.pass_number,
            count(*),
            count(*) filter (where matched.person_id = expected.person_id),
            count(*) filter (where matched.person_id <> expected.person_id and expected.faults like '%twin%'),
            count(*) filter (where expected.person_id is null)
        from matched join expected using (subject_id)
        group by matched.pass_number order by matched.pass_number
    """).fetchall()
    counts = con.execute(
        f"select count(*), count(BEN_NIR_PSA) from read_csv({truth}, delim=';', header=true, all_varchar=true)"
    ).fetchone()
    subjects, in_base = counts if counts else (0, 0)
    found = {int(r[0]): PassQuality(int(r[0]), *map(int, r[1:])) for r in rows}
    qualities = tuple(found.get(n, PassQuality(n, 0, 0, 0, 0)) for n in range(1, passes + 1))
    return LinkageQuality(int(subjects), int(in_base), qualities)
