"""The build's own enforcement of a research project's rules (issue 11, item 4): `macros/access/project_guard.sql`.

A copy of the dbt project (cut to the staging tables the rest reads: pruned_project.py), made once for the module
in a temporary directory, holds hostile fixtures: three extra project definitions (`P_HOLD`, whose folder holds the
hand-written cases, one subfolder each; `P_OTHER`, another project, whose perimeter is then hand-edited to two
identifier kinds; `P_GUARD`, an expired authorisation), generated into the copy as `snds project generate` does.
The copy is parsed once; each case runs a plain `dbt build --select path:models/projects/<folder>` in-process, which
must fail with a message naming the project, the model and the offending item, and leave no relation behind. A
compliant hand-written extract is built: the guard does not block legitimate custom SQL. Nothing is written into the
repository's own folders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import duckdb
import pytest
from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest

from pruned_project import copy_pruned
from snds.dbt import dbt_database
from snds.dbt_slice import cut_slice
from snds.projects.build import generate_all, write_generated
from snds.projects.generate import PERIMETERS_MACRO

pytestmark = pytest.mark.slow

GUARD_FAILED = "research project rules broken, nothing is built"

# One authorisation valid until 2099; the cohort's rule is irrelevant here (nothing but case h is built).
DEFINITION = """\
id: {id}
title: {title}
authorisation: {{reference: {reference}, holder: Test unit, granted: {granted}, expires: {expires}}}
perimeter:
  identifier_kind: care_date
  tables:
    IR_BEN_R: {{columns: [BEN_NIR_PSA, BEN_SEX_COD, BEN_NAI_ANN, BEN_DCD_DTE]}}
    T_MCOaaB: {{columns: [ETA_NUM, RSA_NUM], years: [2019]}}
study: {{start: 2019-01-01, end: 2019-12-31}}
cohort:
  code_sets:
    mi: {{system: icd10, prefixes: [I21]}}
  entry:
    criteria:
      - {{code_set: mi, domain: diagnosis}}
outputs:
  extracts: [IR_BEN_R]
