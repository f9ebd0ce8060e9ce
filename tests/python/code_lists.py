"""A delivery of the one code list the event layer reads that the dictionary ships: IR_CIP_V (CIP7 -> ATC class)."""

from __future__ import annotations

import csv
from pathlib import Path

from snds import config
from snds.ingest.verify import write_manifest


def cip_code_list_delivery(out: Path) -> Path:
    """IR_CIP_V as a delivery in `out` (one line per row, with its manifest), ready for `ingest_delivery`."""
    out.mkdir(parents=True)
    source = config.reference_dir() / "nomenclatures" / "ORAVAL" / "IR_CIP_V.csv"
    with source.open(encoding="utf-8", newline="") as reader, (out / "IR_CIP_V.csv").open("w", encoding="utf-8") as w:
        csv.writer(w, delimiter=";", lineterminator="\n").writerows(csv.reader(reader, delimiter=";"))
    write_manifest(out, [("IR_CIP_V.csv", "IR_CIP_V")])
    return out
