"""Project definitions (projects/<ID>.yml): the schema, the checks against the catalog, `snds project check`.

Fast: no dbt, no database build. Each bad input of issue 11 gives a message naming the file, the key path and the
item; every problem of a file is reported at once.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from snds import config
from snds.cli import main
from snds.cli_common import EXIT_DATA, EXIT_USAGE
from snds.projects.codes import unknown_codes
from snds.projects.cohort_sql import candidates_sql
from snds.projects.definition import (
    CodeSet,
    ProjectDefinition,
    ProjectDefinitionError,
    Window,
    load_definition,
)
from snds.projects.schema import PROJECTS_DIR, SCHEMA_PATH, project_schema

EXAMPLES = ("P_T2D", "P_MI", "P_LINK_DIRECT", "P_LINK_CASCADE", "P_LINK_SPLINK")


def _example(project_id: str = "P_T2D") -> dict[str, Any]:
    return yaml.safe_load((PROJECTS_DIR / f"{project_id}.yml").read_text(encoding="utf-8"))


def _write(directory: Path, document: dict[str, Any], name: str | None = None) -> Path:
    path = directory / f"{name or document['id']}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ProjectDefinitionError) as raised:
        load_definition(path)
    message = str(raised.value)
    assert all(line.startswith(f"{path}: ") for line in message.splitlines()), message
    return message


# --- the examples -------------------------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(project_schema())
    assert project_schema()["$schema"].endswith("/2020-12/schema")
    assert SCHEMA_PATH == config.PROJECT_ROOT / "projects" / "project.schema.json"


@pytest.mark.parametrize("project_id", EXAMPLES)
def test_the_examples_load_without_warnings(project_id: str) -> None:
    definition = load_definition(PROJECTS_DIR / f"{project_id}.yml")
    assert isinstance(definition, ProjectDefinition) and definition.id == project_id
    assert definition.warnings == ()
    assert definition.authorisation.expires >= date(2028, 12, 31)
    assert definition.authorisation.problem_on(date.today()) is None
    assert {t.name for t in definition.extract_tables} == set(definition.outputs.extracts)
    assert unknown_codes(definition, config.reference_dir()).unknown == ()


def test_p_t2d_is_the_issue_definition() -> None:
    d = load_definition(PROJECTS_DIR / "P_T2D.yml")
    assert (d.study.start, d.study.end) == (date(2019, 1, 1), date(2020, 12, 31))
    assert d.cohort.code_set("t2d") == CodeSet("t2d", "icd10", prefixes=("E11",))
    assert d.cohort.code_set("antidiabetics") == CodeSet("antidiabetics", "atc", prefixes=("A10",))
    stay, ald = d.cohort.entry.criteria
    assert (stay.domain, stay.sources, stay.positions) == (
        "diagnosis",
        ("MCO",),
        ("principal", "related", "associated"),
    )
    assert (ald.code_set, ald.domain) == ("t2d", "ald")
    assert d.cohort.entry.occurrence == "first"
    (rule,) = d.cohort.inclusion
    assert (rule.criterion.domain, rule.min_count, rule.max_count, rule.within_days) == ("dispensing", 2, None, 365)
    assert rule.window == Window(study=True)
    assert d.cohort.age is not None and (d.cohort.age.min, d.cohort.age.max) == (18, None)
    assert d.outputs.extracts == ("ER_PHA_F", "T_MCOaaB", "IR_BEN_R") and d.outputs.small_cell_threshold == 11


def test_p_mi_is_the_issue_definition() -> None:
    d = load_definition(PROJECTS_DIR / "P_MI.yml")
    assert d.cohort.entry.starts_in_study  # a stay admitted before 2019 is no infarction of the period
    entry_sql = candidates_sql(d).split("entry_events as (")[1].split(")")[0]
    assert "events.start_date as event_date" in entry_sql
    assert "events.start_date between date '2019-01-01' and date '2020-12-31'" in entry_sql
    (entry,) = d.cohort.entry.criteria
    assert (entry.code_set, entry.domain, entry.sources, entry.positions) == (
        "mi",
        "diagnosis",
        ("MCO",),
        ("principal",),
    )
    assert d.cohort.code_set("mi").prefixes == ("I21",)
    (rule,) = d.cohort.inclusion
    assert rule.is_exclusion and rule.criterion == entry
    assert rule.window == Window(study=False, from_days=-365, to_days=-1)
    assert set(d.outputs.extracts) == {"T_MCOaaB", "KI_CCI_R"}


def test_templates_expand_to_physical_tables_years_and_columns() -> None:
    d = load_definition(PROJECTS_DIR / "P_T2D.yml")
    mco = d.perimeter.table("T_MCOaaB")
    assert mco is not None and mco.all_columns and mco.years == (2019, 2020)
    assert [(t.name, t.year) for t in mco.tables] == [("T_MCO19B", 2019), ("T_MCO20B", 2020)]
    assert "DGN_PAL" in mco.columns and all(t.columns for t in mco.tables)
    pha = d.perimeter.table("ER_PHA_F")
    assert pha is not None and [(t.name, t.year) for t in pha.tables] == [
        ("ER_PHA_F", None),
        ("ER_PHA_F_2019", 2019),
        ("ER_PHA_F_2020", 2020),
    ]
    assert pha.tables[0].columns == pha.columns and "PHA_PRS_C13" in pha.columns
    ben = d.perimeter.table("IR_BEN_R")
    assert ben is not None and ben.years == () and [t.name for t in ben.tables] == ["IR_BEN_R"]
    assert d.perimeter.identifier_kind == "care_date"


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    doc = _example()
    del doc["outputs"]["small_cell_threshold"], doc["cohort"]["follow_up"], doc["cohort"]["entry"]["occurrence"]
    doc["cohort"]["entry"]["criteria"] = [{"code_set": "t2d"}]
    d = load_definition(_write(tmp_path, doc))
    assert d.outputs.small_cell_threshold == 11 and d.cohort.follow_up.end == "study_end"
    assert d.cohort.entry.occurrence == "first" and not d.cohort.entry.starts_in_study
    (criterion,) = d.cohort.entry.criteria
    assert criterion.domain == "diagnosis" and criterion.sources == ("MCO", "SSR", "HAD", "RIP")
    assert criterion.positions == ("principal", "related", "associated")


# --- bad input: one message per item -------------------------------------------------------------------------


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "P_BAD.yml"
    path.write_text("id: P_BAD\ntitle: [unclosed\nstudy: {start: 2019-01-01\n", encoding="utf-8")
    message = _problems(path)
    assert "malformed YAML" in message and "line " in message


def test_a_key_written_twice_is_malformed(tmp_path: Path) -> None:
    text = (PROJECTS_DIR / "P_T2D.yml").read_text(encoding="utf-8") + "title: again\n"
    path = tmp_path / "P_T2D.yml"
    path.write_text(text, encoding="utf-8")
    assert "key 'title' is written twice" in _problems(path)


def test_schema_errors_name_the_key_path_and_are_all_reported(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["inclusion"][0]["window"] = {"from_days": "-365", "to_days": -1}
    doc["cohort"]["inclusion"][0]["colour"] = "blue"
    doc["study"]["start"] = "01/01/2019"
    del doc["authorisation"]["holder"]
    message = _problems(_write(tmp_path, doc))
    assert "cohort.inclusion[0].window.from_days: expected an integer" in message
    assert "cohort.inclusion[0].colour: unknown key" in message
    assert "study.start: expected a date written YYYY-MM-DD" in message
    assert "authorisation.holder: required key missing" in message
    assert len(message.splitlines()) == 4


def test_names_of_tables_and_code_sets_are_checked(tmp_path: Path) -> None:
    doc = _example()
    doc["perimeter"]["tables"]["ER PHA;F"] = {"columns": "all"}
    doc["cohort"]["code_sets"]["T2D"] = {"system": "icd10", "codes": ["E11"]}
    message = _problems(_write(tmp_path, doc))
    assert "perimeter.tables.ER PHA;F: not an accepted name" in message
    assert "cohort.code_sets.T2D: not an accepted name (expected lower-case letters" in message


def test_an_impossible_date_is_refused(tmp_path: Path) -> None:
    doc = _example()
    doc["authorisation"]["granted"] = "2026-02-30"
    assert "authorisation.granted: expected a date written YYYY-MM-DD" in _problems(_write(tmp_path, doc))


def test_a_rule_needs_exactly_one_count(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["inclusion"][0]["at_most"] = 5
    assert "cohort.inclusion[0]: expected exactly one of at_least, at_most, exactly" in _problems(_write(tmp_path, doc))


def test_unknown_table_template_column_and_year(tmp_path: Path) -> None:
    doc = _example()
    tables = doc["perimeter"]["tables"]
    tables["ER_XYZ_F"] = {"columns": "all"}
    tables["T_MCOaaQ"] = {"columns": "all", "years": [2019]}
    tables["IR_BEN_R"]["columns"].append("BEN_FOO_BAR")
    tables["T_MCOaaB"]["years"] = [2019, 2031]
    message = _problems(_write(tmp_path, doc))
    assert "perimeter.tables.ER_XYZ_F: unknown table or template 'ER_XYZ_F'" in message
    assert "perimeter.tables.T_MCOaaQ: unknown template 'T_MCOaaQ'" in message
    assert "perimeter.tables.IR_BEN_R.columns[6]: unknown column 'BEN_FOO_BAR' for IR_BEN_R" in message
    assert "perimeter.tables.T_MCOaaB.years[1]: T_MCOaaB has no table for 2031 (the catalog has 2006-2023)" in message


def test_years_are_required_for_a_yearly_table_and_refused_for_another(tmp_path: Path) -> None:
    doc = _example()
    del doc["perimeter"]["tables"]["T_MCOaaB"]["years"]
    doc["perimeter"]["tables"]["IR_BEN_R"]["years"] = [2019]
    message = _problems(_write(tmp_path, doc))
    assert "perimeter.tables.T_MCOaaB.years: required: T_MCOaaB is yearly" in message
    assert "perimeter.tables.IR_BEN_R.years: IR_BEN_R has no years" in message


def test_a_table_authorised_twice_is_refused(tmp_path: Path) -> None:
    doc = _example()
    doc["perimeter"]["tables"]["T_MCO19B"] = {"columns": ["DGN_PAL"], "years": [2019]}
    message = _problems(_write(tmp_path, doc))
    assert "perimeter.tables.T_MCO19B: T_MCO19B is already in the perimeter through T_MCOaaB" in message


def test_unknown_code_system(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["code_sets"]["t2d"]["system"] = "icd9"
    message = _problems(_write(tmp_path, doc))
    assert "cohort.code_sets.t2d.system: expected one of icd10, atc, cip7, cip13, ccam, ald, ghm" in message


def test_badly_written_codes(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["code_sets"]["t2d"] = {"system": "icd10", "codes": ["E11.9"], "prefixes": ["e11"]}
    message = _problems(_write(tmp_path, doc))
    assert "cohort.code_sets.t2d.codes[0]: expected icd10 code: a letter and 2 digits, no dot" in message
    assert "cohort.code_sets.t2d.prefixes[0]: expected icd10 prefix" in message


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"from_days": 10, "to_days": -10}, "cohort.inclusion[0].window.from_days: empty window: from_days (10)"),
        ({"from_days": -365}, "cohort.inclusion[0].window.to_days: required key missing"),
        ("studies", "cohort.inclusion[0].window: expected study (the study period), or {from_days, to_days}"),
    ],
)
def test_empty_or_malformed_window(tmp_path: Path, window: Any, expected: str) -> None:
    doc = _example()
    doc["cohort"]["inclusion"][0]["window"] = window
    assert expected in _problems(_write(tmp_path, doc))


def test_an_exclusion_window_overlapping_the_index_event_is_refused(tmp_path: Path) -> None:
    doc = _example("P_MI")
    doc["cohort"]["inclusion"][0]["window"] = {"from_days": -365, "to_days": 0}
    message = _problems(_write(tmp_path, doc))
    assert "cohort.inclusion[0].window: the window includes day 0, where the entry event itself is counted" in message


def test_unknown_code_set_and_inconsistent_domain(tmp_path: Path) -> None:
    doc = _example()
    criteria = doc["cohort"]["entry"]["criteria"]
    criteria.append({"code_set": "insulin"})
    criteria.append({"code_set": "antidiabetics", "domain": "diagnosis"})
    criteria.append({"code_set": "t2d", "domain": "ald", "sources": ["MCO"], "positions": ["principal"]})
    message = _problems(_write(tmp_path, doc))
    assert "cohort.entry.criteria[2].code_set: unknown code set 'insulin'" in message
    assert (
        "cohort.entry.criteria[3].domain: code set antidiabetics is atc, which domain diagnosis does not use" in message
    )
    assert "cohort.entry.criteria[4].sources[0]: domain ald takes no `sources` key" in message
    assert "cohort.entry.criteria[4].positions: only for domain diagnosis" in message


def test_two_identifier_kinds_are_refused(tmp_path: Path) -> None:
    doc = _example()
    doc["perimeter"]["identifier_kind"] = ["birth", "care_date"]
    message = _problems(_write(tmp_path, doc))
    assert "perimeter.identifier_kind: expected one of birth, residence, death, care_date" in message


def test_extract_outside_the_perimeter(tmp_path: Path) -> None:
    doc = _example()
    doc["outputs"]["extracts"].append("KI_CCI_R")
    assert "outputs.extracts[3]: 'KI_CCI_R' is outside the perimeter" in _problems(_write(tmp_path, doc))


def test_dates_in_the_wrong_order(tmp_path: Path) -> None:
    doc = _example()
    doc["study"] = {"start": "2020-01-01", "end": "2019-12-31"}
    doc["authorisation"]["expires"] = "2025-01-01"
    doc["cohort"]["age"] = {"min": 65, "max": 18}
    message = _problems(_write(tmp_path, doc))
    assert "study.end: expected a day on or after the start 2020-01-01" in message
    assert "authorisation.expires: expected a day on or after the grant 2026-01-15" in message
    assert "cohort.age.max: expected at least the minimum 65" in message


def test_the_id_must_be_the_file_name_and_a_safe_identifier(tmp_path: Path) -> None:
    doc = _example()
    assert "id: expected the file name 'P_OTHER', found 'P_T2D'" in _problems(_write(tmp_path, doc, "P_OTHER"))
    doc["id"] = "../P_T2D"
    assert "id: expected the project identifier" in _problems(_write(tmp_path, doc, "P_T2D"))


def test_unused_code_sets_and_columns_missing_some_years_are_warnings(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["code_sets"]["t2d_ald"] = {"system": "ald", "codes": ["8"]}
    doc["perimeter"]["tables"]["T_MCOaaB"] = {"columns": ["DGN_PAL", "TOP_AVASTIN"], "years": [2010, 2019]}
    d = load_definition(_write(tmp_path, doc))
    assert "code set t2d_ald is used by no criterion" in d.warnings
    assert any(w.startswith("T_MCO10B has no column TOP_AVASTIN") for w in d.warnings)
    mco = d.perimeter.table("T_MCOaaB")
    assert mco is not None and [t.columns for t in mco.tables] == [("DGN_PAL",), ("DGN_PAL", "TOP_AVASTIN")]


def test_the_linked_examples_read_their_protocol() -> None:
    direct, cascade, splink = (
        load_definition(PROJECTS_DIR / f"P_LINK_{p}.yml") for p in ("DIRECT", "CASCADE", "SPLINK")
    )
    assert (direct.linkage.protocol, direct.linkage.criteria, direct.linkage.passes) == ("direct", (), 1)
    assert cascade.linkage.passes == 5 and cascade.linkage.subject == "NS" and cascade.cohort.entry.criteria == ()
    assert splink.linkage.threshold == 0.95 and splink.linkage.passes == 1


def test_linkage_problems_are_all_reported(tmp_path: Path) -> None:
    doc = _example("P_LINK_CASCADE")
    doc["id"] = "P_L1"
    doc["linkage"]["min_criteria"] = 9
    doc["linkage"]["threshold"] = 0.5
    doc["perimeter"]["tables"]["IR_BEN_R"]["columns"].remove("BEN_RES_COM")
    del doc["perimeter"]["tables"]["T_MCOaaC"]
    doc["outputs"]["extracts"] = ["IR_BEN_R"]
    message = _problems(_write(tmp_path, doc))
    assert "linkage.min_criteria: expected 1 to the 8 criteria, found 9" in message
    assert "linkage.threshold: not for the cascade protocol" in message
    assert "the linkage reads BEN_RES_COM of IR_BEN_R: add them" in message
    assert "the stays' criteria are read from T_MCOaaC: add it to perimeter.tables" in message
    direct = _example("P_LINK_DIRECT")
    direct["id"], direct["linkage"]["criteria"] = "P_L2", {"sex": "SEX", "birth_year": "YEAR"}
    assert "linkage.criteria: not for the direct protocol" in _problems(_write(tmp_path, direct))
    splink = _example("P_LINK_SPLINK")
    splink["id"], splink["linkage"]["criteria"] = "P_L3", {"sex": "SEX", "birth_year": "YEAR"}
    assert "Splink compares pairs within blocks" in _problems(_write(tmp_path, splink))
    unlinked = _example("P_LINK_DIRECT")
    unlinked["id"] = "P_L4"
    del unlinked["linkage"]
    assert "cohort.entry: required, unless the project links an external cohort" in _problems(
        _write(tmp_path, unlinked)
    )


def test_codes_absent_from_the_code_lists_are_warnings(tmp_path: Path) -> None:
    doc = _example()
    doc["cohort"]["code_sets"]["t2d"] = {"system": "icd10", "codes": ["E119", "E11Z"], "prefixes": ["E99Z"]}
    doc["cohort"]["code_sets"]["grp"] = {"system": "ghm", "prefixes": ["05M"]}
    doc["cohort"]["entry"]["criteria"].append({"code_set": "grp"})
    report = unknown_codes(load_definition(_write(tmp_path, doc)), config.reference_dir())
    assert report.unknown == (
        "cohort.code_sets.t2d.codes[1]: icd10 E11Z matches no code of IR_CIM_V, MS_CIM_V",
        "cohort.code_sets.t2d.prefixes[0]: icd10 E99Z matches no code of IR_CIM_V, MS_CIM_V",
    )
    assert report.unchecked_systems == ("ghm",)


# --- snds project check ----------------------------------------------------------------------------------------


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SNDS_DUCKDB_PATH", str(tmp_path / "absent" / "warehouse.duckdb"))
    return CliRunner()


@pytest.mark.parametrize("command", [["project"], ["project", "check"]])
def test_project_commands_have_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize("project_id", EXAMPLES)
def test_check_passes_on_the_examples(runner: CliRunner, project_id: str) -> None:
    result = runner.invoke(main, ["project", "check", project_id])
    assert result.exit_code == 0, result.output
    assert f"project {project_id}: definition checked" in result.output
    assert "T_MCO19B" in result.output and "project key not checked: no database at" in result.output


def test_check_json(runner: CliRunner) -> None:
    result = runner.invoke(main, ["project", "check", "P_T2D", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "ok" and report["problems"] == [] and report["project_key"] == "not checked"
    tables = {t["name"]: t for t in report["definition"]["perimeter"]["tables"]}
    assert [p["name"] for p in tables["T_MCOaaB"]["tables"]] == ["T_MCO19B", "T_MCO20B"]
    assert report["definition"]["authorisation"]["expires"] == "2029-01-14"


@pytest.mark.parametrize("bad_id", ["../P_T2D", "P T2D", "P_T2D;drop", "_P", "x" * 49])
def test_check_refuses_an_unsafe_id(runner: CliRunner, bad_id: str) -> None:
    result = runner.invoke(main, ["project", "check", bad_id, "--json"])
    assert result.exit_code == EXIT_USAGE, result.output
    assert json.loads(result.stdout)["status"] == "error"
    assert "project identifier" in result.stderr and "Traceback" not in result.output


def test_check_a_project_without_definition(runner: CliRunner) -> None:
    result = runner.invoke(main, ["project", "check", "P_NONE"])
    assert result.exit_code == EXIT_USAGE and "project P_NONE has no definition" in result.output


def test_check_reports_every_problem_of_a_bad_definition(runner: CliRunner, tmp_path: Path) -> None:
    doc = _example()
    doc["perimeter"]["tables"]["IR_BEN_R"]["columns"].append("BEN_FOO_BAR")
    doc["outputs"]["extracts"].append("KI_CCI_R")
    _write(tmp_path, doc)
    result = runner.invoke(main, ["project", "check", "P_T2D", "--projects-dir", str(tmp_path), "--json"])
    assert result.exit_code == EXIT_DATA, result.output
    problems = json.loads(result.stdout)["problems"]
    assert len(problems) == 2 and "unknown column 'BEN_FOO_BAR'" in problems[0] and "KI_CCI_R" in problems[1]
    assert "Traceback" not in result.output


def test_check_refuses_an_expired_authorisation(runner: CliRunner, tmp_path: Path) -> None:
    doc = _example()
    doc["authorisation"].update(granted="2019-01-01", expires="2021-06-30")
    _write(tmp_path, doc)
    result = runner.invoke(main, ["project", "check", "P_T2D", "--projects-dir", str(tmp_path)])
    assert result.exit_code == EXIT_DATA
    assert "authorisation CNIL DR-2026-0123 expired on 2021-06-30" in result.output


def test_check_says_whether_the_project_key_exists(runner: CliRunner, tmp_path: Path) -> None:
    import duckdb

    from snds.keys.store import init_project

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        init_project(con, "P_MI")
    for project_id, expected in (("P_MI", "present"), ("P_T2D", "missing")):
        result = runner.invoke(main, ["project", "check", project_id, "--database", str(database), "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["project_key"] == expected
    assert "project key missing: run snds keys init --project P_T2D" in " ".join(report["warnings"])
