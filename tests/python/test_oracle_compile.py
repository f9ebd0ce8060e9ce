"""Every model and test compiles for Oracle without a database and passes the Oracle grammar check."""

from __future__ import annotations

import pytest

from hmac_vectors import hmac_vector_sql
from snds.catalog.committed import load_tables
from snds.conformity.checks import code_lists, macro_call, table_checks
from snds.dbt import DbtRun, compile_oracle_offline
from snds.oracle_check import check_compiled_project
from snds.sqlcheck import check_sql, sql_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> DbtRun:
    return compile_oracle_offline("--quiet", target_path=tmp_path_factory.mktemp("oracle_target"))


def _compile_inline(compiled: DbtRun, sql: str) -> str:
    run = compile_oracle_offline("--quiet", "--inline", sql, target_path=compiled.target_path)
    return run.result.result.results[0].node.compiled_code


def test_whole_project_compiles_for_oracle_and_passes_the_check(compiled: DbtRun) -> None:
    manifest = compiled.manifest()
    assert manifest["metadata"]["adapter_type"] == "oracle"
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "test")]
    assert len(sql_files(compiled.target_path / "compiled")) == len(nodes) > 2000
    report = check_compiled_project(compiled.target_path, manifest)
    assert report.contract_tables >= 2000
    assert not report.failures, report.describe()


def test_hmac_vectors_compile_for_oracle(compiled: DbtRun) -> None:
    sql = _compile_inline(compiled, hmac_vector_sql(" from dual"))
    assert "standard_hash(utl_raw.concat(k.opad, standard_hash(utl_raw.concat(k.ipad" in sql
    assert "utl_i18n.string_to_raw(vectors.v, 'AL32UTF8')" in sql
    assert not check_sql(sql)


def test_project_pseudonyms_and_generalisation_compile_for_oracle(compiled: DbtRun) -> None:
    project = _compile_inline(compiled, "{{ project_pseudonyms('P001', ref('IR_BEN_R'), 'BEN_NIR_PSA') }}")
    assert "key_scope = 'project:P001'" in project and "standard_hash" in project
    generalised = _compile_inline(
        compiled,
        "select {{ generalise('ER_PRS_F', 'EXE_SOI_DTD') }} as soins, {{ generalise('T_HAD19B', 'BDI_COD') }} as dpt,"
        " {{ generalise('T_HAD19C', 'ENT_DAT') }} as entree from {{ ref('ER_PRS_F') }}, {{ ref('T_HAD19B') }},"
        " {{ ref('T_HAD19C') }}",
    )
    assert "trunc(EXE_SOI_DTD, 'MM')" in generalised
    for sql in (project, generalised):
        assert not check_sql(sql), sql


def test_the_key_check_hook_is_a_plsql_block_on_oracle(compiled: DbtRun) -> None:
    hook = _compile_inline(compiled, "{{ assert_one_active_key('platform', 'person') }}")
    assert hook.lstrip().startswith("declare") and hook.rstrip().endswith("end;")
    assert "raise_application_error(-20001, 'pseudonymisation needs exactly one active platform key" in hook


def test_conformity_queries_compile_for_oracle_and_pass_the_check(compiled: DbtRun) -> None:
    tables = load_tables()
    nomenclatures = code_lists(tables)
    for name in ("ER_PRS_F", "T_MCO19B", "IR_BEN_R"):
        sql = _compile_inline(compiled, macro_call(name, "D1", table_checks(tables[name], nomenclatures, 17)))
        assert "count(*) over (partition by" in sql and "left join" in sql
        assert not check_sql(sql), (name, check_sql(sql))
