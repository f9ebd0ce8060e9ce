"""The delivery manifest (`MANIFEST.csv`): what the CNAM says it sent."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from snds.ingest.errors import DeliveryRefused

MANIFEST_NAME = "MANIFEST.csv"
REQUIRED_COLUMNS = ("file", "table", "rows", "sha256")
ENCODINGS = {"UTF-8": "utf-8", "UTF8": "utf-8", "CP1252": "cp1252", "WINDOWS-1252": "cp1252"}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    table: str
    rows: int
    sha256: str
    encoding: str  # Python codec name: utf-8 or cp1252


@dataclass(frozen=True)
class Manifest:
    delivery_id: str
    directory: Path
    entries: tuple[ManifestEntry, ...]
    sha256: str  # digest of the manifest itself: a delivery's identity for idempotence


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise DeliveryRefused(f"{directory}: no such delivery directory")
    if not path.is_file():
        raise DeliveryRefused(f"{directory}: no {MANIFEST_NAME}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DeliveryRefused(f"{path}: not UTF-8 ({error})") from error
    reader = csv.DictReader(text.splitlines(), delimiter=";")
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DeliveryRefused(f"{path}: header lacks {', '.join(missing)} (expected file;table;rows;sha256[;encoding])")
    reader.fieldnames = header
    entries = []
    for line, row in enumerate(reader, start=2):
        entries.append(_entry(path, line, row))
    if not entries:
        raise DeliveryRefused(f"{path}: lists no file")
    names = [e.file for e in entries]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise DeliveryRefused(f"{path}: files listed twice: {', '.join(duplicated)}")
    return Manifest(directory.name, directory, tuple(entries), hashlib.sha256(raw).hexdigest())


def _entry(path: Path, line: int, row: dict[str, str | None]) -> ManifestEntry:
    def field(name: str) -> str:
        return (row.get(name) or "").strip()

    where = f"{path}, line {line}"
    file, table, rows, sha256 = field("file"), field("table").upper(), field("rows"), field("sha256").lower()
    if not file or "/" in file or "\\" in file or file.startswith("."):
        raise DeliveryRefused(f"{where}: invalid file name {file!r}")
    if not rows.isdigit():
        raise DeliveryRefused(f"{where}: rows must be a non-negative integer, got {rows!r}")
    if not _SHA256.fullmatch(sha256):
        raise DeliveryRefused(f"{where}: sha256 must be 64 hexadecimal digits")
    encoding_name = field("encoding").upper() or "UTF-8"
    if encoding_name not in ENCODINGS:
        raise DeliveryRefused(f"{where}: unsupported encoding {encoding_name!r} (UTF-8 or CP1252)")
    return ManifestEntry(file, table, int(rows), sha256, ENCODINGS[encoding_name])
