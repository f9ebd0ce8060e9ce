"""The Oracle check: valid Oracle SQL passes, and every construct Oracle rejects is caught."""

from __future__ import annotations

import pytest

from snds.sqlcheck import check_sql

VALID_ORACLE = [
    "select cast(a as varchar(13)) as a, cast(b as numeric(10,2)) as b from landing.t",
    "select cast(c as double precision) as c, cast(d as date) as d, cast(e as timestamp) as e from t",
    "with k as (select a, count(*) as n from t group by a) select * from k where n > 1 or a is null",
    "select x.a from t x join u y on x.a = y.a where x.b in (1, 2) fetch first 10 rows only",
    "select 'limit' as l, 'true' as t, left_margin from dual",
    "select 1 as one from dual",
    "create table snds.t (a varchar(3), b numeric(10,2), c double precision, d date, e timestamp)",
]


@pytest.mark.parametrize("sql", VALID_ORACLE)
def test_valid_oracle_sql_passes(sql: str) -> None:
    assert check_sql(sql) == []


REJECTED = [
    ("limit", "select a from t limit 3"),
    ("double-colon-cast", "select a::integer from t"),
    ("ilike", "select a from t where a ilike 'x%'"),
    ("boolean-literal", "select a from t where flag = true"),
    ("boolean-literal", "select false as f from dual"),
    ("qualify", "select a from t qualify row_number() over (order by a) = 1"),
    ("type", "select cast(a as double) from t"),
    ("type", "select cast(a as varchar) from t"),
    ("type", "select cast(a as boolean) from t"),
    ("type", "select cast(a as bigint) from t"),
    ("type", "select cast(a as text) from t"),
    ("type", "select cast(a as hugeint) from t"),
    ("function", "select strftime(a, '%Y') from t"),
    ("function", "select date_trunc('month', a) from t"),
    ("function", "select regexp_matches(a, 'x') from t"),
    ("function", "select string_agg(a, ',') from t"),
    ("function", "select ifnull(a, 0) from t"),
    ("identifier-length", "select " + "a" * 129 + " from t"),
    ("table-alias-as", "select * from t as x"),
    ("table-alias-as", "select * from t x join u as y on x.a = y.a"),
    ("table-alias-as", "select * from (select 1 as a from dual) as s"),
    ("table-alias-as", "select * from a, b as c"),
    ("select-without-from", "select 1"),
    ("empty-in-list", "select a from t where a in ()"),
    ("create-or-replace-table", "create or replace table t as select 1 as a from dual"),
    ("if-not-exists", "create table if not exists t (a integer)"),
    ("star-modifier", "select * exclude (a) from t"),
    ("set-distinct", "select a from t union distinct select a from u"),
    ("grammar", "select from where"),
]


@pytest.mark.parametrize(("rule", "sql"), REJECTED)
def test_rejected_construct_is_caught(rule: str, sql: str) -> None:
    assert rule in {finding.rule for finding in check_sql(sql)}


def test_identifier_of_exactly_128_bytes_is_allowed() -> None:
    assert check_sql("select " + "a" * 128 + " from t") == []


def test_finding_reports_the_line() -> None:
    findings = check_sql("select a\nfrom t\nlimit 3")
    assert [(f.rule, f.line) for f in findings] == [("limit", 3)]
