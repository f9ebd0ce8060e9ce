"""The catalog's type strings, parsed once: kinds, lengths, engine spellings and the round trip; and how a
delivery writes the temporal types."""

from __future__ import annotations

from datetime import datetime

import pytest

from snds.catalog.committed import load_tables
from snds.catalog.sqltypes import SqlType
from snds.formats import (
    DATE_FORMAT,
    ORACLE_DATE_FORMAT,
    ORACLE_TIMESTAMP_FORMAT,
    TIMESTAMP_FORMAT,
    UNKNOWN_DATE,
    oracle_mask,
)


@pytest.mark.parametrize(
    ("text", "kind", "length", "precision", "scale", "oracle", "duckdb"),
    [
        ("varchar(13)", "varchar", 13, None, None, "VARCHAR2(13)", "VARCHAR"),
        ("numeric(11,2)", "numeric", None, 11, 2, "NUMBER(11,2)", "DECIMAL(11,2)"),
        ("numeric(18)", "numeric", None, 18, None, "NUMBER(18)", "DECIMAL(18)"),
        ("numeric(5,0)", "numeric", None, 5, 0, "NUMBER(5,0)", "DECIMAL(5,0)"),
        ("double precision", "double precision", None, None, None, "FLOAT(126)", "DOUBLE"),
        ("date", "date", None, None, None, "DATE", "DATE"),
        ("timestamp", "timestamp", None, None, None, "TIMESTAMP", "TIMESTAMP"),
    ],
)
def test_parse_gives_the_facts_and_both_engine_spellings(
    text: str, kind: str, length: int | None, precision: int | None, scale: int | None, oracle: str, duckdb: str
) -> None:
    parsed = SqlType.parse(text)
    assert (parsed.kind, parsed.length, parsed.precision, parsed.scale) == (kind, length, precision, scale)
    assert (parsed.oracle, parsed.duckdb, str(parsed)) == (oracle, duckdb, text)
    assert SqlType.parse(text) is parsed  # parsed once


def test_kinds() -> None:
    text, number, real, day, moment = (
        SqlType.parse(t) for t in ("varchar(2)", "numeric(3)", "double precision", "date", "timestamp")
    )
    assert text.is_text and not (text.is_numeric or text.is_temporal)
    assert number.is_numeric and real.is_numeric and not (number.is_text or number.is_temporal)
    assert day.is_temporal and moment.is_temporal and not (day.is_text or day.is_numeric)


@pytest.mark.parametrize(
    "text",
    [
        "varchar",
        "varchar2(10)",
        "VARCHAR(10)",
        "varchar(0)",
        "varchar(10,2)",
        "numeric",
        "numeric(11, 2)",
        "decimal(11,2)",
        "double",
        "date(8)",
        "integer",
        "text",
        "",
    ],
)
def test_unknown_or_malformed_types_are_errors(text: str) -> None:
    with pytest.raises(ValueError, match=r"type|arguments"):
        SqlType.parse(text)


def test_direct_construction_is_checked() -> None:
    assert str(SqlType("varchar", length=17)) == "varchar(17)"
    with pytest.raises(ValueError):
        SqlType("varchar")
    with pytest.raises(ValueError):
        SqlType("date", length=8)
    with pytest.raises(ValueError):
        SqlType("blob")


def test_every_committed_column_type_round_trips() -> None:
    columns = [c for t in load_tables().values() for c in t.columns]
    assert all(str(c.sql_type) == c.data_type and c.sql_type.oracle == c.oracle_type for c in columns)
    assert {c.sql_type.kind for c in columns} == {"varchar", "numeric", "double precision", "date", "timestamp"}


def test_delivery_formats_are_written_once_for_both_engines() -> None:
    assert UNKNOWN_DATE.strftime(DATE_FORMAT) == "01/01/1600"
    assert datetime(2019, 1, 2, 13, 5, 9).strftime(TIMESTAMP_FORMAT).upper() == "02JAN2019:13:05:09"
    assert (ORACLE_DATE_FORMAT, ORACLE_TIMESTAMP_FORMAT) == ("DD/MM/YYYY", "DDMONYYYY:HH24:MI:SS")
    with pytest.raises(ValueError, match="%j"):
        oracle_mask("%Y%j")
