"""Physical SQL types of SNDS columns, valid on both engines.

The models use ANSI type names that DuckDB and Oracle both accept and store alike:
`varchar(n)` (Oracle VARCHAR2(n)), `numeric(p,s)` (Oracle NUMBER(p,s)), `double precision`
(Oracle FLOAT(126)), `date`, `timestamp`. One spelling for both engines keeps the generated SQL and
the dbt contracts identical everywhere.

The dictionary declares lengths per table, and not consistently: the same amount column is
`4,2` in ER_PRS_F and `11,2` in EB_PRS_F. A physical type must never reject a value that the
dictionary allows for the same column elsewhere, so each column name gets the widest declaration found
in the dictionary. The declared length stays in the catalog, where conformity checks use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from snds.catalog.dictionary import DictColumn

MAX_PRECISION = 38


@dataclass(frozen=True)
class Defaults:
    string_length: int
    integer_precision: int


@dataclass
class _Width:
    chars: int = 0
    integer_digits: int = 0
    scale: int = 0
    declared: bool = False

    def add(self, length: str | None) -> None:
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
            self._widths.setdefault((scope, column.name.upper()), _Width()).add(column.length)

    def sql_type(self, scope: str, column: DictColumn) -> str:
        """The type used in models and contracts (`scope` separates independent namespaces)."""
        width = self._widths.get((scope, column.name.upper()), _Width())
        storage = column.storage
        if storage == "string":
            return f"varchar({width.chars or self._defaults.string_length})"
        if storage in ("number", "integer"):
            return self._numeric(column, width)
        if storage == "datetime" or column.logical_type == "datetime":
            return "timestamp"
        if storage == "date":
            return "date"
        raise ValueError(f"{column.name}: unknown storage type {storage!r}")

    def _numeric(self, column: DictColumn, width: _Width) -> str:
        if not width.declared:
            if column.logical_type == "number":
                return "double precision"
            return f"numeric({self._defaults.integer_precision})"
        digits = max(width.integer_digits, 1)
        if width.scale:
            return f"numeric({min(digits + width.scale, MAX_PRECISION)},{width.scale})"
        return f"numeric({min(digits, MAX_PRECISION)})"


def oracle_type(sql_type: str) -> str:
    """What Oracle stores for one of our ANSI types (for the DBA's documentation and external tables)."""
    name, _, args = sql_type.partition("(")
    args = args.rstrip(")")
    return {
        "varchar": f"VARCHAR2({args})",
        "numeric": f"NUMBER({args})",
        "double precision": "FLOAT(126)",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    }[name]


def holding_pseudonym(data_type: str, column: str, length: int) -> str:
    """The type of a direct identifier column, widened if needed to hold a platform pseudonym."""
    if not data_type.startswith("varchar("):
        raise ValueError(f"{column}: a direct identifier must be text to hold a pseudonym, not {data_type}")
    return f"varchar({max(int(data_type[len('varchar(') : -1]), length)})"