"""
DEFINITIONS = {
    "P_HOLD": DEFINITION.format(
        id="P_HOLD", title="Hand-written models", reference="CNIL TEST-HOLD", granted="2020-01-01", expires="2099-12-31"
    ),
    "P_OTHER": DEFINITION.format(
        id="P_OTHER", title="Another project", reference="CNIL TEST-OTHER", granted="2020-01-01", expires="2099-12-31"
    ),
    "P_GUARD": DEFINITION.format(
        id="P_GUARD", title="Expired", reference="CNIL TEST-EXPIRED", granted="2019-01-01", expires="2020-06-30"
    ),
}


def _contracted(model: str, columns: dict[str, str], tests: dict[str, str] | None = None) -> str:
    """A properties file: `model` with an enforced contract on `columns` (name: type), and a `generalised` test
    (for the table given in `tests`) on some of them."""
    lines = ["version: 2", "models:", f"  - name: {model}", "    config:", "      contract: {enforced: true}"]
    lines.append("    columns:")
    for name, data_type in columns.items():
        lines.append(f"      - {{name: {name}, data_type: '{data_type}'}}")
        if tests and name in tests:
            lines[-1] = lines[-1][:-1] + ", data_tests: [" + tests[name] + "]}"
    return "\n".join(lines) + "\n"


def _generalised(table: str, **config: str) -> str:
    extra = "".join(f", config: {{{k}: '{v}'}}" for k, v in config.items())
    return f"{{generalised: {{arguments: {{table_name: {table}}}{extra}}}}}"


PROJECT_TABLE = "{{ config(schema='project_p_hold', materialized='table'%s) }}\n"
RESTRICTED = "{{ config(schema='keys', materialized='table') }}\n"
EXTRACT_OF = ", meta={'snds_extract': '%s'}"

# Each case: its folder under models/projects/p_hold/, its files.
CASES: dict[str, dict[str, str]] = {
    # (i) a model that writes into the base's schema (dbt itself refuses a second snds.IR_BEN_R), and one that would
    # replace the key store (a source, which dbt does not guard)
    "i_schema": {"hold_i_base.sql": "{{ config(schema='snds', materialized='table') }}\nselect 1 as BEN_SEX_COD\n"},
    "i_keys": {"hold_i_store.sql": RESTRICTED.replace("'table'", "'table', alias='key_material'") + "select 1 as x\n"},
    # (a) custom cohort logic that reads a table outside the perimeter: through staging, and raw from landing
    "a_table": {
        "hold_a_prescribers.sql": RESTRICTED
        + "select distinct BEN_NIR_PSA as person_id\nfrom {{ ref('ER_PRS_F') }}\nwhere PSP_SPE_COD = 12\n",
    },
    "a_source": {
        "hold_a_landing.sql": RESTRICTED
        + "select BEN_NIR_PSA as person_id\nfrom {{ source('landing', 'IR_BEN_R') }}\n",
    },
    # (b) an extract with a column of its table that the perimeter does not list, or of a year it does not list
    "b_column": {
        "hold_b_residence.sql": PROJECT_TABLE % (EXTRACT_OF % "IR_BEN_R")
        + "select NUM_ENQ, BEN_SEX_COD, BEN_RES_COM\nfrom {{ ref('p_hold__ir_ben_r') }}\n",
        "_hold_b_residence.yml": _contracted(
            "hold_b_residence", {"NUM_ENQ": "varchar(17)", "BEN_SEX_COD": "numeric(1)", "BEN_RES_COM": "varchar(3)"}
        ),
    },
    "b_year": {
        "hold_b_stays_2020.sql": PROJECT_TABLE % (EXTRACT_OF % "T_MCO20B")
        + "select cast(null as varchar(17)) as NUM_ENQ, ETA_NUM, RSA_NUM\nfrom {{ ref('T_MCO20B') }}\n",
        "_hold_b_stays_2020.yml": _contracted(
            "hold_b_stays_2020", {"NUM_ENQ": "varchar(17)", "ETA_NUM": "varchar(9)", "RSA_NUM": "varchar(10)"}
        ),
    },
    # (c) an extract that outputs a death date (the project sees care dates only) without generalising it, and one
    # whose `generalised` test is only a warning
    "c_untested": {
        "hold_c_deaths.sql": PROJECT_TABLE
        % (EXTRACT_OF % "IR_BEN_R")
        + "select pseudonyms.NUM_ENQ, beneficiaries.BEN_DCD_DTE\n"
        "from {{ ref('IR_BEN_R') }} as beneficiaries\n"
        "inner join {{ ref('p_hold__pseudonyms') }} as pseudonyms\n"
        "    on beneficiaries.BEN_NIR_PSA = pseudonyms.platform_pseudonym\n",
        "_hold_c_deaths.yml": _contracted("hold_c_deaths", {"NUM_ENQ": "varchar(17)", "BEN_DCD_DTE": "date"}),
    },
    "c_warning": {
        "hold_c_deaths_warned.sql": PROJECT_TABLE
        % (EXTRACT_OF % "IR_BEN_R")
        + "select pseudonyms.NUM_ENQ, beneficiaries.BEN_DCD_DTE\n"
        "from {{ ref('IR_BEN_R') }} as beneficiaries\n"
        "inner join {{ ref('p_hold__pseudonyms') }} as pseudonyms\n"
        "    on beneficiaries.BEN_NIR_PSA = pseudonyms.platform_pseudonym\n",
        "_hold_c_deaths_warned.yml": _contracted(
            "hold_c_deaths_warned",
            {"NUM_ENQ": "varchar(17)", "BEN_DCD_DTE": "date"},
            {"BEN_DCD_DTE": _generalised("IR_BEN_R", severity="warn")},
        ),
    },
    # (d) a table of the project schema holding the platform pseudonym or the CNAM's
    "d_person_id": {
        "hold_d_members.sql": PROJECT_TABLE % "" + "select person_id, index_date\nfrom {{ ref('p_hold__selected') }}\n",
        "_hold_d_members.yml": _contracted("hold_d_members", {"person_id": "varchar(17)", "index_date": "date"}),
    },
    "d_ben_nir_psa": {
        "hold_d_linkage.sql": PROJECT_TABLE
        % ""
        + "select pseudonyms.NUM_ENQ, pseudonyms.platform_pseudonym as BEN_NIR_PSA\n"
        "from {{ ref('p_hold__pseudonyms') }} as pseudonyms\n",
        "_hold_d_linkage.yml": _contracted("hold_d_linkage", {"NUM_ENQ": "varchar(17)", "BEN_NIR_PSA": "varchar(17)"}),
    },
    # (e) a model that reads another project's cohort
    "e_other_project": {
        "hold_e_shared.sql": PROJECT_TABLE % "" + "select NUM_ENQ, index_date\nfrom {{ ref('p_other__cohort') }}\n",
        "_hold_e_shared.yml": _contracted("hold_e_shared", {"NUM_ENQ": "varchar(17)", "index_date": "date"}),
    },
    # (g) a table of the project schema whose columns are not declared
    "g_no_contract": {
        "hold_g_counts.sql": PROJECT_TABLE % "" + "select count(*) as persons\nfrom {{ ref('p_hold__cohort') }}\n",
    },
    # (h) compliant custom SQL: an extract of authorised columns, the person as NUM_ENQ, the death date generalised
    # (and tested so); the birth year (kept as delivered by the catalog's rule) tested too
    "h_compliant": {
        "hold_h_beneficiaries.sql": PROJECT_TABLE % (EXTRACT_OF % "IR_BEN_R") + "select\n"
        "    pseudonyms.NUM_ENQ,\n"
        "    beneficiaries.BEN_SEX_COD,\n"
        "    {{ generalise('IR_BEN_R', 'BEN_NAI_ANN', 'beneficiaries.BEN_NAI_ANN', keep_kind='care_date') }}"
        " as BEN_NAI_ANN,\n"
        "    {{ generalise('IR_BEN_R', 'BEN_DCD_DTE', 'beneficiaries.BEN_DCD_DTE', keep_kind='care_date') }}"
        " as BEN_DCD_DTE\n"
        "from {{ ref('IR_BEN_R') }} as beneficiaries\n"
        "inner join {{ ref('p_hold__pseudonyms') }} as pseudonyms\n"
        "    on beneficiaries.BEN_NIR_PSA = pseudonyms.platform_pseudonym\n",
        "_hold_h_beneficiaries.yml": _contracted(
            "hold_h_beneficiaries",
            {"NUM_ENQ": "varchar(17)", "BEN_SEX_COD": "numeric(1)", "BEN_NAI_ANN": "varchar(4)", "BEN_DCD_DTE": "date"},
            {"BEN_NAI_ANN": _generalised("IR_BEN_R"), "BEN_DCD_DTE": _generalised("IR_BEN_R")},
        ),
    },
}


@dataclass(frozen=True)
class GuardedCopy:
    root: Path
    target: Path
    database: Path
    manifest: Manifest
    sliced: bool = False  # build with the slice `snds project build` hands dbt, not the whole parsed project

    def build(self, *folders: str) -> dbtRunnerResult:
        """A plain `dbt build` of folders of models/projects/, as an analytics engineer runs it (without writing
        manifest.json again: three seconds a build); or, `sliced`, as `snds project build` runs it."""
        selection = [f"path:models/projects/{f}" for f in folders]
        argv = ["build", "--select", *selection, "--no-write-json", "--project-dir", str(self.root)]
        argv += ["--profiles-dir", str(self.root / "profiles"), "--target-path", str(self.target)]
        manifest = self.manifest
        if self.sliced:
            manifest = cut_slice(manifest, *(PurePosixPath("models/projects") / f for f in folders))
            manifest.build_flat_graph()
        with dbt_database(self.database):
            return dbtRunner(manifest=manifest).invoke(argv)

    def relations(self) -> set[str]:
        with duckdb.connect(str(self.database)) as con:
            rows = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        return {f"{schema}.{name}".lower() for schema, name in rows}


def _two_identifier_kinds(root: Path, project_id: str) -> None:
    """A hand-edited perimeters macro: the project's identifier_kind becomes a list of two kinds."""
    path = root / PERIMETERS_MACRO
    text = path.read_text(encoding="utf-8")
    pattern = rf'("{project_id}": \{{.*?"identifier_kind": )"care_date"'
    edited, count = re.subn(pattern, r'\1["care_date", "death"]', text, count=1, flags=re.DOTALL)
    assert count == 1, "the perimeters macro no longer has the expected layout"
    path.write_text(edited, encoding="utf-8")


