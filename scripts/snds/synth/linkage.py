"""Synthetic inputs of a linkage with an external cohort (appariement), with their truth, from `snds synth --linkage`.

A share of the synthetic persons, plus persons who are not in the base, form an external cohort; each gets a subject
number NS (the cohort holder's, in an order unrelated to the base). Written into `<delivery>.linkage/`, beside the
delivery, never inside it:
- `direct.csv`: the CNAM's answer to the direct protocol, NS and the person's pseudonym as the CNAM delivers it
  (`BEN_NIR_PSA`); a person outside the base gets a pseudonym the base does not hold;
- `cohort.csv`: what the cohort holder knows for the indirect protocol: sex, birth year and month, residence
  (department, commune) and, for some persons, the admission and discharge dates and the FINESS of one of their MCO
  stays; with faults at set rates (below);
- a schema file beside each (`snds project import` reads it: `direct.csv` declares BEN_NIR_PSA its identifier);
- `truth.csv`: NS, the person's BEN_NIR_PSA (empty for a person outside the base) and the faults planted in the
  cohort file; for measuring a linkage, never to be imported.

Faults of the cohort file (rates per person of the cohort): a typo in a date (the stay's admission a few days off
when the person gives a stay, else the birth month), a missing field (birth month, commune or the stay's discharge),
a moved residence (another department and commune), and twins: a person of the base outside the cohort is given the
sex, birth year and month and residence of a cohort person (planted in the base before it is written).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from snds.catalog.conventions import load_conventions
from snds.formats import DATE_FORMAT

if TYPE_CHECKING:
    from snds.projects.definition import ProjectDefinition

DIRECTORY_SUFFIX = ".linkage"
SUBJECT = "NS"
FILE_FOR_PROTOCOL = {"direct": "direct.csv", "cascade": "cohort.csv", "probabilistic": "cohort.csv"}
FAULTS = ("date_typo", "missing_field", "moved", "twin")


@dataclass(frozen=True)
class LinkageSpec:
    cohort_share: float = 0.1  # share of the base's persons in the external cohort
    outsider_share: float = 0.1  # persons outside the base, as a share of the cohort's persons in the base
    stay_share: float = 0.5  # share of the cohort's persons with an MCO stay who give one
    date_typo_rate: float = 0.03
    missing_rate: float = 0.05
    moved_rate: float = 0.03
    twin_rate: float = 0.02


def linkage_dir(delivery: Path) -> Path:
    """The linkage inputs sit beside the delivery (a delivery directory holds only what its manifest lists)."""
    return delivery.with_name(delivery.name + DIRECTORY_SUFFIX)


def _draw(seed: int, purpose: str, key: str = "pid", modulo: int = 1_000_000) -> str:
    return f"cast(hash({seed}, {key}, 'linkage:{purpose}') % {modulo} as bigint)"


def _chance(seed: int, purpose: str, rate: float, key: str = "pid") -> str:
    return f"{_draw(seed, purpose, key)} < {int(rate * 1_000_000)}"


def choose_members(con: duckdb.DuckDBPyConnection, seed: int, linkage: LinkageSpec) -> None:
    """Table `linkage_members`: the base persons in the cohort, and their twins planted into `persons`.

    Run before the delivery is written, so that the twins are in it: a twin is the next person of the base (by pid)
    when that person is outside the cohort; it takes the member's sex, birth and residence, and keeps its own stays.
    """
    con.execute(f"""create or replace table linkage_members as
        select pid, {_chance(seed, "twin", linkage.twin_rate)} as wants_twin
        from persons where {_chance(seed, "member", linkage.cohort_share)}""")
    con.execute("""create or replace table linkage_twins as
        select members.pid, members.pid + 1 as twin
        from linkage_members members
        where members.wants_twin and members.pid + 1 in (select pid from persons)
            and members.pid + 1 not in (select pid from linkage_members)""")
    con.execute("""update persons set sex = source.sex, birth_year = source.birth_year,
            birth_month = source.birth_month, dpt = source.dpt, commune = source.commune
        from (select twins.twin, persons.* from linkage_twins twins join persons using (pid)) source
        where persons.pid = source.twin""")


def write_inputs(con: duckdb.DuckDBPyConnection, out: Path, seed: int, linkage: LinkageSpec) -> dict[str, int]:
    """Write the files of the module docstring into `out` (created); the rows of each, by file name."""
    out.mkdir(parents=True, exist_ok=True)
    s, length = seed, load_conventions().pseudonyms.length
    finess = "lpad(cast(100000000 + sid % 900 * 1000 as varchar), 9, '0')"  # as the generator's T_MCOaaC.ETA_NUM
    con.execute(f"""create or replace table linkage_subjects as
        with given_stays as (
            select pid, entry, entry + los as discharge, {finess} as finess,
                row_number() over (partition by pid order by hash({s}, sid)) as pick
            from stays
            where pid in (select pid from linkage_members)
        ),
        outsiders as (
            -- a pseudonym as long as the base's, never one of them: the generator's are hexadecimal
            select -1 - o as pid, upper(substr(md5('{s}:outsider:' || o), 1, {length - 1})) || 'Z' as nir,
                1 + {_draw(s, "sex", "o", 2)} as sex, 1925 + {_draw(s, "birth", "o", 90)} as birth_year,
                1 + {_draw(s, "month", "o", 12)} as birth_month,
                lpad(cast(1 + {_draw(s, "dpt", "o", 95)} as varchar), 3, '0') as dpt,
                lpad(cast(1 + {_draw(s, "com", "o", 900)} as varchar), 3, '0') as commune
            from range(cast(round((select count(*) from linkage_members) * {linkage.outsider_share}) as bigint)) t(o)
        ),
        everyone as (
            select persons.pid, persons.nir, persons.sex, persons.birth_year, persons.birth_month, persons.dpt,
                persons.commune, given.entry, given.discharge, given.finess
            from linkage_members members
            join persons using (pid)
            left join given_stays given on given.pid = members.pid and given.pick = 1
                and {_chance(s, "stay", linkage.stay_share, "members.pid")}
            union all
            select pid, nir, sex, birth_year, birth_month, dpt, commune, null, null, null from outsiders
        )
        select 'NS' || lpad(cast(row_number() over (order by hash({s}, pid, 'ns')) as varchar), 7, '0') as ns,
            *,
            {_chance(s, "typo", linkage.date_typo_rate)} as date_typo,
            {_chance(s, "missing", linkage.missing_rate)} as missing_field,
            {_chance(s, "moved", linkage.moved_rate)} as moved,
            pid in (select pid from linkage_twins) as twin
        from everyone""")
    # The cohort as its holder knows it, faults applied
    typo_days = f"cast(1 + {_draw(s, 'typo_days', 'pid', 3)} as integer)"
    missing_which = _draw(s, "missing_which", "pid", 3)
    cohort = f"""select ns as {SUBJECT},
            sex as SEX,
            birth_year as BIRTH_YEAR,
            lpad(cast(case when missing_field and {missing_which} = 0 then null
                 when date_typo and entry is null then 1 + birth_month % 12
                 else birth_month end as varchar), 2, '0') as BIRTH_MONTH,
            case when moved then lpad(cast(1 + {_draw(s, "moved_dpt", "pid", 95)} as varchar), 3, '0')
                 else dpt end as DEPARTMENT,
            case when missing_field and {missing_which} = 1 then null
                 when moved then lpad(cast(1 + (cast(commune as integer) + 450) % 900 as varchar), 3, '0')
                 else commune end as COMMUNE,
            strftime(case when date_typo then entry + {typo_days} else entry end, '{DATE_FORMAT}') as ADMISSION_DATE,
            strftime(case when missing_field and {missing_which} = 2 then null else discharge end, '{DATE_FORMAT}')
                as DISCHARGE_DATE,
            finess as FINESS
        from linkage_subjects order by ns"""
    truth = f"""select ns as {SUBJECT}, case when pid >= 0 then nir end as BEN_NIR_PSA,
            concat_ws('|', {", ".join(f"case when {f} then '{f}' end" for f in FAULTS)}) as FAULTS
        from linkage_subjects order by ns"""
    direct = f"select ns as {SUBJECT}, nir as BEN_NIR_PSA from linkage_subjects order by ns"
    rows = {}
    for name, query in (("direct.csv", direct), ("cohort.csv", cohort), ("truth.csv", truth)):
        path = str(out / name).replace("'", "''")
        written = con.execute(f"copy ({query}) to '{path}' (format csv, delimiter ';', header)").fetchone()
        rows[name] = int(written[0]) if written else 0
    (out / "direct.schema.yml").write_text(DIRECT_SCHEMA, encoding="utf-8")
    (out / "cohort.schema.yml").write_text(COHORT_SCHEMA, encoding="utf-8")
    return rows


DIRECT_SCHEMA = f"""description: The CNAM's answer to the direct protocol, one row per subject of the cohort
identifier: BEN_NIR_PSA
columns:
  - {{name: {SUBJECT}, type: varchar(12), description: "the cohort's subject number"}}
  - {{name: BEN_NIR_PSA, type: varchar(17), description: "the person's pseudonym as the CNAM delivers it"}}
