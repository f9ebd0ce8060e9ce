"""The delivery manifest (`MANIFEST.csv`): what the CNAM says it sent.

Every name in it is checked against a strict pattern before use, and every problem of every line is collected,
so that a supplier learns all that is wrong with a delivery in one run.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from snds import identifiers
from snds.ingest.errors import DeliveryRefused, Problems

MANIFEST_NAME = "MANIFEST.csv"
REQUIRED_COLUMNS = ("file", "table", "rows", "sha256")
ENCODINGS = {"UTF-8": "utf-8", "UTF8": "utf-8", "CP1252": "cp1252", "WINDOWS-1252": "cp1252"}
DATA_SUFFIXES = (".csv", ".csv.gz")
# A data file's name: letters, digits, `_`, `-` and `.`, no separator, no glob character, no leading dot.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,250}\.csv(\.gz)?")
TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
_ROWS = re.compile(r"[0-9]{1,18}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_MANIFEST_BYTES = 16 << 20


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    table: str
    rows: int
    sha256: str
    encoding: str  # Python codec name: utf-8 or cp1252
    extracted: date | None = None  # when the CNAM extracted the table (optional column `extracted`, YYYY-MM-DD)


@dataclass(frozen=True)
class Manifest:
    delivery_id: str
    directory: Path  # resolved: every file is opened inside it
    entries: tuple[ManifestEntry, ...]
    sha256: str  # digest of the manifest itself: a delivery's identity for idempotence
    problems: Problems | None = None  # lines that could not be read, reported with the verification's own
    named: frozenset[str] = frozenset()  # every file name the manifest gives, on valid lines or not


def shown(name: str) -> str:
    """A supplier-chosen name as a message may show it: escaped (no newline or control character), shortened."""
    text = ascii(name)[1:-1]
    return text if len(text) <= 80 else text[:77] + "..."


def delivery_id_of(directory: Path) -> str:
    """The delivery identifier (the directory's name), checked against the one pattern of identifiers."""
    try:
        return identifiers.delivery_id(directory.name)
    except identifiers.InvalidIdentifier as error:
        raise DeliveryRefused(str(error)) from error


def read_manifest(directory: Path) -> Manifest:
    delivery_id = delivery_id_of(directory)
    if not directory.is_dir():
        raise DeliveryRefused(f"{directory}: no such delivery directory")
    root = directory.resolve(strict=True)
    path = root / MANIFEST_NAME
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise DeliveryRefused(f"{directory}: no {MANIFEST_NAME}") from None
    if stat.S_ISLNK(info.st_mode):
        raise DeliveryRefused(f"{MANIFEST_NAME} is a symbolic link: links are refused, never followed")
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MANIFEST_BYTES:
        raise DeliveryRefused(f"{MANIFEST_NAME} is not a regular file of at most {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW | os.O_NONBLOCK)) as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise DeliveryRefused(f"{MANIFEST_NAME} cannot be read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DeliveryRefused(f"{MANIFEST_NAME}: not UTF-8 (byte {error.start})") from error
    reader = csv.DictReader(text.splitlines(), delimiter=";")
    header = [h.strip().lower() for h in reader.fieldnames or []]
    twice = sorted(name for name, count in Counter(header).items() if count > 1)
    if twice:
        raise DeliveryRefused(f"{MANIFEST_NAME}: header names {', '.join(shown(t) for t in twice)} twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DeliveryRefused(
            f"{MANIFEST_NAME}: header lacks {', '.join(missing)} "
            "(expected file;table;rows;sha256[;encoding][;extracted])"
        )
    reader.fieldnames = header
    entries: list[ManifestEntry] = []
    problems = Problems()
    named: set[str] = set()
    for line, row in enumerate(reader, start=2):
        named.add((row.get("file") or "").strip())
        entry = _entry(line, row, problems)
        if entry is not None:
            entries.append(entry)
    if not entries and not problems:
        raise DeliveryRefused(f"{MANIFEST_NAME} lists no file")
    duplicated = sorted(name for name, count in Counter(e.file for e in entries).items() if count > 1)
    if duplicated:
        problems.add(f"{MANIFEST_NAME}: files listed twice: {', '.join(duplicated[:10])}")
    return Manifest(delivery_id, root, tuple(entries), hashlib.sha256(raw).hexdigest(), problems, frozenset(named))


def _entry(line: int, row: dict[str, str | None], problems: Problems) -> ManifestEntry | None:
    def field(name: str) -> str:
        value = row.get(name)
        return value.strip() if isinstance(value, str) else ""

    where = f"{MANIFEST_NAME}, line {line}"
    file, table, rows, sha256 = field("file"), field("table"), field("rows"), field("sha256").lower()
    found = []
    if not FILE_NAME.fullmatch(file):
        found.append(
            f"invalid file name '{shown(file)}' (letters, digits, _ - and ., ending in {' or '.join(DATA_SUFFIXES)})"
        )
    if not TABLE_NAME.fullmatch(table):
        found.append(f"invalid table name '{shown(table)}'")
    if not _ROWS.fullmatch(rows):
        found.append(f"rows must be a non-negative integer written in digits 0-9, got '{shown(rows)}'")
    if not _SHA256.fullmatch(sha256):
        found.append("sha256 must be 64 hexadecimal digits")
    encoding_name = field("encoding").upper() or "UTF-8"
    if encoding_name not in ENCODINGS:
        found.append(f"unsupported encoding '{shown(encoding_name)}' (UTF-8 or CP1252)")
    extracted = _extraction_date(field("extracted"), found)
    for problem in found:
        problems.add(f"{where}: {problem}")
    return None if found else ManifestEntry(file, table, int(rows), sha256, ENCODINGS[encoding_name], extracted)


def _extraction_date(text: str, found: list[str]) -> date | None:
    if not text:
        return None
    try:
        if not _ISO_DATE.fullmatch(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        found.append(f"extracted must be a date written YYYY-MM-DD, got '{shown(text)}'")
        return None