def _upstream_of_the_compliant_extract(database: Path) -> None:
    """What case h reads, as the base and the project's pseudonyms would hold it: one dead person in the cohort."""
    with duckdb.connect(str(database)) as con:
        con.execute("create schema snds")
        con.execute(
            "create table snds.IR_BEN_R (BEN_NIR_PSA varchar(17), BEN_SEX_COD numeric(1), BEN_NAI_ANN varchar(4),"
            " BEN_DCD_DTE date)"
        )
        con.execute(
            "insert into snds.IR_BEN_R values ('A0000000000000001', 2, '1950', date '2019-05-17'),"
            " ('A0000000000000002', 1, '1962', null)"
        )
        con.execute("create schema keys")
        con.execute("create table keys.p_hold__pseudonyms (platform_pseudonym varchar(17), NUM_ENQ varchar(17))")
        con.execute("insert into keys.p_hold__pseudonyms values ('A0000000000000001', 'E0000000000000001')")


@pytest.fixture(params=["dbt build", "snds project build"])
def guarded(request: pytest.FixtureRequest, guarded_copy: GuardedCopy) -> GuardedCopy:
    """Each case built both ways: a plain `dbt build` of the whole parsed project, and the project's slice that
    `snds project build` hands dbt (snds.dbt_slice): the guard must refuse alike."""
    return replace(guarded_copy, sliced=request.param == "snds project build")


