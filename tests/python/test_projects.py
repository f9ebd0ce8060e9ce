"""Research projects built by dbt on a real DuckDB warehouse, checked against counts made without the models.

The warehouse (`project_warehouse`: a synthetic delivery and the code list IR_CIP_V, validated, both examples
built with their keys) is this module's copy. Each cohort must equal an independent computation
written here in plain SQL straight over the delivery's CSV files (CNAM pseudonyms, the definitions' rules read
from docs/projects.md, never from the generated SQL). A third definition, written only here, uses the rules the
examples do not (every occurrence, a window around the index date, at most, sex, age maximum, a fixed follow-up,
an excluded prefix, an act code set), so that the format is general, not fitted to the examples.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from dbt.contracts.graph.manifest import Manifest

from project_warehouse import PROJECTS, YEARS, Warehouse
from snds import config
from snds.cli import main
from snds.dbt import dbt_database, run_dbt
from snds.keys import store
from snds.projects import cohort_sql
from snds.projects.definition import load_definition
from snds.projects.page import ProjectPageError, read_built
from snds.projects.small_cells import Sum, determined
from snds.synth import truth_path

pytestmark = pytest.mark.slow

START, END = date(2019, 1, 1), date(2020, 12, 31)
PLACEHOLDERS = ("xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXD")
NINE_KEYS = (
    "FLX_DIS_DTD",
    "FLX_TRT_DTD",
    "FLX_EMT_TYP",
    "FLX_EMT_NUM",
    "FLX_EMT_ORD",
    "ORG_CLE_NUM",
    "DCT_ORD_NUM",
    "PRS_ORD_NUM",
    "REM_TYP_AFF",
)
RET_CODES = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET")
THRESHOLD = 11  # both examples' small-cell threshold


@pytest.fixture(scope="module")
def warehouse(projects_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return projects_warehouse.copy(tmp_path_factory.mktemp("projects"))


# Plain SQL over the delivery's files, from the definitions' semantics (docs/projects.md).
def _stays(w: Warehouse, diagnosis: str) -> str:
    """Quality-filtered MCO stays of real persons with a diagnosis matching `diagnosis` (SQL over b and d): person,
    admission (`day`) and discharge (`end_day`)."""
    parts = []
    for year in YEARS:
        yy = f"{year % 100:02d}"
        b, c, d = (w.csv(f"T_MCO{yy}{s}") for s in "BCD")
        filters = " and ".join(f"c.{r} = '0'" for r in RET_CODES)
        parts.append(
            f"select c.NIR_ANO_17 as person, cast(strptime(c.EXE_SOI_DTD, '%d%b%Y:%H:%M:%S') as date) as day, "
            f"cast(strptime(c.EXE_SOI_DTF, '%d%b%Y:%H:%M:%S') as date) as end_day "
            f"from {b} b join {c} c on b.ETA_NUM = c.ETA_NUM and b.RSA_NUM = c.RSA_NUM "
            f"where {filters} and b.GRG_GHM not like '90%' and c.NIR_ANO_17 not in {PLACEHOLDERS} "
            f"and ({diagnosis.format(d=d)})"
        )
    return " union all ".join(parts)


def _persons(w: Warehouse) -> str:
    return (
        "select BEN_NIR_PSA as person, cast(BEN_NAI_ANN as integer) as birth_year, "
        "cast(BEN_NAI_MOI as integer) as birth_month, cast(BEN_SEX_COD as integer) as sex, "
        "nullif(cast(strptime(BEN_DCD_DTE, '%d/%m/%Y') as date), date '1600-01-01') as death "
        f"from {w.csv('IR_BEN_R')}"
    )


def _dispensings(w: Warehouse, atc_prefix: str) -> str:
    join = " and ".join(f"f.{k} = p.{k}" for k in NINE_KEYS)
    return (
        "select p.BEN_NIR_PSA as person, cast(strptime(p.EXE_SOI_DTD, '%d/%m/%Y') as date) as day "
        f"from {w.csv('ER_PHA_F')} f join {w.csv('ER_PRS_F')} p on {join} "
        f"join {w.csv('IR_CIP_V', 'CODES')} c on f.PHA_PRS_IDE = c.PHA_PRS_IDE "
        f"where c.PHA_ATC_CLA like '{atc_prefix}%' and coalesce(p.DPN_QLF, '0') <> '71'"
    )


def _age(index: str) -> str:
    return f"year({index}) - birth_year - case when month({index}) < birth_month then 1 else 0 end"


def _expected_t2d(w: Warehouse) -> list[tuple]:
    e11 = "b.DGN_PAL like 'E11%' or b.DGN_REL like 'E11%' or exists (select 1 from {d} d where d.ETA_NUM = b.ETA_NUM"
    e11 += " and d.RSA_NUM = b.RSA_NUM and d.ASS_DGN like 'E11%')"
    return w.query(f"""
        with persons as ({_persons(w)}),
        stays as ({_stays(w, e11)}),
        alds as (
            select BEN_NIR_PSA as person, cast(strptime(IMB_ALD_DTD, '%d/%m/%Y') as date) as start_day,
                coalesce(cast(strptime(IMB_ALD_DTF, '%d/%m/%Y') as date), start_day) as end_day
            from {w.csv("IR_IMB_R")} where MED_MTF_COD like 'E11%'
        ),
        entries as (
            select person, day from stays where day between date '{START}' and date '{END}'
            union all
            select person, greatest(start_day, date '{START}') from alds
            where start_day <= date '{END}' and end_day >= date '{START}'
        ),
        firsts as (select person, min(day) as index_day from entries group by person),
        a10 as (select * from ({_dispensings(w, "A10")}) where day between date '{START}' and date '{END}'),
        two_a10 as (
            select distinct first_one.person from a10 first_one join a10 later_one
                on first_one.person = later_one.person and later_one.day between first_one.day and first_one.day + 365
            group by first_one.person, first_one.day having count(*) >= 2
        )
        select index_day, least(coalesce(death, date '{END}'), date '{END}') as end_day
        from firsts join persons using (person)
        where person in (select person from two_a10) and {_age("index_day")} >= 18
        order by 1, 2
    """)


def _incident_mi(w: Warehouse) -> str:
    """CTEs `mi`, every I21 stay the base holds, and `incident`, those admitted in the period with none in the 365
    days before."""
    return f"""
        mi as ({_stays(w, "b.DGN_PAL like 'I21%'")}),
        incident as (
            select person, day from mi candidate
            where day between date '{START}' and date '{END}' and not exists (
                select 1 from mi earlier where earlier.person = candidate.person
                    and earlier.day between candidate.day - 365 and candidate.day - 1)
        )"""


def _expected_mi(w: Warehouse) -> list[tuple]:
    return w.query(f"""
        with persons as ({_persons(w)}),
        {_incident_mi(w)},
        firsts as (select person, min(day) as index_day from incident group by person)
        select index_day, least(coalesce(death, date '{END}'), date '{END}') as end_day
        from firsts join persons using (person) order by 1, 2
    """)


def _mi_entries(w: Warehouse, select: str) -> list[tuple]:
    """`select` over CTEs `entries`, each I21 stay admitted in the period at its admission (P_MI's
    `starts_in_study`, docs/projects.md), `failing`, the entries with an I21 stay in the 365 days before, and
    `incident`."""
    return w.query(f"""
        with {_incident_mi(w)},
        entries as (
            select distinct person, day as index_day from mi where day between date '{START}' and date '{END}'
        ),
        failing as (
            select * from entries where exists (select 1 from mi earlier where earlier.person = entries.person
                and earlier.day between entries.index_day - 365 and entries.index_day - 1)
        )
        {select}
    """)


def _cohort(w: Warehouse, project: str) -> list[tuple]:
    schema = f"project_{project.lower()}"
    return w.query(f"select index_date, end_of_followup from {schema}.cohort order by 1, 2")


def test_p_t2d_equals_an_independent_count(warehouse: Warehouse) -> None:
    expected = _expected_t2d(warehouse)
    assert len(expected) >= 20, "too small a cohort to prove anything"
    assert _cohort(warehouse, "P_T2D") == expected


def test_p_mi_equals_an_independent_count(warehouse: Warehouse) -> None:
    expected = _expected_mi(warehouse)
    assert len(expected) >= 10
    assert _cohort(warehouse, "P_MI") == expected


def test_p_mi_exclusion_removes_the_persons_whose_i21_stays_follow_an_earlier_one(warehouse: Warehouse) -> None:
    """The rule 'no I21 stay in the 365 days before' removes persons, not only candidates.

    Within delivered years 2019-2020 a person's earliest I21 stay admitted in the period always passes the rule, so
    the generator plants second I21 stays (truth: recurrent_myocardial_infarction): 'before', admitted in December
    2018 and discharged in January 2019 (filed in T_MCO19: not an entry, since it starts before the period), which
    makes the person's 2019 stay non-incident and removes the person; 'within_365_days', which removes a later
    candidate only; 'over_365_days', which removes none.
    """
    w = warehouse
    planted = json.loads(truth_path(w.deliveries / "D2019").read_text(encoding="utf-8"))["stories"]
    kinds = planted["recurrent_myocardial_infarction"]["by_kind"]
    entered = {p for (p,) in _mi_entries(w, "select distinct person from entries")}
    incident = {p for (p,) in _mi_entries(w, "select distinct person from incident")}
    failing = {p for (p,) in _mi_entries(w, "select distinct person from failing")}
    failing_candidates = _mi_entries(w, "select count(*) from failing")[0][0]
    excluded = entered - incident
    assert excluded == set(kinds["before"]) and len(excluded) >= 1
    assert set(kinds["within_365_days"]) <= failing & incident and kinds["within_365_days"]
    assert not set(kinds["over_365_days"]) & failing
    steps = w.query("select step, persons, persons_excluded from project_p_mi.attrition order by step")
    assert steps == [(1, len(entered), 0), (2, len(entered) - len(excluded), len(excluded))]
    assert steps[-1][1] == len(_cohort(w, "P_MI"))
    assert (
        w.query("select count(*) from keys.p_mi__candidates where rule_1_occurrences > 0")[0][0] == failing_candidates
    )


def test_attrition_counts_each_rule_in_order(warehouse: Warehouse) -> None:
    steps = warehouse.query("select step, persons, persons_excluded from project_p_t2d.attrition order by step")
    assert [s[0] for s in steps] == [1, 2, 3]
    assert all(later[1] == earlier[1] - later[2] for earlier, later in itertools.pairwise(steps))
    assert steps[-1][1] == len(_cohort(warehouse, "P_T2D")) and steps[0][1] > steps[-1][1]


def test_no_platform_or_cnam_pseudonym_in_any_project_table(warehouse: Warehouse) -> None:
    """Project tables hold NUM_ENQ only: no value of any project table is a platform or CNAM pseudonym."""
    with duckdb.connect(str(warehouse.database)) as con:
        known = {v for (v,) in con.execute("select person_id from marts.persons").fetchall()}
        known |= {v for (v,) in con.execute(f"select BEN_NIR_PSA from {warehouse.csv('IR_BEN_R')}").fetchall()}
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema like 'project_%' and data_type like 'VARCHAR%'"
        ).fetchall()
        leaked = [
            f"{s}.{t}.{c}"
            for s, t, c in columns
            if known & {v for (v,) in con.execute(f'select distinct "{c}" from {s}."{t}"').fetchall()}
        ]
    assert len(known) > 1500 and len(columns) > 10 and not leaked, leaked


def test_the_two_projects_pseudonyms_of_one_person_never_match(warehouse: Warehouse, dbt_manifest: Manifest) -> None:
    """Every person of the base, pseudonymised with each example project's key: the two never share a NUM_ENQ."""
    pseudonyms = {}
    for project in ("P_T2D", "P_MI"):
        sql = f"{{{{ project_pseudonyms('{project}', ref('persons'), 'person_id') }}}}"
        with dbt_database(warehouse.database):
            run = run_dbt(
                "compile", "--no-populate-cache", "--no-write-json", "--inline", sql,
                target_path=warehouse.target, manifest=dbt_manifest,
            )  # fmt: skip
        pseudonyms[project] = dict(warehouse.query(run.result.result.results[0].node.compiled_code))
    t2d, mi = pseudonyms["P_T2D"], pseudonyms["P_MI"]
    assert len(t2d) == len(mi) >= 1000 and t2d.keys() == mi.keys()
    assert all(t2d[person] != mi[person] for person in t2d)
    assert not set(t2d.values()) & set(mi.values())
    cohort = {v for (v,) in warehouse.query("select NUM_ENQ from project_p_t2d.cohort")}
    assert cohort <= set(t2d.values()) and not cohort & set(mi.values())


