"""Physical SQL types of SNDS columns, valid on both engines.

The models use ANSI type names that DuckDB and Oracle both accept and store alike:
`varchar(n)` (Oracle VARCHAR2(n)), `numeric(p,s)` (Oracle NUMBER(p,s)), `double precision`
(Oracle FLOAT(126)), `date`, `timestamp`. One spelling for both engines keeps the generated SQL and
the dbt contracts identical everywhere.

The dictionary declares lengths per table, and not consistently: the same amount column is
`4,2` in ER_PRS_F and `11,2` in EB_PRS_F. A physical type must never reject a value that the
dictionary allows for the same column elsewhere, so each column name gets the widest declaration found
in the dictionary. The declared length stays in the catalog, where conformity checks use it.

A year-month (`AAAAMM`, the dictionary's type `yearmonth`) is text: the dictionary stores most of them as
strings of 6, but a few as `date` (ANN_MOI in T_MCOaaBPHN and T_SUPaa*, ENT_AM and SOR_AM in the 2009-2010
PMSI C tables), where every delivered `201903` would be rejected. A column name typed `yearmonth` anywhere
in the dictionary is `varchar(6)` everywhere, like any other column name gets one type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from snds.catalog.dictionary import DictColumn
from snds.catalog.sqltypes import DATE, DOUBLE, NUMERIC, TIMESTAMP, VARCHAR, SqlType

MAX_PRECISION = 38
YEAR_MONTH = "yearmonth"  # the dictionary's type of a year-month (AAAAMM)


@dataclass(frozen=True)
class Defaults:
    string_length: int
    integer_precision: int
    year_month_length: int


@dataclass
class _Width:
    chars: int = 0
    integer_digits: int = 0
    scale: int = 0
    declared: bool = False
    year_month: bool = False

    def add(self, column: DictColumn) -> None:
        self.year_month = self.year_month or column.logical_type == YEAR_MONTH
        length = column.length
        if not length:
            return
        self.declared = True
        precision_text, _, scale_text = length.partition(",")
        precision, scale = int(precision_text), int(scale_text or 0)
        self.chars = max(self.chars, precision)
        self.integer_digits = max(self.integer_digits, precision - scale)
        self.scale = max(self.scale, scale)


class TypeMapper:
    """Maps dictionary columns to physical types, widening each column name across the dictionary."""

    def __init__(self, columns: Iterable[tuple[str, DictColumn]], defaults: Defaults) -> None:
        self._defaults = defaults
        self._widths: dict[tuple[str, str], _Width] = {}
        for scope, column in columns:
            self._widths.setdefault((scope, column.name.upper()), _Width()).add(column)

    def sql_type(self, scope: str, column: DictColumn) -> SqlType:
        """The type used in models and contracts (`scope` separates independent namespaces)."""
        width = self._widths.get((scope, column.name.upper()), _Width())
        storage = column.storage
        if width.year_month:
            return SqlType(VARCHAR, length=max(width.chars, self._defaults.year_month_length))
        if storage == "string":
            return SqlType(VARCHAR, length=width.chars or self._defaults.string_length)
        if storage in ("number", "integer"):
            return self._numeric(column, width)
        if storage == "datetime" or column.logical_type == "datetime":
            return SqlType(TIMESTAMP)
        if storage == "date":
            return SqlType(DATE)
        raise ValueError(f"{column.name}: unknown storage type {storage!r}")

    def _numeric(self, column: DictColumn, width: _Width) -> SqlType:
        if not width.declared:
            if column.logical_type == "number":
                return SqlType(DOUBLE)
            return SqlType(NUMERIC, precision=self._defaults.integer_precision)
        digits = max(width.integer_digits, 1)
        if width.scale:
            return SqlType(NUMERIC, precision=min(digits + width.scale, MAX_PRECISION), scale=width.scale)
        return SqlType(NUMERIC, precision=min(digits, MAX_PRECISION))


def holding_pseudonym(sql_type: SqlType, column: str, length: int) -> SqlType:
    """The type of a direct identifier column, widened if needed to hold a platform pseudonym."""
    if not sql_type.is_text or sql_type.length is None:
        raise ValueError(f"{column}: a direct identifier must be text to hold a pseudonym, not {sql_type}")
    return replace(sql_type, length=max(sql_type.length, length))
