"""How a delivered text becomes a typed value, exactly or not at all.

Every column is read as text, then typed in SQL: a value lands only if it matches its type exactly (no rounding,
no guessed century, no truncation); otherwise its line goes to the quarantine with a reason in the platform's
words (column, expected type and format, what is wrong), never quoting the value. The rules are SQL fragments
over the column's text, written once here and used both to load (`valid`, `parsed`) and to explain (`failure`).
"""

from __future__ import annotations

from dataclasses import dataclass

from snds.catalog.sqltypes import DATE, DOUBLE, NUMERIC, VARCHAR, SqlType
from snds.formats import DATE_FORMAT, ORACLE_DATE_FORMAT, ORACLE_TIMESTAMP_FORMAT, TIMESTAMP_FORMAT

_DATE_TEXT = "[0-9]{2}/[0-9]{2}/[0-9]{4}"
_TIMESTAMP_TEXT = "[0-9]{2}[A-Za-z]{3}[0-9]{4}:[0-9]{2}:[0-9]{2}:[0-9]{2}"
_NUMBER_TEXT = r"[+-]?([0-9]+(\.[0-9]+)?|\.[0-9]+)"
_FLOAT_TEXT = r"[+-]?([0-9]+(\.[0-9]+)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?"


@dataclass(frozen=True)
class Failure:
    code: str
    condition: str  # SQL, over a non-null text that is not valid: true when this is what is wrong
    reason: str


@dataclass(frozen=True)
class ValueRule:
    column: str
    expected: str  # the type and format, as a message shows it: `numeric(5,2)`, `date DD/MM/YYYY`
    valid: str  # SQL: the (non-null) text is exactly a value of the type
    parsed: str  # SQL: the typed value of a valid text
    failures: tuple[Failure, ...]  # in order; the last one's condition is `true`

    @property
    def accepts(self) -> str:
        """SQL: true when the text may land (null, or valid), else false or null (see `rows_accepted`).

        Kept free of `coalesce` so that DuckDB short-circuits it: the pattern runs only where the round trip fails.
        """
        return f"({self.column} is null or {self.valid})"

    @property
    def failure(self) -> str:
        """SQL: null when the text may land, else the code of what is wrong."""
        whens = " ".join(f"when {f.condition} then '{f.code}'" for f in self.failures)
        return f"case when {self.accepts} then null {whens} end"


def _matches(column: str, pattern: str) -> str:
    return f"regexp_full_match({column}, '{pattern}')"


def _numeric(column: str, precision: int, scale: int) -> ValueRule:
    digits = precision - scale
    integer = f"0*[0-9]{{1,{digits}}}" if digits else "0+"
    decimals = rf"(\.[0-9]{{1,{scale}}})?" if scale else ""
    exact = rf"[+-]?({integer}{decimals}" + (rf"|\.[0-9]{{1,{scale}}})" if scale else ")")
    expected = f"numeric({precision},{scale})" if scale else f"numeric({precision})"
    failures = (
        Failure("not_a_number", f"not {_matches(column, _NUMBER_TEXT)}", "not a number"),
        Failure(
            "too_many_decimals",
            _matches(column, rf"[^.]*\.[0-9]{{{scale + 1},}}"),
            f"more than {scale} decimals (never rounded)",
        ),
        Failure("too_many_digits", "true", f"more than {digits} digits before the decimal point"),
    )
    parsed = f"try_cast({column} as decimal({precision},{scale}))"
    valid = _matches(column, exact)
    if not scale:  # the usual spelling proves itself by a round trip, much cheaper than the pattern
        valid = f"cast({parsed} as varchar) = {column} or {valid}"
    return ValueRule(column, expected, valid, parsed, failures)


def value_rule(sql_type: SqlType, column: str) -> ValueRule:
    """The rule of a catalog type for the SQL text expression `column` (a quoted column name)."""
    if sql_type.kind == VARCHAR:
        reason = f"longer than {sql_type.length} characters"
        valid = f"length({column}) <= {sql_type.length}"
        return ValueRule(column, str(sql_type), valid, column, (Failure("too_long", "true", reason),))
    if sql_type.kind == NUMERIC:
        return _numeric(column, sql_type.precision or 0, sql_type.scale or 0)
    if sql_type.kind == DOUBLE:
        return ValueRule(
            column,
            str(sql_type),
            f"{_matches(column, _FLOAT_TEXT)} and isfinite(try_cast({column} as double)) and "
            # no underflow: a non-zero mantissa must not land as 0
            f"(try_cast({column} as double) <> 0 "
            f"or not regexp_matches(regexp_replace({column}, '[eE].*$', ''), '[1-9]'))",
            f"try_cast({column} as double)",
            (Failure("not_a_number", "true", "not a decimal number"),),
        )
    # Dates and datetimes, shown to a supplier in the form the Oracle masks spell (DD/MM/YYYY).
    kind = sql_type.kind
    text, fmt, shown = (
        (_DATE_TEXT, DATE_FORMAT, ORACLE_DATE_FORMAT)
        if kind == DATE
        else (_TIMESTAMP_TEXT, TIMESTAMP_FORMAT, ORACLE_TIMESTAMP_FORMAT)
    )
    parsed = f"try_strptime({column}, '{fmt}')"
    noun = "date" if kind == DATE else "date and time"
    return ValueRule(
        column,
        f"{kind} {shown}",
        f"{_matches(column, text)} and {parsed} >= timestamp '0001-01-01'",  # year 0 would land as 1 BC
        f"cast({parsed} as {kind})",
        (
            Failure(f"not_a_{kind}", f"not {_matches(column, text)}", f"not a {noun} written {shown}"),
            Failure(f"impossible_{kind}", "true", f"not a calendar {noun}"),
        ),
    )


def rows_accepted(rules: list[ValueRule]) -> str:
    """SQL: true when every value of the row may land, else false or null (`rows_not_accepted`: the complement)."""
    return " and ".join(r.accepts for r in rules)


def rows_not_accepted(rules: list[ValueRule]) -> str:
    """SQL: true exactly when `rows_accepted` is not true, so that each row is in one pass or the other."""
    return f"not coalesce({rows_accepted(rules)}, false)"
