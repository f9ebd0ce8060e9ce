"""SAS transport files (XPT version 8, which keeps names up to 32 characters) through pyreadstat.

SAS knows two types: numbers (8-byte doubles: a numeric(p,s) of more than 15 digits loses precision, which the
SNDS's identifiers of 13 digits such as PHA_PRS_C13 do not) and text (a missing text is blank: SAS has no null
text). Dates keep the DATE format, timestamps DATETIME. The file is made in memory, one table at a time.

readstat stamps the time of writing into the library and member headers; the stamps are set to SAS's epoch
(`01JAN60:00:00:00`) so that the same rows give the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

FIXED_STAMP = b"01JAN60:00:00:00"
_STAMP = re.compile(rb"[0-9]{2}[A-Z]{3}[0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{2}")
_FIRST_DATA_HEADER = b"HEADER RECORD*******OBSV8"


def write_xpt(con: duckdb.DuckDBPyConnection, query: str, path: Path, table_name: str, labels: dict[str, str]) -> None:
    """The rows of `query` as an XPT v8 file `path`, the dataset named `table_name`, columns labelled."""
    import pandas
    import pyreadstat

    described = con.execute(f"describe {query}").fetchall()
    frame = con.execute(query).df()
    formats: dict[str, str] = {}
    for name, data_type, *_ in described:
        temporal = "DATE9" if data_type == "DATE" else "DATETIME20" if data_type.startswith("TIMESTAMP") else None
        if temporal and not frame[name].notna().any():  # nothing to infer the type from: a number with the format
            frame[name] = pandas.Series(float("nan"), index=frame.index, dtype="float64")
            formats[name] = temporal
        elif data_type == "DATE":
            frame[name] = frame[name].dt.date
    pyreadstat.write_xport(
        frame,
        str(path),
        table_name=table_name[:32],
        file_format_version=8,
        column_labels={name: label[:256] for name, label in labels.items() if label and name in frame.columns},
        variable_format=formats or None,
    )
    _fix_stamps(path)


def _fix_stamps(path: Path) -> None:
    with path.open("r+b") as handle:
        head = handle.read(1 << 20)
        end = head.find(_FIRST_DATA_HEADER)
        if end < 0:
            raise ValueError(f"{path.name}: not an XPT v8 file (no observation header)")
        fixed = _STAMP.sub(FIXED_STAMP, head[:end])
        handle.seek(0)
        handle.write(fixed)
