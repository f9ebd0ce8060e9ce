"""Check every file of a delivery against its manifest and the catalog before anything is loaded.

Each file is opened without following links and identified (device, inode, size, modification and change time):
the load opens it again only if it is still that very file, and hands DuckDB the open file (`/dev/fd/N`), never a
path it could expand as a pattern. Every problem of every file is collected, then the delivery is refused at once.
Messages name files, columns, counts and line numbers, never the delivered values.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from snds.catalog.committed import CatalogTable, find_table
from snds.ingest.errors import DeliveryRefused, Problems
from snds.ingest.limits import IngestLimits, load_limits
from snds.ingest.manifest import MANIFEST_NAME, Manifest, ManifestEntry, shown

CHUNK = 1 << 20
_GZIP = 16 + zlib.MAX_WBITS  # zlib's window flag for the gzip container
MAX_LISTED = 10  # names listed in one message; the count is complete


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int
    size: int
    modified_ns: int
    changed_ns: int  # the inode's change time: any write moves it, and no user can set it back

    @classmethod
    def of(cls, info: os.stat_result) -> FileIdentity:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


@dataclass(frozen=True)
class VerifiedFile:
    entry: ManifestEntry
    path: Path
    table: CatalogTable
    header: tuple[str, ...]  # catalog spelling, in the file's order
    identity: FileIdentity

    @property
    def size(self) -> int:
        return self.identity.size

    @property
    def compressed(self) -> bool:
        return self.entry.file.endswith(".gz")


@dataclass(frozen=True)
class Scan:
    sha256: str
    rows: int  # data rows (header excluded)
    header: bytes  # the first line as delivered, line end removed


def open_file(path: Path, identity: FileIdentity | None = None) -> int:
    """A descriptor on the regular file at `path`, never through a link; refused if it is not `identity` any more.

    Opened non-blocking (a FIFO would otherwise wait forever for a writer); a file with other hard links is
    refused (it may be a file from outside the delivery).
    """
    name = shown(path.name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DeliveryRefused(f"{name}: listed in the manifest but absent") from None
    except OSError as error:
        if os.path.islink(path):
            raise DeliveryRefused(f"{name}: a symbolic link; links are refused, never followed") from None
        raise DeliveryRefused(f"{name}: cannot be opened ({error.strerror})") from None
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "not a regular file"
    elif info.st_nlink > 1:
        problem = f"has {info.st_nlink} hard links; a delivery's files must be its own"
    elif identity is not None and FileIdentity.of(info) != identity:
        problem = "changed since it was verified"
    if problem:
        os.close(fd)
        raise DeliveryRefused(f"{name}: {problem}")
    return fd


def unchanged(fd: int, identity: FileIdentity, name: str) -> None:
    """Refuse a file written to while it was read (its change time moves with any write)."""
    if FileIdentity.of(os.fstat(fd)) != identity:
        raise DeliveryRefused(f"{shown(name)}: changed while it was loaded")


@contextmanager
def opened(path: Path, identity: FileIdentity | None = None) -> Iterator[int]:
    fd = open_file(path, identity)
    try:
        yield fd
    finally:
        os.close(fd)


def fd_path(fd: int) -> str:
    """The path at which a reader opens exactly the file behind `fd` (no pattern character, no link to resolve)."""
    return f"/dev/fd/{fd}"


class _Stopped(Exception):
    """A scan given up because the verification stops (interrupted, or failing elsewhere)."""


def _raw_chunks(fd: int, stop: threading.Event | None = None) -> Iterator[bytes]:
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, CHUNK):
        if stop is not None and stop.is_set():
            raise _Stopped
        yield chunk


def _inflated(chunks: Iterable[bytes], digest: hashlib._Hash, budget: int, name: str) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (several members allowed), at most `budget` of them."""
    inflater = zlib.decompressobj(_GZIP)
    produced = 0
    try:
        for chunk in chunks:
            digest.update(chunk)
            data = chunk
            while data:
                out = inflater.decompress(data, CHUNK)
                produced += len(out)
                if produced > budget:
                    raise DeliveryRefused(
                        f"{name}: expands to more than {budget >> 20} MiB, over the limit for its size "
                        "(a decompression bomb?)"
                    )
                if out:
                    yield out
                if inflater.eof:
                    data = inflater.unused_data
                    inflater = zlib.decompressobj(_GZIP) if data else inflater
                else:
                    data = inflater.unconsumed_tail
        if not inflater.eof:
            raise DeliveryRefused(f"{name}: truncated compressed file")
    except zlib.error:
        raise DeliveryRefused(f"{name}: unreadable compressed file (not gzip, or corrupt)") from None