THIRD = """
id: P_X
title: Women given A10 with an E11 stay around the dispensing and at most one I21 stay soon after
authorisation: {reference: TEST-1, holder: tests, granted: 2026-01-01, expires: 2099-12-31}
perimeter:
  tables:
    IR_BEN_R: {columns: [BEN_SEX_COD]}
study: {start: 2019-03-01, end: 2020-10-31}
cohort:
  code_sets:
    antidiabetics: {system: atc, prefixes: [A10]}
    t2d_but_unspecified: {system: icd10, prefixes: [E11], exclude: [E119]}
    mi: {system: icd10, codes: [I210, I211, I212, I213, I214, I219]}
  entry:
    occurrence: every
    criteria:
      - {code_set: antidiabetics, domain: dispensing}
  inclusion:
    - name: an E11 stay (E119 aside) within 400 days around the dispensing
      criterion: {code_set: t2d_but_unspecified, domain: diagnosis, sources: [MCO], positions: [principal]}
      at_least: 1
      window: {from_days: -400, to_days: 400}
    - name: at most one I21 stay in the 200 days from the dispensing
      criterion: {code_set: mi, domain: diagnosis, sources: [MCO]}
      at_most: 1
      window: {from_days: 0, to_days: 200}
  age: {max: 75}
  sex: [2]
  follow_up: {days: 90}
outputs:
  extracts: []
"""
MI_CODES = "('I210', 'I211', 'I212', 'I213', 'I214', 'I219')"