"""

COHORT_SCHEMA = f"""description: What the cohort holder knows of each subject, for the indirect protocol
columns:
  - {{name: {SUBJECT}, type: varchar(12), description: "the cohort's subject number"}}
  - {{name: SEX, type: numeric(1), description: "1 male, 2 female"}}
  - {{name: BIRTH_YEAR, type: numeric(4)}}
  - {{name: BIRTH_MONTH, type: varchar(2), description: "01 to 12"}}
  - {{name: DEPARTMENT, type: varchar(3), description: "residence department, 3 characters"}}
  - {{name: COMMUNE, type: varchar(3), description: "residence commune within the department"}}
  - {{name: ADMISSION_DATE, type: date, description: "admission of one MCO stay, if given"}}
  - {{name: DISCHARGE_DATE, type: date, description: "its discharge"}}
  - {{name: FINESS, type: varchar(9), description: "the FINESS of its hospital"}}
"""


def import_for_projects(database: Path, directory: Path, definitions: list[ProjectDefinition]) -> list[str]:
    """Import, for each linked project among `definitions` that lacks it, the synthetic file its protocol reads
    (FILE_FOR_PROTOCOL) as its linkage's import, as `snds project import` does; the imports made, as text."""
    from snds.ingest.limits import load_limits
    from snds.projects.imports import default_schema_path, import_exists, import_file, load_import_schema
    from snds.warehouse import connect

    done = []
    with connect(database) as con:
        for definition in definitions:
            linkage = definition.linkage
            if linkage is None or import_exists(con, definition.id, linkage.import_name):
                continue
            file = directory / FILE_FOR_PROTOCOL[linkage.protocol]
            report = import_file(
                con,
                definition.id,
                file,
                linkage.import_name,
                load_import_schema(default_schema_path(file)),
                load_limits(),
            )
            done.append(f"{definition.id}: {report.table} from {file.name}, {report.loaded} rows")
    return done