def _hashed(chunks: Iterable[bytes], digest: hashlib._Hash) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


class _LineMeter:
    """Counts line ends across chunks; refuses the first line that is too long or holds a lone CR.

    DuckDB splits a line at a lone CR (or fails on it): refused here, with its line number (from 1, the header
    being line 1). An empty line, which DuckDB skips, unbalances the row count and is named after the load
    (`first_empty_line`): with lone CRs refused, nothing can make up for it.
    """

    def __init__(self, limit: int, name: str) -> None:
        self.limit, self.name = limit, name
        self.newlines, self.current, self.tail = 0, 0, b""

    def _check(self, length: int, line: int) -> None:
        if length > self.limit:
            raise DeliveryRefused(f"{self.name}: line {line} is longer than {self.limit} bytes")

    def _check_carriage_returns(self, chunk: bytes) -> None:
        window = self.tail[-1:] + chunk  # the byte before the chunk: a CR LF across the boundary is seen
        if b"\r" not in window:
            return
        pending = 1 if window.endswith(b"\r") else 0  # a CR whose LF may open the next chunk
        if window.count(b"\r") - window.count(b"\r\n") - pending <= 0:
            return
        position = next(p for p in range(len(window)) if window[p] == 13 and window[p + 1 : p + 2] != b"\n")
        line = self.newlines - self.tail[-1:].count(b"\n") + window[:position].count(b"\n") + 1
        raise DeliveryRefused(f"{self.name}: line {line} holds a lone CR; lines must end with LF or CR LF")

    def feed(self, chunk: bytes) -> None:
        self._check_carriage_returns(chunk)
        count = chunk.count(b"\n")
        if not count:
            self.current += len(chunk)
            self._check(self.current, self.newlines + 1)
        else:
            self._check(self.current + chunk.find(b"\n"), self.newlines + 1)
            if len(chunk) > self.limit:  # lines inside a chunk are shorter than it: look at them only if needed
                for offset, line in enumerate(chunk.split(b"\n")[1:-1], start=2):
                    self._check(len(line), self.newlines + offset)
            self.newlines += count
            self.current = len(chunk) - chunk.rfind(b"\n") - 1
            self._check(self.current, self.newlines + 1)
        self.tail = (self.tail + chunk)[-2:]

    def finish(self) -> None:
        if self.tail.endswith(b"\r"):
            line = self.newlines + 1
            raise DeliveryRefused(f"{self.name}: line {line} holds a lone CR; lines must end with LF or CR LF")

    @property
    def lines(self) -> int:
        return self.newlines + (0 if not self.tail or self.tail.endswith(b"\n") else 1)


def scan_file(fd: int, name: str, limits: IngestLimits, stop: threading.Event | None = None) -> Scan:
    """One pass: the sha256 as delivered, the data rows (decompressed), the header line; long lines are refused."""
    digest = hashlib.sha256()
    if name.endswith(".gz"):
        budget = int(max(limits.max_gzip_ratio * os.fstat(fd).st_size, CHUNK))
        stream = _inflated(_raw_chunks(fd, stop), digest, budget, name)
    else:
        stream = _hashed(_raw_chunks(fd, stop), digest)
    meter = _LineMeter(limits.max_line_bytes, name)
    header = b""
    for chunk in stream:
        if meter.newlines == 0:
            header += chunk.split(b"\n", 1)[0]
        meter.feed(chunk)
    meter.finish()
    first = header.removesuffix(b"\r")
    if meter.lines == 0 or not first.strip():
        raise DeliveryRefused(f"{name}: empty file (no header row)")
    return Scan(digest.hexdigest(), meter.lines - 1, first)


def first_empty_line(chunks: Iterable[bytes]) -> int | None:
    """The number of the first empty line of a (decompressed) stream, if any: what DuckDB skips."""
    newlines, tail = 0, b"\n"  # a file opening with a line end opens with an empty line
    for chunk in chunks:
        window = tail + chunk
        found = [p for p in (window.find(b"\n\n"), window.find(b"\n\r\n")) if p >= 0]
        if found:
            return newlines - tail.count(b"\n") + window[: min(found) + 1].count(b"\n") + 1
        newlines += chunk.count(b"\n")
        tail = window[-2:]
    return None


