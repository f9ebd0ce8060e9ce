"""The value rules against an independent definition of "exact", on thousands of near-miss texts.

`snds.ingest.values` proves integers by a cheap round trip through DuckDB's cast and leans on DuckDB's parsers,
which alone accept more than they should (`1.5` as the integer 2, ` 1/02/2020`, `01/02/202 ` as the year 202).
Here Python decides, with its own parsers and the strict spelling, which texts are exact; DuckDB must accept
exactly those, and land each as the value Python reads.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

import duckdb
import pytest

from snds.catalog.sqltypes import SqlType
from snds.formats import DATE_FORMAT, TIMESTAMP_FORMAT
from snds.ingest.values import value_rule

ALPHABET = "0123456789+-./:eE_ \tJANjanDEC"
SEEDS = {
    "numeric(4)": ["1234", "-3", "0042", "+7", "-0", "9999", "10000", "1.5", "12."],
    "numeric(7,2)": ["1.23", "-0.5", "12345.67", "007.10", ".25", "+3", "1.235", "123456"],
    "date": ["01/01/2019", "29/02/2020", "31/02/2019", "01/01/0000", "01/01/0999", "1/1/19"],
    "timestamp": ["02JAN2019:00:00:00", "31dec2019:23:59:59", "31FEB2019:00:00:00", "01JAN0000:00:00:00"],
}


def _numeric(precision: int, scale: int) -> Callable[[str], object | None]:
    digits = precision - scale

    def exact(text: str) -> object | None:
        match = re.fullmatch(r"[+-]?([0-9]*)(?:\.([0-9]*))?", text, re.ASCII)
        if not match or not (match[1] or match[2]) or (match[2] is not None and not match[2]):
            return None  # empty, a sign alone, or a point without decimals after it
        whole, decimals = match[1], match[2] or ""
        if len(decimals) > scale or len(whole.lstrip("0")) > digits:
            return None
        return Decimal(text)

    return exact


def _moment(fmt: str, spelling: str, kind: str) -> Callable[[str], object | None]:
    def exact(text: str) -> object | None:
        if not re.fullmatch(spelling, text, re.ASCII):
            return None
        try:
            moment = datetime.strptime(text, fmt)
        except ValueError:
            return None
        return moment.date() if kind == "date" else moment

    return exact


REFERENCE: dict[str, Callable[[str], object | None]] = {
    "numeric(4)": _numeric(4, 0),
    "numeric(7,2)": _numeric(7, 2),
    "date": _moment(DATE_FORMAT, r"[0-9]{2}/[0-9]{2}/[0-9]{4}", "date"),
    "timestamp": _moment(TIMESTAMP_FORMAT, r"[0-9]{2}[A-Za-z]{3}[0-9]{4}(:[0-9]{2}){3}", "timestamp"),
}


def _near_misses(seeds: list[str], count: int, rng: random.Random) -> list[str]:
    """The seeds, and texts one to three edits away from them (insert, delete or replace a character)."""
    texts = set(seeds)
    while len(texts) < count:
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            position = rng.randint(0, len(text))
            edit = rng.choice("idr")
            if edit == "i" or not text:
                text.insert(position, rng.choice(ALPHABET))
            elif edit == "d":
                del text[min(position, len(text) - 1)]
            else:
                text[min(position, len(text) - 1)] = rng.choice(ALPHABET)
        texts.add("".join(text))
    return sorted(texts)


@pytest.mark.parametrize("type_text", sorted(SEEDS))
def test_duckdb_accepts_exactly_the_exact_texts_and_lands_their_value(type_text: str) -> None:
    rule = value_rule(SqlType.parse(type_text), "t")
    texts = _near_misses(SEEDS[type_text], 4000, random.Random(type_text))
    con = duckdb.connect()
    con.execute("create table texts (t varchar)")
    con.executemany("insert into texts values (?)", [[t] for t in texts])
    rows = con.execute(
        f"select t, coalesce({rule.accepts}, false), {rule.parsed}, {rule.failure} from texts order by t"
    ).fetchall()
    reference = REFERENCE[type_text]
    wrong = []
    for text, accepted, parsed, failure in rows:
        expected = reference(text)  # Python has no year 0: refused on both sides
        explained = failure is not None
        if accepted != (expected is not None) or (accepted and parsed != expected) or accepted == explained:
            wrong.append((text, accepted, parsed, expected, failure))
    assert not wrong, wrong[:10]
    assert sum(1 for row in rows if row[1]) >= 50, "too few accepted texts to prove anything"
    assert sum(1 for row in rows if not row[1]) >= 50


def test_the_reference_is_strict() -> None:
    """The Python side, checked by hand: a reference that accepted everything would prove nothing."""
    number, amount = REFERENCE["numeric(4)"], REFERENCE["numeric(7,2)"]
    assert [number(t) for t in ("0042", "+7", "-0")] == [Decimal(42), Decimal(7), Decimal(0)]
    assert [number(t) for t in ("1.5", " 12", "1_000", "1e2", "12.", "12345", "", "-")] == [None] * 8
    assert amount(".25") == Decimal("0.25") and amount("1.235") is None and amount("123456") is None
    day = REFERENCE["date"]
    assert day("29/02/2020") == date(2020, 2, 29)
    assert [day(t) for t in (" 1/02/2020", "01/02/202 ", "1/02/2020\t", "31/02/2019", "01/02/20")] == [None] * 5