def test_a_definition_written_only_here_equals_an_independent_count(
    warehouse: Warehouse, tmp_path: Path, dbt_manifest: Manifest
) -> None:
    (tmp_path / "P_X.yml").write_text(THIRD, encoding="utf-8")
    definition = load_definition(tmp_path / "P_X.yml")
    candidates = cohort_sql.candidates_sql(definition)
    selected = cohort_sql.selected_sql(definition).replace("{{ ref('p_x__candidates') }}", "p_x_candidates")
    with dbt_database(warehouse.database):
        run = run_dbt(
            "compile", "--no-populate-cache", "--no-write-json", "--inline", candidates,
            target_path=warehouse.target, manifest=dbt_manifest,
        )  # fmt: skip
    compiled = run.result.result.results[0].node.compiled_code
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute(f"create temp table p_x_candidates as {compiled}")
        got = sorted(con.execute(f"select index_date, end_of_followup from ({selected})").fetchall())
    w, start, end = warehouse, date(2019, 3, 1), date(2020, 10, 31)
    any_position = (
        f"b.DGN_PAL in {MI_CODES} or b.DGN_REL in {MI_CODES} or exists (select 1 from {{d}} d "
        f"where d.ETA_NUM = b.ETA_NUM and d.RSA_NUM = b.RSA_NUM and d.ASS_DGN in {MI_CODES})"
    )
    expected = w.query(f"""
        with persons as ({_persons(w)}),
        e11 as ({_stays(w, "b.DGN_PAL like 'E11%' and b.DGN_PAL not like 'E119%'")}),
        mi as ({_stays(w, any_position)}),
        candidates as (
            select distinct person, day as index_day from ({_dispensings(w, "A10")})
            where day between date '{start}' and date '{end}'
        ),
        kept as (
            select candidates.person, candidates.index_day
            from candidates join persons using (person)
            where exists (select 1 from e11 where e11.person = candidates.person
                    and e11.day between candidates.index_day - 400 and candidates.index_day + 400)
                and (select count(*) from mi where mi.person = candidates.person
                    and mi.day between candidates.index_day and candidates.index_day + 200) <= 1
                and sex = 2 and {_age("candidates.index_day")} <= 75
        ),
        firsts as (select person, min(index_day) as index_day from kept group by person)
        select index_day, least(coalesce(death, index_day + 90), index_day + 90)
        from firsts join persons using (person) order by 1, 2
    """)
    assert len(expected) >= 5, "too small a cohort to prove anything"
    assert got == expected


