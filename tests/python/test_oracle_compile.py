"""Every model and test compiles for Oracle without a database and passes the Oracle grammar check."""

from __future__ import annotations

from pathlib import Path

import pytest

from snds.dbt import compile_oracle_offline
from snds.oracle_check import check_compiled_project
from snds.sqlcheck import sql_files

pytestmark = pytest.mark.slow


def test_whole_project_compiles_for_oracle_and_passes_the_check(tmp_path_factory: pytest.TempPathFactory) -> None:
    target: Path = tmp_path_factory.mktemp("oracle_target")
    run = compile_oracle_offline("--quiet", target_path=target)
    manifest = run.manifest()
    assert manifest["metadata"]["adapter_type"] == "oracle"
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "test")]
    assert len(sql_files(target / "compiled")) == len(nodes) > 2000
    report = check_compiled_project(target, manifest)
    assert report.contract_tables >= 2000
    assert not report.failures, report.describe()