def _match_header(entry: ManifestEntry, header: bytes, table: CatalogTable) -> tuple[str, ...]:
    """The file's columns in the catalog's spelling; a mismatch names expected columns and positions, never a value."""
    try:
        text = header.decode("utf-8-sig" if entry.encoding == "utf-8" else entry.encoding)  # a BOM is allowed
    except UnicodeDecodeError as error:
        raise DeliveryRefused(f"{entry.file}: header is not valid {entry.encoding} (byte {error.start})") from None
    names = [h.strip().strip('"').upper() for h in text.split(";")]
    by_upper = {c.name.upper(): c.name for c in table.columns}
    unknown = [i for i, n in enumerate(names, start=1) if n not in by_upper]
    present = set(names)
    missing = [by_upper[m] for m in by_upper if m not in present]
    duplicated = sorted(by_upper[n] for n, count in Counter(names).items() if n in by_upper and count > 1)
    problems = []
    if unknown:
        positions = ", ".join(str(i) for i in unknown[:MAX_LISTED]) + (" ..." if len(unknown) > MAX_LISTED else "")
        problems.append(f"{len(unknown)} fields are not columns of {table.name} (fields {positions})")
    if missing:
        problems.append(f"missing columns {_listed(missing)}")
    if duplicated:
        problems.append(f"columns twice {', '.join(duplicated)}")
    if problems:
        raise DeliveryRefused(
            f"{entry.file}: header does not match {table.name}: {'; '.join(problems)} "
            f"(expected its {len(by_upper)} columns, found {len(names)} fields)"
        )
    return tuple(by_upper[n] for n in names)


def _listed(names: list[str]) -> str:
    return ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _strays(manifest: Manifest) -> list[str]:
    listed = manifest.named | {MANIFEST_NAME}
    try:
        with os.scandir(manifest.directory) as entries:
            others = sorted(shown(e.name) for e in entries if e.name not in listed)
    except OSError as error:
        return [f"the delivery directory cannot be listed ({error.strerror})"]
    return [f"files not listed in the manifest: {_listed(others)}"] if others else []


def verify_file(
    entry: ManifestEntry,
    directory: Path,
    catalog: dict[str, CatalogTable],
    limits: IngestLimits,
    stop: threading.Event | None = None,
) -> VerifiedFile:
    table = find_table(catalog, entry.table)
    if table is None:
        raise DeliveryRefused(f"{entry.file}: unknown table {entry.table!r} (not in the SNDS catalog)")
    path = directory / entry.file
    with opened(path) as fd:
        identity = FileIdentity.of(os.fstat(fd))
        scan = scan_file(fd, entry.file, limits, stop)
    if scan.sha256 != entry.sha256:
        raise DeliveryRefused(f"{entry.file}: sha256 differs from the manifest's")
    if scan.rows != entry.rows:
        raise DeliveryRefused(f"{entry.file}: {scan.rows} data rows, the manifest says {entry.rows}")
    return VerifiedFile(entry, path, table, _match_header(entry, scan.header, table), identity)


def verify_delivery(
    manifest: Manifest,
    catalog: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
    limits: IngestLimits | None = None,
) -> list[VerifiedFile]:
    """Every listed file present and no other, digest and row count as declared, table known, header matching.

    Raises DeliveryRefused with every problem found, after looking at every file.
    """
    limits = limits or load_limits()
    problems = Problems()
    if manifest.problems:
        problems.take(manifest.problems.refusal())
    for stray in _strays(manifest):
        problems.add(stray)
    verified = []
    # Files are hashed side by side, one per core (hashlib releases the GIL); results are taken in manifest order.
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        scans = [pool.submit(verify_file, e, manifest.directory, catalog, limits, stop) for e in manifest.entries]
        try:
            for entry, scan in zip(manifest.entries, scans, strict=True):
                try:
                    verified.append(scan.result())
                except DeliveryRefused as refusal:
                    problems.take(refusal)
                progress(verified[-1].size if verified and verified[-1].entry is entry else 0)
        except BaseException:  # Ctrl-C, or a failure of the tool: the other scans end at their next chunk
            stop.set()
            pool.shutdown(cancel_futures=True)
            raise
    if problems:
        raise problems.refusal()
    return verified


def write_manifest(directory: Path, files: Iterable[tuple[str, str]], extracted: date | None = None) -> int:
    """Write `MANIFEST.csv` for (file name, table) pairs of UTF-8 files in `directory`; returns the total rows.
    `extracted`: the extraction date of every file (column `extracted`), else none is written."""
    limits = load_limits()
    total = 0
    with (directory / MANIFEST_NAME).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(["file", "table", "rows", "sha256", *(["extracted"] if extracted else [])])
        for name, table in files:
            with opened(directory / name) as fd:
                scan = scan_file(fd, name, limits)
            writer.writerow([name, table, scan.rows, scan.sha256, *([extracted.isoformat()] if extracted else [])])
            total += scan.rows
    return total
