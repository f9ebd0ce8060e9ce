"""The `snds` command as a user runs it: help, counts, check, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from snds.cli import main


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["catalog"],
        ["labels"],
        ["landing", "init"],
        ["synth"],
        ["ingest"],
        ["reference-delivery"],
        ["demo"],
        ["oracle", "check"],
    ],
)
def test_every_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_stats_line_counts_tables_structures_and_columns(runner: CliRunner) -> None:
    result = runner.invoke(main, ["catalog", "--stats"])
    assert result.exit_code == 0, result.output
    assert "physical tables" in result.output and "structures" in result.output and "columns" in result.output
    stats = json.loads(runner.invoke(main, ["catalog", "--stats", "--json"]).stdout)
    assert stats["physical_tables"] >= 2000 and 0 < stats["structures"] < stats["physical_tables"]


def test_check_passes_on_the_committed_catalog(runner: CliRunner) -> None:
    result = runner.invoke(main, ["catalog", "--check"])
    assert result.exit_code == 0, result.output


def test_missing_dictionary_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["catalog", "--check", "--reference", str(tmp_path)])
    assert result.exit_code == 1
    assert "does not look like schema-snds" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["landing", "init"],
        ["ingest", "D2019"],
        ["validate", "D2019"],
        ["promote", "D2019"],
        ["keys", "list"],
        ["project", "build", "P_T2D"],
    ],
)
def test_a_duckdb_file_named_for_the_server_or_an_unknown_target_is_a_clear_error(
    runner: CliRunner, command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = str(tmp_path / "warehouse.duckdb")
    named = runner.invoke(main, [*command, "--target", "postgres", "--database", database])
    assert named.exit_code == 2 and "--database names a DuckDB file" in named.output, named.output
    monkeypatch.setenv("SNDS_TARGET", "oracle")
    unknown = runner.invoke(main, command)
    assert unknown.exit_code == 3 and "SNDS_TARGET=oracle: the target is one of duckdb, postgres" in unknown.output