def test_each_build_is_recorded_in_the_project_schema_and_the_audit_trail(warehouse: Warehouse) -> None:
    rows = warehouse.query(
        "select item_kind, item_name, row_count, definition_sha256, dbt_invocation_id from project_p_t2d.build"
    )
    outputs = {name: count for kind, name, count, *_ in rows if kind == "output"}
    assert {name for kind, name, *_ in rows if kind == "delivery"} == {"CODES", "D2019"}
    assert outputs["cohort"] == len(_cohort(warehouse, "P_T2D")) > 0
    assert outputs["ER_PHA_F"] == warehouse.query("select count(*) from project_p_t2d.ER_PHA_F")[0][0] > 0
    extracts = {"ER_PHA_F", "ER_PHA_F_2019", "ER_PHA_F_2020", "T_MCO19B", "T_MCO20B", "IR_BEN_R"}
    assert set(outputs) == {"cohort", "attrition", "profile"} | extracts
    sha256, invocation = {r[3] for r in rows}, {r[4] for r in rows}
    assert sha256 == {load_definition(config.PROJECT_ROOT / "projects" / "P_T2D.yml").sha256} and len(invocation) == 1
    events = warehouse.query("select OBJECT, OUTCOME, DETAIL from audit.events where ACTION = 'project.build'")
    details = {obj: json.loads(detail) for obj, outcome, detail in events if outcome == "built"}
    assert set(details) == set(PROJECTS)
    assert details["P_T2D"]["dbt_invocation_id"] in invocation and details["P_T2D"]["definition_sha256"] in sha256


