"""Check every file of a delivery against its manifest and the catalog before anything is loaded."""

from __future__ import annotations

import csv
import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from snds.catalog.committed import CatalogTable
from snds.ingest.errors import DeliveryRefused
from snds.ingest.manifest import MANIFEST_NAME, Manifest, ManifestEntry

CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifiedFile:
    entry: ManifestEntry
    path: Path
    table: CatalogTable
    header: tuple[str, ...]  # catalog spelling, in the file's order
    size: int


def scan_file(path: Path, encoding: str) -> tuple[str, int, str]:
    """The file's sha256 (as delivered), its data rows (header excluded) and its header line.

    One pass over a plain file; a compressed one is hashed as delivered and counted decompressed.
    Refuses truncated or corrupt gzip and empty files.
    """
    digest = hashlib.sha256()
    newlines, last, first_line = 0, b"\n", b""
    compressed = path.name.endswith(".gz")
    try:
        with path.open("rb") as raw:
            stream = gzip.open(raw, "rb") if compressed else raw
            while chunk := stream.read(CHUNK):
                if not compressed:
                    digest.update(chunk)
                if not first_line:
                    first_line = chunk.split(b"\n", 1)[0]
                newlines += chunk.count(b"\n")
                last = chunk[-1:]
        if compressed:
            with path.open("rb") as raw:
                while chunk := raw.read(CHUNK):
                    digest.update(chunk)
    except (EOFError, OSError, zlib.error) as error:
        raise DeliveryRefused(f"{path.name}: unreadable or truncated compressed file ({error})") from error
    lines = newlines + (0 if last == b"\n" else 1)
    if lines == 0 or not first_line.strip():
        raise DeliveryRefused(f"{path.name}: empty file (no header row)")
    try:
        header = first_line.rstrip(b"\r").decode(encoding)
    except UnicodeDecodeError as error:
        raise DeliveryRefused(f"{path.name}: header is not valid {encoding} ({error.reason})") from error
    return digest.hexdigest(), lines - 1, header


def _match_header(entry: ManifestEntry, header: str, table: CatalogTable) -> tuple[str, ...]:
    names = [h.strip().strip('"') for h in header.split(";")]
    by_upper = {c.name.upper(): c.name for c in table.columns}
    unknown = [n for n in names if n.upper() not in by_upper]
    missing = sorted(set(by_upper) - {n.upper() for n in names})
    duplicated = sorted({n for n in names if [m.upper() for m in names].count(n.upper()) > 1})
    problems = []
    if unknown:
        problems.append(f"unknown columns {', '.join(unknown)}")
    if missing:
        problems.append(f"missing columns {', '.join(by_upper[m] for m in missing)}")
    if duplicated:
        problems.append(f"columns twice {', '.join(duplicated)}")
    if problems:
        raise DeliveryRefused(f"{entry.file}: header does not match {table.name}: {'; '.join(problems)}")
    return tuple(by_upper[n.upper()] for n in names)


def verify_delivery(
    manifest: Manifest,
    catalog: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
) -> list[VerifiedFile]:
    """Every listed file present, digest and row count as declared, table known, header matching."""
    listed = {e.file for e in manifest.entries}
    strays = sorted(
        p.name for p in manifest.directory.iterdir() if p.is_file() and p.name not in listed and p.name != MANIFEST_NAME
    )
    if strays:
        raise DeliveryRefused(f"{manifest.directory}: files not listed in the manifest: {', '.join(strays[:10])}")
    verified = []
    for entry in manifest.entries:
        path = manifest.directory / entry.file
        if not path.is_file():
            raise DeliveryRefused(f"{entry.file}: listed in the manifest but absent")
        table = catalog.get(entry.table)
        if table is None:
            raise DeliveryRefused(f"{entry.file}: unknown table {entry.table!r} (not in the SNDS catalog)")
        if not path.name.endswith((".csv", ".csv.gz")):
            raise DeliveryRefused(f"{entry.file}: expected a .csv or .csv.gz file")
        digest, rows, header = scan_file(path, entry.encoding)
        if digest != entry.sha256:
            raise DeliveryRefused(f"{entry.file}: sha256 is {digest}, the manifest says {entry.sha256}")
        if rows != entry.rows:
            raise DeliveryRefused(f"{entry.file}: {rows} data rows, the manifest says {entry.rows}")
        verified.append(VerifiedFile(entry, path, table, _match_header(entry, header, table), path.stat().st_size))
        progress(path.stat().st_size)
    return verified


def write_manifest(directory: Path, files: Iterable[tuple[str, str]]) -> int:
    """Write `MANIFEST.csv` for (file name, table) pairs of UTF-8 files in `directory`; returns the total rows."""
    total = 0
    with (directory / MANIFEST_NAME).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(["file", "table", "rows", "sha256"])
        for name, table in files:
            digest, rows, _ = scan_file(directory / name, "utf-8")
            writer.writerow([name, table, rows, digest])
            total += rows
    return total
