"""The catalog's physical types, parsed once: what every piece of tooling asks of a column's type.

The catalog writes ANSI types that DuckDB and Oracle both accept and store alike: `varchar(n)`,
`numeric(p)`, `numeric(p,s)`, `double precision`, `date` and `timestamp`. `SqlType.parse` reads that text
into a value with the facts the tooling needs (text or number, length, precision, scale) and the spelling
each engine wants; `str()` gives the catalog's text back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

VARCHAR, NUMERIC, DOUBLE, DATE, TIMESTAMP = "varchar", "numeric", "double precision", "date", "timestamp"
KINDS = (VARCHAR, NUMERIC, DOUBLE, DATE, TIMESTAMP)
_PATTERN = re.compile(r"(?P<kind>[a-z ]+?)(?:\((?P<first>[0-9]+)(?:,(?P<second>[0-9]+))?\))?")
_BARE = {DOUBLE: "FLOAT(126)", DATE: "DATE", TIMESTAMP: "TIMESTAMP"}
_BARE_DUCKDB = {DOUBLE: "DOUBLE", DATE: "DATE", TIMESTAMP: "TIMESTAMP"}


@dataclass(frozen=True)
class SqlType:
    kind: str  # one of KINDS
    length: int | None = None  # varchar(n)
    precision: int | None = None  # numeric(p) and numeric(p,s)
    scale: int | None = None  # numeric(p,s) only: None for numeric(p)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown type {self.kind!r}: expected one of {', '.join(KINDS)}")
        arguments = (self.length, self.precision, self.scale)
        if self.kind == VARCHAR:
            valid = (self.length or 0) > 0 and self.precision is None and self.scale is None
        elif self.kind == NUMERIC:
            valid = self.length is None and (self.precision or 0) > 0 and (self.scale or 0) >= 0
        else:
            valid = arguments == (None, None, None)
        if not valid:
            raise ValueError(f"invalid arguments for {self.kind}: length, precision, scale = {arguments}")

    @classmethod
    @cache
    def parse(cls, text: str) -> SqlType:
        """The type the catalog spells `text` (`varchar(13)`, `numeric(11,2)`, `date` ...); ValueError otherwise."""
        match = _PATTERN.fullmatch(text)
        if match is None or match["kind"] not in KINDS:
            raise ValueError(
                f"unknown type {text!r}: expected varchar(n), numeric(p[,s]), {DOUBLE}, {DATE}, {TIMESTAMP}"
            )
        kind, first, second = match["kind"], match["first"], match["second"]
        if kind == VARCHAR and first is not None and second is None:
            return cls(kind, length=int(first))
        if kind == NUMERIC and first is not None:
            return cls(kind, precision=int(first), scale=None if second is None else int(second))
        if kind in _BARE and first is None:
            return cls(kind)
        raise ValueError(f"unknown type {text!r}: wrong arguments for {kind}")

    @property
    def is_text(self) -> bool:
        return self.kind == VARCHAR

    @property
    def is_numeric(self) -> bool:
        return self.kind in (NUMERIC, DOUBLE)

    @property
    def is_temporal(self) -> bool:
        return self.kind in (DATE, TIMESTAMP)

    def _arguments(self) -> str:
        if self.kind == VARCHAR:
            return f"({self.length})"
        if self.kind == NUMERIC:
            return f"({self.precision})" if self.scale is None else f"({self.precision},{self.scale})"
        return ""

    @property
    def oracle(self) -> str:
        """What Oracle stores (for the DBA's documentation and external tables)."""
        if self.kind == VARCHAR:
            return f"VARCHAR2{self._arguments()}"
        if self.kind == NUMERIC:
            return f"NUMBER{self._arguments()}"
        return _BARE[self.kind]

    @property
    def duckdb(self) -> str:
        """The type as DuckDB's CSV reader wants it (lengths are checked after the load, not by DuckDB)."""
        if self.kind == VARCHAR:
            return "VARCHAR"
        if self.kind == NUMERIC:
            return f"DECIMAL{self._arguments()}"
        return _BARE_DUCKDB[self.kind]

    def __str__(self) -> str:
        return f"{self.kind}{self._arguments()}"