def test_snds_project_build_checks_then_builds_the_project_folder_only(warehouse: Warehouse, tmp_path: Path) -> None:
    runner = CliRunner()
    unsafe = runner.invoke(main, ["project", "build", "P-1", "--database", str(warehouse.database)])
    missing = runner.invoke(main, ["project", "build", "P_NONE", "--database", str(warehouse.database)])
    assert (unsafe.exit_code, missing.exit_code) == (2, 2) and "no definition" in missing.output
    no_key = tmp_path / "empty.duckdb"
    with duckdb.connect(str(no_key)) as con:
        store.create_key_store(con)
    refused = runner.invoke(main, ["project", "build", "P_MI", "--database", str(no_key)])
    assert refused.exit_code == 1 and "snds keys init --project P_MI" in refused.output
    database, pages = ["--database", str(warehouse.database)], ["--report-dir", str(tmp_path)]
    built = runner.invoke(main, ["project", "build", "P_MI", *database, *pages])
    assert built.exit_code == 0, built.output
    again = runner.invoke(main, ["project", "build", "P_MI", *database, *pages])
    assert again.exit_code == 0 and "its slice of the dbt project unchanged" in again.output, again.output
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=config.PROJECT_ROOT, capture_output=True, text=True)
    recorded = warehouse.query("select distinct git_commit from project_p_mi.build")
    assert recorded == [(commit.stdout.strip(),)]


