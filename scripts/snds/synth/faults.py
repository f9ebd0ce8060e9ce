"""Plant known bad rows in a synthetic delivery, each listed with the reason ingestion must give."""

from __future__ import annotations

from pathlib import Path

from snds.catalog.committed import CatalogTable
from snds.catalog.sqltypes import DATE, NUMERIC

TARGET_PREFIXES = ("IR_BEN_R", "ER_PRS_F", "T_MCO")
KINDS = ("wrong_field_count", "impossible_date", "text_in_numeric", "string_too_long", "undecodable_bytes")
REASON_CODES = {  # the codes of landing.quarantine (snds.ingest.values and snds.ingest.load)
    "wrong_field_count": "field_count",
    "impossible_date": "impossible_date",
    "text_in_numeric": "not_a_number",
    "string_too_long": "too_long",
    "undecodable_bytes": "encoding",
}


def _bad_line(kind: str, template: list[bytes], table: CatalogTable) -> tuple[bytes, str | None] | None:
    columns = table.columns
    fields = list(template)

    def first(predicate) -> int | None:  # noqa: ANN001
        return next((i for i, c in enumerate(columns) if predicate(c) and not c.name.startswith("BEN_NIR")), None)

    if kind == "wrong_field_count":
        return b";".join(fields[:-2]), None
    if kind == "impossible_date":
        i = first(lambda c: c.sql_type.is_temporal)
        if i is None:
            return None
        fields[i] = b"31/02/2019" if columns[i].sql_type.kind == DATE else b"31FEB2019:00:00:00"
    elif kind == "text_in_numeric":
        i = first(lambda c: c.sql_type.kind == NUMERIC)
        if i is None:
            return None
        fields[i] = b"abc"
    elif kind == "string_too_long":
        i = first(lambda c: c.max_chars is not None and c.max_chars < 100)
        if i is None:
            return None
        fields[i] = b"X" * ((columns[i].max_chars or 0) + 5)
    else:
        i = first(lambda c: c.max_chars is not None)
        if i is None:
            return None
        fields[i] = b"\xff\xfe"
    return b";".join(fields), columns[i].name


def plant_faults(
    out: Path, catalog: dict[str, CatalogTable], rows: dict[str, int], rate: float, seed: int
) -> list[dict]:
    """Insert bad rows in the target files (updating `rows`) and return what ingestion must report."""
    faults: list[dict] = []
    for name in sorted(rows):
        table_name = name.removesuffix(".csv")
        if not table_name.startswith(TARGET_PREFIXES) or not rows[name] or not table_name.endswith(("_R", "_F", "B")):
            continue
        path = out / name
        lines = path.read_bytes().split(b"\n")
        header, data = lines[0], [line for line in lines[1:] if line]
        wanted = max(len(KINDS), round(rate * len(data)))
        bad: list[tuple[bytes, dict]] = []
        for n in range(wanted):
            kind = KINDS[n % len(KINDS)]
            made = _bad_line(kind, data[0].split(b";"), catalog[table_name])
            if made is not None:
                bad.append(
                    (
                        made[0],
                        {
                            "table": table_name,
                            "file": name,
                            "kind": kind,
                            "reason_code": REASON_CODES[kind],
                            "column": made[1],
                        },
                    )
                )
        step = max(1, len(data) // (len(bad) + 1))
        merged: list[bytes] = []
        queue = list(bad)
        for i, line in enumerate(data):
            merged.append(line)
            if queue and (i + 1 + seed) % step == 0:
                text, fault = queue.pop(0)
                merged.append(text)
                faults.append(fault | {"line": len(merged) + 1})  # +1: the header is line 1
        for text, fault in queue:
            merged.append(text)
            faults.append(fault | {"line": len(merged) + 1})
        path.write_bytes(b"\n".join([header, *merged]) + b"\n")
        rows[name] = len(merged)
    return faults
