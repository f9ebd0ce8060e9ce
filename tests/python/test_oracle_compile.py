"""Every distinct model and test compiles for Oracle without a database and passes the Oracle grammar check.

The whole compile runs one staging model of each class of definitions equal up to the table's name
(distinct_models.py) and every other node, as the DuckDB build does; `snds oracle check` compiles them all. The
classes come from the files (`textual_classes`), and dbt parses a copy of the project holding only the nodes it
compiles (38 s, where the whole took 68 s): the module starts on its own worker while another parses the whole
project for DuckDB (conftest.py), so it waits for no parse of the whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from dbt.contracts.graph.manifest import Manifest

from distinct_models import distinct_tables, textual_classes
from hmac_vectors import hmac_vector_sql
from pruned_project import copy_staging
from snds.access.declarations import load_declarations
from snds.access.plan import changes_from_any_state, script, with_sql
from snds.access.rights import declared_rights
from snds.catalog.committed import load_tables
from snds.conformity.checks import examples_call, macro_call, month_column, project_rules, table_checks
from snds.conformity.validate import compile_parts
from snds.dbt import (
    DUCKDB_ONLY,
    ORACLE_OFFLINE_TARGET,
    DbtRun,
    InlineCompiler,
    compile_oracle_offline,
    run_dbt,
    target_options,
)
from snds.oracle_check import check_compiled_project
from snds.sqlcheck import check_oracle_script, check_sql, sql_files

pytestmark = pytest.mark.slow


SNIPPET_TABLES = {"IR_BEN_R", "ER_PRS_F", "T_HAD19B", "T_HAD19C"}  # the staging models the snippets below read


@dataclass(frozen=True)
class DistinctCopy:
    root: Path  # the project with the staging models of `distinct_tables` only
    classes: list[list[str]]  # the checkout's staging models by `textual_classes`


@pytest.fixture(scope="module")
def distinct_copy(tmp_path_factory: pytest.TempPathFactory) -> DistinctCopy:
    classes = textual_classes()
    root = tmp_path_factory.mktemp("oracle_project") / "project"
    copy_staging(root, distinct_tables(classes, keep=SNIPPET_TABLES))
    return DistinctCopy(root, classes)


@pytest.fixture(scope="module")
def oracle_parse(distinct_copy: DistinctCopy, tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The copy parsed for Oracle once, for the compile and the snippets: dbt's own parse, never kept as the
    checkout's (`snds.dbt.parse_project`); no manifest.json (the compile writes its own)."""
    options = ("--quiet", "--no-write-json", *target_options(ORACLE_OFFLINE_TARGET))
    target_path = tmp_path_factory.mktemp("oracle_parse")
    return run_dbt("parse", *options, target_path=target_path, project_dir=distinct_copy.root).result.result


@pytest.fixture(scope="module")
def compiled(oracle_parse: Manifest, distinct_copy: DistinctCopy, tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    target_path = tmp_path_factory.mktemp("oracle_target")
    return compile_oracle_offline(
        "--quiet", target_path=target_path, manifest=oracle_parse, project_dir=distinct_copy.root
    )


@pytest.fixture(scope="module")
def oracle(compiled: DbtRun, oracle_parse: Manifest, distinct_copy: DistinctCopy) -> InlineCompiler:
    """Inline snippets compiled for Oracle offline, the copy parsed once."""
    return InlineCompiler(
        compiled.target_path, dbt_target=ORACLE_OFFLINE_TARGET, manifest=oracle_parse, project_dir=distinct_copy.root
    )


def _duckdb_only(manifest: dict) -> set[str]:
    """The nodes tagged DUCKDB_ONLY (Splink's Python model) and every node downstream of them."""
    pending = [uid for uid, n in manifest["nodes"].items() if DUCKDB_ONLY in n.get("tags", [])]
    found: set[str] = set()
    while pending:
        uid = pending.pop()
        if uid not in found:
            found.add(uid)
            pending += manifest["child_map"].get(uid, [])
    return found


def test_whole_project_compiles_for_oracle_and_passes_the_check(compiled: DbtRun, distinct_copy: DistinctCopy) -> None:
    manifest = compiled.manifest()
    assert manifest["metadata"]["adapter_type"] == "oracle"
    left_out = _duckdb_only(manifest)
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "test")]
    kept = [n for n in nodes if n["unique_id"] not in left_out]
    classes = distinct_copy.classes
    assert len(sql_files(compiled.target_path / "compiled")) == len(kept) > len(classes) > 900
    # one of each class, so one of each class of parsed definitions (test_distinct_models.py)
    assert {group[0] for group in classes} <= {n["name"] for n in kept if n["resource_type"] == "model"}
    assert {"p_link_cascade__linkage_plan", "p_link_cascade__linkage_pass_5", "p_link_direct__linkage_pass_1"} <= {
        n["name"] for n in kept
    }  # the cascade and the direct protocol compile for Oracle; Splink's linkage (DuckDB only) is left out
    assert 0 < len(left_out) < 50 and all("p_link_splink" in uid for uid in left_out)
    report = check_compiled_project(compiled.target_path, manifest)
    assert report.contract_tables >= len(classes)
    assert not report.failures, report.describe()


def test_hmac_vectors_compile_for_oracle(oracle: InlineCompiler) -> None:
    sql = oracle.compile(hmac_vector_sql(" from dual"))
    assert "standard_hash(utl_raw.concat(k.opad, standard_hash(utl_raw.concat(k.ipad" in sql
    assert "utl_i18n.string_to_raw(vectors.v, 'AL32UTF8')" in sql
    assert not check_sql(sql)


