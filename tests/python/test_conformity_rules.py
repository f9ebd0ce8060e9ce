"""The conformity rules as data: which checks a table gets, which threshold applies, what a bad rule says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jinja2
import pytest

from snds import identifiers
from snds.catalog.committed import load_tables
from snds.config import PROJECT_ROOT
from snds.conformity.checks import RULES_DIR, Check, RuleError, load_rules, macro_call, project_rules, table_checks
from snds.conformity.validate import (
    DELIVERY_TARGET,
    TableCounts,
    check_aliases,
    ingest_results,
    load_thresholds,
    threshold_for,
)

TABLES = load_tables()
RULES = project_rules(TABLES)


def _checks(table: str) -> dict[str, Check]:
    return {c.name: c for c in table_checks(TABLES[table], RULES)}


def test_links_resolve_to_the_parent_of_the_same_year_or_the_current_table() -> None:
    mco = _checks("T_MCO19C")
    assert mco["foreign_key:ETA_NUM+RSA_NUM->T_MCO19B"].arguments["parent_columns"] == ["ETA_NUM", "RSA_NUM"]
    person = mco["foreign_key:NIR_ANO_17->IR_BEN_R"]
    assert person.arguments["ignored"] == ["xxxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXD"]  # placeholders never link
    archive = _checks("ER_PHA_F_2019")
    assert any(name.endswith("->ER_PRS_F_2019") for name in archive)
    assert all(c.arguments["parent"] != "ER_PRS_F" for c in archive.values() if c.kind == "foreign_key")


def test_plausibility_and_cleaning_checks_follow_the_rule_files() -> None:
    mco = _checks("T_MCO19C")
    assert mco["date_in_year:EXE_SOI_DTF"].arguments | {"sentinel": ""} == {
        "from": "2019-01-01", "to": "2019-12-31", "sentinel": ""}  # fmt: skip
    assert mco["date_in_year:EXE_SOI_DTD"].arguments["from"] == "2018-01-01"  # a stay may start the year before
    assert "cleaning_flag:link_quality:NIR_RET" in mco
    stays = _checks("T_MCO19B")
    assert stays["cleaning_flag:error_group:GRG_GHM"].arguments["prefix"] == "90"
    finess = stays["cleaning_flag:geographic_finess_duplicate:ETA_NUM"].arguments["values"]
    assert len(finess) == 46 and "'750100042'" in finess  # text column: quoted literals
    claims = _checks("ER_PRS_F")
    assert claims["cleaning_flag:information_only_line:DPN_QLF"].arguments["values"] == ["71"]  # numeric: bare
    assert "start_before_end:EXE_SOI_DTD+EXE_SOI_DTF" in claims
    assert "birth_before_event:BEN_NAI_ANN+EXE_SOI_DTD" in claims


def test_the_most_specific_threshold_wins() -> None:
    thresholds = load_thresholds()
    person = _checks("T_MCO19C")["foreign_key:NIR_ANO_17->IR_BEN_R"]
    stay = _checks("T_MCO19C")["foreign_key:ETA_NUM+RSA_NUM->T_MCO19B"]
    assert threshold_for(thresholds, person, TABLES["T_MCO19C"]).severity == "warn"
    assert threshold_for(thresholds, stay, TABLES["T_MCO19C"]).severity == "error"
    required = _checks("ER_PRS_F")["not_null:BEN_NIR_PSA"]
    optional = _checks("ER_PRS_F")["not_null:BEN_RES_COM"]
    assert threshold_for(thresholds, required, TABLES["ER_PRS_F"]).severity == "error"
    assert threshold_for(thresholds, optional, TABLES["ER_PRS_F"]).severity == "info"
    key = _checks("IR_SEX_V")["key_unique:SEX_COD"]
    assert threshold_for(thresholds, key, TABLES["IR_SEX_V"]).severity == "warn"  # code lists: product rule


def test_quarantine_thresholds_let_the_synthetic_faults_through_and_stop_a_broken_table() -> None:
    """Synthetic deliveries plant at least 4 bad lines per target table (4 of 52 stays with 200 patients)."""
    thresholds = load_thresholds()
    results = ingest_results(
        {
            "T_MCO19B": TableCounts(52, 48, 4),  # 7.7 %: tolerated
            "T_MCO20B": TableCounts(40, 34, 6),  # 15 %: over the table's share
            "T_MCO21B": TableCounts(3, 0, 3),  # nothing loaded
            "T_SSR20B": TableCounts(0, 0, 0),  # an empty file: delivered, nothing to load
        },
        RULES,
        thresholds,
    )
    outcomes = {(r.table, r.check.name): r.outcome for r in results}
    assert outcomes == {
        ("T_MCO19B", "quarantined_rows"): "pass",
        ("T_MCO19B", "rows_loaded"): "pass",
        ("T_MCO20B", "quarantined_rows"): "error",
        ("T_MCO20B", "rows_loaded"): "pass",
        ("T_MCO21B", "quarantined_rows"): "error",
        ("T_MCO21B", "rows_loaded"): "error",
        ("T_SSR20B", "quarantined_rows"): "pass",
        ("T_SSR20B", "rows_loaded"): "pass",
        ("", f"quarantined_rows:{DELIVERY_TARGET}"): "error",  # 13 of 95 lines: over 1 % of the delivery
    }
    delivery = threshold_for(thresholds, Check("quarantined_rows", label=DELIVERY_TARGET), None)
    assert (delivery.severity, delivery.max_failing_share) == ("error", 0.01)
    table = threshold_for(thresholds, Check("quarantined_rows"), TABLES["T_MCO19B"])
    assert (table.severity, table.max_failing_share) == ("error", 0.1)
    assert {r.check.category for r in results} == {"conformance", "completeness"}


def test_each_count_of_a_table_query_has_its_own_name() -> None:
    checks = table_checks(TABLES["ER_PRS_F"], RULES)
    aliases = check_aliases(checks)
    assert len(set(aliases)) == len(aliases) == len(checks) and max(map(len, aliases)) <= 30
    assert aliases == check_aliases(checks) and check_aliases(checks[1:]) == aliases[1:]  # not by position
    assert check_aliases([checks[0], checks[0]])[1] == f"{aliases[0]}_2"


def test_the_macro_checks_the_delivery_identifier_with_the_same_pattern() -> None:
    macro = (PROJECT_ROOT / "macros" / "conformity" / "conformity_query.sql").read_text(encoding="utf-8")
    assert f"modules.re.fullmatch('{identifiers.DELIVERY_ID.pattern}'" in macro
    assert "'{{ delivery_id }}'" not in macro.replace("'{{ delivery_id }}'\n{%- endmacro %}", "")


def _rules_dir(tmp_path: Path, flags: str) -> Path:
    copy = tmp_path / "conformity"
    shutil.copytree(RULES_DIR, copy)
    (copy / "conformity_cleaning_flags.csv").write_text(
        "flag,table_pattern,column_pattern,operator,flag_values,description\n" + flags, encoding="utf-8"
    )
    return copy


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("odd,ER_PRS_F,DPN_QLF,above,71,x\n", "operator 'above'"),
        ("odd,ER_PRS_F,DPN_QLF,equals,seventy,x\n", "DPN_QLF is numeric, 'seventy' is not a number"),
        ("odd,ER_PRS_F,DPN_QLF,starts_with,7,x\n", "starts_with needs a text column"),
        ("odd,T_MCO19B,GRG_GHM,equals,O'K,x\n", "quotes are not accepted"),
    ],
)
def test_a_bad_cleaning_rule_is_a_clear_error(tmp_path: Path, flags: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rules = load_rules(TABLES, 17, (), _rules_dir(tmp_path, flags))
        for name in ("ER_PRS_F", "T_MCO19B"):
            table_checks(TABLES[name], rules)


def test_check_arguments_reach_jinja_intact() -> None:
    """Quotes, backslashes and accents in arguments survive the Jinja string they travel in."""
    values = ["'a\\b'", "é", '"q"']
    check = Check("cleaning_flag", "GRG_GHM", arguments={"values": values, "operator": "in"})
    received = []
    environment = jinja2.Environment()
    environment.globals |= {"fromjson": json.loads, "conformity_query": lambda *a: received.append(a) or ""}
    environment.from_string(macro_call("T_MCO19B", "D1", [check], None)).render()
    assert received == [("T_MCO19B", "D1", [check.as_macro_argument()], "")]
    with pytest.raises(ValueError, match="quotes are not expected"):
        macro_call("T_MCO19B", "D'1", [check], None)


def test_the_flow_month_of_an_appended_row_is_a_key() -> None:
    """A DCIR line without its flow month (FLX_DIS_DTD) belongs to no delivery's months: an error, as a null key."""
    for name, table in TABLES.items():
        period = table.policy.period_column if table.policy.name == "append" else None
        if period:
            kinds = {(c.kind, c.columns) for c in table_checks(table, RULES) if c.kind == "key_not_null"}
            assert any(period in columns for _, columns in kinds), name
    assert ("key_not_null", ("FLX_DIS_DTD",)) in {(c.kind, c.columns) for c in _checks("ER_PHA_F").values()}