def _published_sums(page: dict) -> tuple[dict, list[Sum]]:
    """The page's counts (None: suppressed) and the sums that tie them, read from the page as a reader would."""
    counts: dict = {}
    sums = []
    steps = page["attrition"]
    for step in steps:
        counts[("persons", step["step"])] = step["persons"]
    for before, step in itertools.pairwise(steps):
        counts[("excluded", step["step"])] = step["excluded"]
        sums.append(Sum(("persons", before["step"]), (("persons", step["step"]), ("excluded", step["step"]))))
    cohort, profile = ("persons", steps[-1]["step"]), page["profile"]
    years = [("year", row["year"]) for row in profile["by_year"]]
    counts |= {("year", row["year"]): row["persons"] for row in profile["by_year"]}
    sexes, bands = profile["sexes"], [row["age_band"] for row in profile["by_sex_and_age_band"]]
    counts |= {("sex", sex): n for sex, n in profile["by_sex"].items()}
    for row in profile["by_sex_and_age_band"]:
        counts[("band", row["age_band"])] = row["all"]
        counts |= {("cell", sex, row["age_band"]): n for sex, n in row["persons"].items()}
    sums += [Sum(cohort, tuple(years)), Sum(cohort, tuple(("sex", s) for s in sexes))]
    sums += [Sum(cohort, tuple(("band", b) for b in bands))]
    sums += [Sum(("sex", s), tuple(("cell", s, b) for b in bands)) for s in sexes]
    sums += [Sum(("band", b), tuple(("cell", s, b) for s in sexes)) for b in bands]
    return counts, sums


def test_the_project_page_shows_no_small_count_and_none_can_be_recomputed(warehouse: Warehouse, tmp_path: Path) -> None:
    runner = CliRunner()
    for project in PROJECTS:
        options = ["--database", str(warehouse.database), "--report-dir", str(tmp_path)]
        done = runner.invoke(main, ["project", "report", project, *options])
        assert done.exit_code == 0, done.output
        page = json.loads((tmp_path / f"{project}.project.json").read_text(encoding="utf-8"))
        html = (tmp_path / f"{project}.project.html").read_text(encoding="utf-8")
        exact = warehouse.query(f"select step, persons, persons_excluded from project_{project.lower()}.attrition")
        shown = {(s["step"], s["persons"], s["excluded"]) for s in page["attrition"]}
        for step, persons, excluded in exact:  # what is shown is exact; what is small is never shown
            assert any(s == step and p in (None, persons) and e in (None, excluded) for s, p, e in shown)
            assert not 0 < persons < THRESHOLD or (step, None) in {(s, p) for s, p, _ in shown}
        counts, sums = _published_sums(page)
        extracts = [e["rows"] for e in page["extracts"]]
        assert all(n is None or n == 0 or n >= THRESHOLD for n in [*counts.values(), *extracts])
        assert not determined(sums, frozenset(c for c, n in counts.items() if n is None)), project
        for s in sums:  # what is shown adds up
            if s.total is not None and all(counts[c] is not None for c in s.cells):
                assert counts[s.total] == sum(counts[p] for p in s.parts)
        pseudonyms = {n for (n,) in warehouse.query(f"select NUM_ENQ from project_{project.lower()}.cohort")}
        assert not any(p in html for p in pseudonyms) and "Provenance" in html
    mi = {s["step"]: s for s in json.loads((tmp_path / "P_MI.project.json").read_text())["attrition"]}
    assert mi[2]["excluded"] is None and (mi[1]["persons"] is None or mi[2]["persons"] is None)  # 2 excluded


def test_the_page_of_a_definition_changed_since_its_build_is_refused(warehouse: Warehouse) -> None:
    definition = load_definition(config.PROJECT_ROOT / "projects" / "P_T2D.yml")
    with pytest.raises(ProjectPageError, match=r"built from another version of projects/P_T2D\.yml"):
        read_built(warehouse.database, dataclasses.replace(definition, sha256="0" * 64))
