"""Delivery policies as data (conventions.yml -> the committed catalog), and the rules that read them."""

from __future__ import annotations

import pytest

from snds.catalog.committed import load_tables
from snds.catalog.policies import APPEND, REPLACE_YEAR, SNAPSHOT, parse_rules, policy_for


def test_the_catalog_follows_the_snds_rhythm() -> None:
    tables = load_tables()
    assert tables["ER_PRS_F"].policy.name == APPEND and tables["ER_PRS_F"].policy.period_column == "FLX_DIS_DTD"
    assert tables["NS_PRS_F"].policy.name == APPEND  # DCIRS flows too
    assert tables["T_MCO19B"].policy.name == REPLACE_YEAR and tables["ER_PRS_F_2019"].policy.name == REPLACE_YEAR
    assert tables["IR_BEN_R"].policy.name == SNAPSHOT and tables["IR_CIP_V"].policy.name == SNAPSHOT
    appended = {t.product for t in tables.values() if t.policy.name == APPEND}
    assert appended == {"DCIR", "DCIRS"}
    assert all(t.year is not None for t in tables.values() if t.policy.name == REPLACE_YEAR)


def test_the_first_matching_rule_wins_and_needs_its_period_column() -> None:
    rules = parse_rules(
        [
            {"policy": APPEND, "products": ["DCIR"], "yearly": False, "period_column": "FLX_DIS_DTD"},
            {"policy": REPLACE_YEAR, "yearly": True},
            {"policy": SNAPSHOT},
        ]
    )
    assert policy_for(rules, "DCIR", False, ["FLX_DIS_DTD"]).name == APPEND
    assert policy_for(rules, "DCIR", False, ["OTHER"]).name == SNAPSHOT  # no period column: not a flow
    assert policy_for(rules, "DCIR", True, ["FLX_DIS_DTD"]).name == REPLACE_YEAR
    assert policy_for(rules, "PMSI MCO", True, []).name == REPLACE_YEAR


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([{"policy": "merge"}], "not one of"),
        ([{"policy": APPEND}], "period column is required"),
        ([{"policy": SNAPSHOT, "period_column": "X"}], "period column is required"),
        ([{"policy": SNAPSHOT, "yearly": True}], "must match every table"),
    ],
)
def test_bad_rules_are_refused(raw: list[dict], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rules(raw)