@pytest.fixture(scope="module")
def guarded_copy(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Manifest) -> GuardedCopy:
    base = tmp_path_factory.mktemp("project_guard")
    root, target, database = base / "project", base / "target", base / "scratch.duckdb"
    kept = copy_pruned(root, dbt_manifest)
    assert {"ER_PRS_F", "IR_BEN_R", "T_MCO20B"} <= kept  # what the cases read
    for project_id, text in DEFINITIONS.items():
        (root / "projects" / f"{project_id}.yml").write_text(text, encoding="utf-8")
    write_generated(root, generate_all(root / "projects"))
    _two_identifier_kinds(root, "P_OTHER")
    for case, files in CASES.items():
        folder = root / "models" / "projects" / "p_hold" / case
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
    outside = root / "models" / "elsewhere"  # (j) a model outside models/projects/ writing into a project schema
    outside.mkdir()
    (outside / "hold_j_outside.sql").write_text(PROJECT_TABLE % "" + "select 1 as x\n", encoding="utf-8")
    _upstream_of_the_compliant_extract(database)
    argv = ["parse", "--project-dir", str(root), "--profiles-dir", str(root / "profiles"), "--target-path", str(target)]
    with dbt_database(database):
        parsed = dbtRunner().invoke(argv)
    assert parsed.success, parsed.exception
    return GuardedCopy(root, target, database, parsed.result)


def _failure(result: dbtRunnerResult) -> str:
    """Everything dbt said about the failure: the exception, and each hook or node result's message."""
    parts = [str(result.exception or "")]
    for node_result in getattr(result.result, "results", None) or []:
        parts.append(f"{node_result.node.name}: {node_result.status}: {node_result.message}")
    return "\n".join(parts)


def assert_refused(guarded: GuardedCopy, folder: str, *expected: str, models: tuple[str, ...] = ()) -> str:
    """`dbt build` of the folder fails in the guard with a message holding every `expected` text, and none of
    `models` (schema.name) exists afterwards."""
    before = guarded.relations()
    result = guarded.build(folder)
    message = _failure(result)
    assert not result.success, message
    assert GUARD_FAILED in message, message
    for text in expected:
        assert text in message, f"{text!r} not in:\n{message}"
    after = guarded.relations()
    assert after == before, f"the build wrote {sorted(after - before)}"
    for model in models:
        assert model.lower() not in after
    return message


def test_a_model_reading_a_table_outside_the_perimeter_is_refused(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/a_table",
        "project P_HOLD, model hold_a_prescribers: depends on snds.ER_PRS_F, a table outside the perimeter",
        models=("keys.hold_a_prescribers",),
    )
    assert_refused(
        guarded,
        "p_hold/a_source",
        "project P_HOLD, model hold_a_landing: depends on source IR_BEN_R, outside the perimeter",
        models=("keys.hold_a_landing",),
    )


def test_an_extract_column_or_year_outside_the_perimeter_is_refused(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/b_column",
        "project P_HOLD, model hold_b_residence: column BEN_RES_COM of IR_BEN_R is outside the perimeter",
        models=("project_p_hold.hold_b_residence",),
    )
    message = assert_refused(
        guarded,
        "p_hold/b_year",
        "project P_HOLD, model hold_b_stays_2020: extract of T_MCO20B, a table outside the perimeter",
        models=("project_p_hold.hold_b_stays_2020",),
    )
    assert "project P_HOLD, model hold_b_stays_2020: depends on snds.T_MCO20B, a table outside the perimeter" in message


def test_a_second_identifier_kind_is_refused(guarded: GuardedCopy) -> None:
    """A potential identifier of a kind the project may not see, output without the `generalised` test (or with a
    test weakened to a warning); a perimeter that names two kinds."""
    assert_refused(
        guarded,
        "p_hold/c_untested",
        "project P_HOLD, model hold_c_deaths: column BEN_DCD_DTE is a potential identifier (kind death) the project"
        " may not see: it must be generalised (the `generalised` test)",
        models=("project_p_hold.hold_c_deaths",),
    )
    assert_refused(
        guarded,
        "p_hold/c_warning",
        "project P_HOLD, model hold_c_deaths_warned: column BEN_DCD_DTE is a potential identifier (kind death)",
        "its `generalised` test must name table_name IR_BEN_R and keep the default severity",
        models=("project_p_hold.hold_c_deaths_warned",),
    )
    message = assert_refused(guarded, "p_other", "project P_OTHER, model p_other__")
    assert re.search(r"project P_OTHER, model p_other__\w+: the perimeter's identifier_kind \[.*death.*\]", message)


