"""How a CNAM delivery writes dates and datetimes, and the SNDS's "unknown" date: defined once.

Ingestion (DuckDB's CSV reader), Oracle ingestion (TO_DATE / TO_TIMESTAMP), the synthetic deliveries and the
conformity checks all read these. Each format is written once, in strftime form; its Oracle mask is derived
from it, so the two engines cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import date

# DCIR dates and every DATE column: 31/12/2019.
DATE_FORMAT = "%d/%m/%Y"
# PMSI datetimes in the SAS form: 02JAN2019:00:00:00 (month names in English, any case).
TIMESTAMP_FORMAT = "%d%b%Y:%H:%M:%S"
# The SNDS writes an unknown date as 01/01/1600.
UNKNOWN_DATE = date(1600, 1, 1)

_ORACLE_TOKENS = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%b": "MON", "%H": "HH24", "%M": "MI", "%S": "SS"}


def oracle_mask(strftime_format: str) -> str:
    """The Oracle format mask that reads what `strftime_format` writes (`%d/%m/%Y` -> `DD/MM/YYYY`)."""

    def token(match: re.Match[str]) -> str:
        try:
            return _ORACLE_TOKENS[match.group()]
        except KeyError:
            raise ValueError(f"{strftime_format!r}: no Oracle equivalent for {match.group()}") from None

    return re.sub(r"%.", token, strftime_format)


ORACLE_DATE_FORMAT = oracle_mask(DATE_FORMAT)  # DD/MM/YYYY
ORACLE_TIMESTAMP_FORMAT = oracle_mask(TIMESTAMP_FORMAT)  # DDMONYYYY:HH24:MI:SS (with nls_date_language ENGLISH)