def test_project_pseudonyms_and_generalisation_compile_for_oracle(oracle: InlineCompiler) -> None:
    project = oracle.compile("{{ project_pseudonyms('P001', ref('IR_BEN_R'), 'BEN_NIR_PSA') }}")
    assert "key_scope = 'project:P001'" in project and "standard_hash" in project
    generalised = oracle.compile(
        "select {{ generalise('ER_PRS_F', 'EXE_SOI_DTD') }} as soins, {{ generalise('T_HAD19B', 'BDI_COD') }} as dpt,"
        " {{ generalise('T_HAD19C', 'ENT_DAT') }} as entree from {{ ref('ER_PRS_F') }}, {{ ref('T_HAD19B') }},"
        " {{ ref('T_HAD19C') }}",
    )
    assert "trunc(EXE_SOI_DTD, 'MM')" in generalised
    for sql in (project, generalised):
        assert not check_sql(sql), sql


def test_the_key_check_hook_is_a_plsql_block_on_oracle(oracle: InlineCompiler) -> None:
    hook = oracle.compile("{{ assert_one_active_key('platform', 'person') }}")
    assert hook.lstrip().startswith("declare") and hook.rstrip().endswith("end;")
    assert "raise_application_error(-20001, 'pseudonymisation needs exactly one active platform key" in hook


def test_the_incremental_hooks_compile_for_oracle_and_pass_the_check(oracle: InlineCompiler) -> None:
    """What a staging model runs around its insert (the pre-hook is chosen at build time), and what the run records."""
    for hook in ("forget_applied_deliveries", "empty_replaced_table", "record_applied_deliveries"):
        sql = oracle.compile(f"{{{{ {hook}() }}}}")
        assert "applied_deliveries" in sql or "pending_deliveries" in sql, hook
        assert not check_sql(sql), (hook, sql)
    # Added by the platform's incremental materialization, which runs dbt-oracle's own.
    wrapped = "{{ dbt.materialization_incremental_oracle is defined and delivery_hooks is defined }}"
    assert oracle.compile(wrapped) == "True"
    nodes = "[graph.nodes['model.snds.IR_BEN_R'], graph.nodes['model.snds.ER_PRS_F']]"
    build = oracle.compile(f"{{{{ merge_model_builds({nodes}) }}}}")  # on-run-end, per 500 models built
    assert build.lstrip().startswith("merge into") and build.count(" from dual") == 2 and "union all" in build
    assert not check_sql(build), build
    empty = oracle.compile("{{ empty_increment_table(graph.nodes['model.snds.IR_BEN_R']) }}")  # a first promotion's
    assert empty.lstrip().startswith("create table snds.IR_BEN_R (") and "BEN_NIR_PSA varchar(17)," in empty
    assert not check_sql(empty), empty


def test_conformity_queries_compile_for_oracle_and_pass_the_check(oracle: InlineCompiler) -> None:
    rules = project_rules(load_tables())
    snippets, kinds = {}, set()
    for name in ("ER_PRS_F", "ER_PHA_F", "T_MCO19B", "T_MCO19C", "IR_BEN_R"):
        checks = table_checks(rules.tables[name], rules)
        kinds |= {c.kind for c in checks}
        snippets[name] = macro_call(name, "D1", checks, month_column(rules.tables[name], rules))
        for i, check in enumerate(checks):  # the examples query of every check
            snippets[f"{name}.{i}"] = examples_call(name, "D1", check, [rules.tables[name].columns[0].name], 5)
    compiled_sql = compile_parts(snippets, oracle.compile)
    assert set(compiled_sql) == set(snippets)
    for part, sql in compiled_sql.items():
        if "." in part:
            assert "fetch first 5 rows only" in sql
        else:
            assert "left join" in sql
            assert ("count(*) over (partition by" in sql) == bool(rules.tables[part].primary_key)
        assert not check_sql(sql), (part, check_sql(sql))
    assert kinds >= {"foreign_key", "date_in_year", "start_before_end", "birth_before_event", "cleaning_flag"}


def test_the_access_plan_for_oracle_compiles_and_parses_as_oracle_sql_and_plsql(oracle: InlineCompiler) -> None:
    people = load_declarations()
    day = date(2026, 12, 1)
    declared = declared_rights(people, ("P_MI", "P_T2D"), day, "snds")
    changes = with_sql(changes_from_any_state(declared, people, "snds"), oracle)
    text = script(changes, "oracle", day)
    assert not check_oracle_script(text), check_oracle_script(text)[:3]
    assert 'grant "SNDS_P_T2D_READER" to "AMARTIN";' in text
    assert 'execute immediate \'revoke "SNDS_P_T2D_READER" from "DMOREAU"\'' in text  # the right that ended
    assert "execute immediate 'revoke create session from \"DMOREAU\"'" in text  # no active right: no login
    assert "execute immediate 'create user \"AUDIT\" no authentication'" in text  # a name Oracle reserves, quoted
    keys = [c for c in changes if c.action == "grant_reads" and c.names[0] == "keys"]
    assert [c.names[1] for c in keys] == ["snds_pseudonymisation"]
    assert "from dba_objects where owner = 'KEYS' and object_type in ('TABLE', 'VIEW')" in keys[0].sql
    assert check_oracle_script("grant select on all tables in schema x to y;\n")  # PostgreSQL's form is refused