def test_a_pseudonym_column_in_the_project_schema_is_refused(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/d_person_id",
        "project P_HOLD, model hold_d_members: column PERSON_ID is a platform or CNAM pseudonym",
        models=("project_p_hold.hold_d_members",),
    )
    assert_refused(
        guarded,
        "p_hold/d_ben_nir_psa",
        "project P_HOLD, model hold_d_linkage: column BEN_NIR_PSA is a platform or CNAM pseudonym",
        models=("project_p_hold.hold_d_linkage",),
    )


def test_a_reference_to_another_projects_model_is_refused(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/e_other_project",
        "project P_HOLD, model hold_e_shared: depends on p_other__cohort, a model of project P_OTHER",
        models=("project_p_hold.hold_e_shared",),
    )


def test_an_expired_authorisation_builds_nothing(guarded: GuardedCopy) -> None:
    """Nothing is built, and the cohort written while the authorisation held is not refreshed."""
    with duckdb.connect(str(guarded.database)) as con:
        con.execute("create schema if not exists project_p_guard")
        con.execute("create or replace table project_p_guard.cohort as select 'written before expiry' as NUM_ENQ")
    message = assert_refused(guarded, "p_guard", "authorisation CNIL TEST-EXPIRED expired on 2020-06-30")
    assert re.search(r"project P_GUARD, model p_guard__\w+: authorisation CNIL TEST-EXPIRED expired", message)
    assert {r for r in guarded.relations() if "p_guard" in r} == {"project_p_guard.cohort"}
    with duckdb.connect(str(guarded.database)) as con:
        assert con.execute("select * from project_p_guard.cohort").fetchall() == [("written before expiry",)]


def test_a_project_table_without_an_enforced_contract_is_refused(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/g_no_contract",
        "project P_HOLD, model hold_g_counts: a table of project_p_hold needs an enforced contract",
        models=("project_p_hold.hold_g_counts",),
    )


def test_a_compliant_hand_written_extract_is_built(guarded: GuardedCopy) -> None:
    result = guarded.build("p_hold/h_compliant")
    assert result.success, _failure(result)
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert statuses["hold_h_beneficiaries"] == "success"
    assert sum(s == "pass" for s in statuses.values()) == 2, statuses  # both `generalised` tests ran and passed
    with duckdb.connect(str(guarded.database)) as con:
        rows = con.execute("select * from project_p_hold.hold_h_beneficiaries").fetchall()
    assert [tuple(map(str, row)) for row in rows] == [("E0000000000000001", "2", "1950", "2019-05-01")]


def test_the_generated_example_projects_keep_the_rules(guarded: GuardedCopy) -> None:
    """The generator and the guard agree: the guard lets the examples through (their first model then fails on the
    empty database, which holds no event layer)."""
    result = guarded.build("p_t2d", "p_mi")
    hooks = [r for r in result.result.results if r.node.resource_type == "operation"]
    assert hooks and {str(r.status) for r in hooks} == {"success"}, _failure(result)
    assert GUARD_FAILED not in _failure(result)


def test_a_project_model_writes_only_into_its_schema_or_its_own_keys_tables(guarded: GuardedCopy) -> None:
    assert_refused(
        guarded,
        "p_hold/i_schema",
        "project P_HOLD, model hold_i_base: writes into schema snds; a project writes only into project_p_hold or keys",
        models=(),
    )
    assert_refused(
        guarded,
        "p_hold/i_keys",
        "project P_HOLD, model hold_i_store: a restricted step in keys must be named p_hold__<name>",
    )
    before = guarded.relations()
    argv = ["build", "--select", "path:models/elsewhere", "--no-write-json", "--project-dir", str(guarded.root)]
    argv += ["--profiles-dir", str(guarded.root / "profiles"), "--target-path", str(guarded.target)]
    with dbt_database(guarded.database):
        result = dbtRunner(manifest=guarded.manifest).invoke(argv)
    message = _failure(result)
    assert not result.success and GUARD_FAILED in message, message
    assert "model hold_j_outside: writes into project_p_hold, a project schema, from outside" in message
    assert guarded.relations() == before
