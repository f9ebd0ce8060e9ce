"""The nomenclatures as a delivery: the dictionary's code lists, with a manifest, for `snds ingest`.

Code lists reach the base through the same path as CNAM data (verification, typing, quarantine, ledger),
so a reference update is audited and balanced like any delivery.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from snds.catalog.committed import CatalogTable
from snds.catalog.dictionary import NOMENCLATURE_PRODUCT
from snds.ingest.verify import write_manifest


@dataclass(frozen=True)
class ReferenceDelivery:
    directory: Path
    files: int
    rows: int
    missing: tuple[str, ...]  # nomenclatures whose code list the dictionary does not ship


def _normalise(source: Path, target: Path) -> None:
    """Rewrite a code list as a delivery file: one line per row (line breaks inside labels become spaces)."""
    with source.open(encoding="utf-8", newline="") as reader, target.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        for row in csv.reader(reader, delimiter=";"):
            writer.writerow([" ".join(value.split()) if "\n" in value or "\r" in value else value for value in row])


def build_reference_delivery(reference: Path, out: Path, catalog: dict[str, CatalogTable]) -> ReferenceDelivery:
    """Copy every nomenclature's CSV into `out` (created, must be empty) with a MANIFEST.csv."""
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    sources = {p.stem: p for p in (reference / "nomenclatures").rglob("*.csv")}
    names = sorted(t.name for t in catalog.values() if t.product == NOMENCLATURE_PRODUCT)
    entries, missing = [], []
    for name in names:
        source = sources.get(name)
        if source is None:
            missing.append(name)
            continue
        target = out / f"{name}.csv"
        _normalise(source, target)
        entries.append((target.name, name))
    rows = write_manifest(out, entries)
    return ReferenceDelivery(out, len(entries), rows, tuple(missing))
