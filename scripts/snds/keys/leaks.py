"""Scan for key material: the work tree, the places the platform writes, and every git object.

What is read (`scan_work_tree`): every file git tracks (its working copy) and every untracked file git does not
ignore (`git ls-files --cached --others --exclude-standard`), plus the ignored places the platform writes:
`target/`, `logs/` and all of `data/`. Under `data/` two kinds of file are not read, being the legitimate places
of key material: the database files (`*.duckdb`, `*.duckdb.wal`, `*.wal`, and the embedded PostgreSQL server's
`data/postgres/`: the key store) and the operator's secret file given to the scan (the demo keeps it in
`data/secrets/`); any other file there holding key material, a copy of the secret included, is a leak. `.git/`
and `.venv/` are never walked, and no symlink is followed (nothing is reported through one). `scan_git` reads
every object git stores, reachable or not.

The needles are every form in which a key could leak: the derived keys and their pads from the key store, and
optionally the operator's secret (as the file holds it and, when that text is hex or base64, decoded), each in
raw bytes, hex in both cases, base64, base64url and as DuckDB and Python print bytes. Files are read in chunks.
A finding names the file and the form, never the key.
"""

from __future__ import annotations

import base64
import binascii
import errno
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from snds import postgres_server
from snds.engine import Connection
from snds.keys.material import Pads, pads

_CHUNK = 1 << 20
WRITTEN_PLACES = ("target", "logs", "data")  # ignored by git, written by the platform: read whole
NEVER_WALKED = frozenset({".git", ".venv"})
DATABASE_SUFFIXES = (".duckdb", ".wal")  # `.duckdb.wal` ends with `.wal`


@dataclass(frozen=True)
class Needle:
    label: str  # what it is (key id, domain, form), safe to print
    data: bytes


@dataclass(frozen=True)
class Leak:
    where: str
    label: str


def _forms(label: str, raw: bytes) -> Iterator[Needle]:
    yield Needle(f"{label} (raw bytes)", raw)
    yield Needle(f"{label} (hex)", raw.hex().encode())
    yield Needle(f"{label} (HEX)", raw.hex().upper().encode())
    yield Needle(f"{label} (base64)", base64.b64encode(raw).rstrip(b"="))
    yield Needle(f"{label} (base64url)", base64.urlsafe_b64encode(raw).rstrip(b"="))
    yield Needle(f"{label} (as DuckDB prints a blob)", _duckdb_blob_text(raw).encode())
    yield Needle(f"{label} (as Python prints bytes)", repr(raw)[2:-1].encode())


def _duckdb_blob_text(raw: bytes) -> str:
    """`cast(blob as varchar)`, which `dbt show` or a log would write: printable ASCII as is, the rest \\xHH."""
    return "".join(chr(b) if 32 <= b < 127 and chr(b) not in "\"'\\" else f"\\x{b:02X}" for b in raw)


def key_needles(label: str, key: bytes) -> list[Needle]:
    """Every form of a key and of its pads."""
    material = pads(key)
    parts = (("key", key), ("ipad", material.ipad), ("opad", material.opad))
    return [needle for part, raw in parts for needle in _forms(f"{label} {part}", raw)]


def key_store_needles(con: Connection) -> list[Needle]:
    """Every form of every key still held by the store (retired keys have no material left to leak)."""
    rows = con.execute("select KEY_ID, KEY_DOMAIN, IPAD, OPAD from keys.key_material where IPAD is not null")
    return [
        needle
        for key_id, domain, ipad, opad in rows.fetchall()
        for needle in key_needles(f"{key_id} {domain}", Pads(bytes(ipad), bytes(opad)).key)
    ]


def _decoded_text(secret: bytes) -> tuple[str, bytes] | None:
    """The bytes a secret written as hex or base64(url) text stands for (`snds keys generate` writes hex)."""
    if re.fullmatch(rb"(?:[0-9a-fA-F]{2})+", secret):
        return "hex", bytes.fromhex(secret.decode())
    if re.fullmatch(rb"[A-Za-z0-9+/_-]+={0,2}", secret):
        text = secret.rstrip(b"=")
        try:
            return "base64", base64.urlsafe_b64decode(text.replace(b"+", b"-").replace(b"/", b"_") + b"==")
        except binascii.Error:  # a length no base64 text has
            return None
    return None


def secret_needles(secret: bytes) -> list[Needle]:
    """Every form of the secret as `read_secret` returns it (the file's text) and, for hex or base64 text, decoded."""
    needles = list(_forms("operator secret", secret))
    decoded = _decoded_text(secret)
    if decoded is not None:
        needles += _forms(f"operator secret decoded from {decoded[0]}", decoded[1])
    unique: dict[bytes, Needle] = {}
    for needle in needles:
        unique.setdefault(needle.data, needle)  # the text as written is also its decoded bytes' hex or base64
    return list(unique.values())


def _contains(stream: Iterable[bytes], needles: list[Needle]) -> set[str]:
    """Labels of the needles found in a byte stream read in chunks (with overlap, so none is cut in two)."""
    overlap = max(len(n.data) for n in needles) - 1
    found: set[str] = set()
    tail = b""
    for chunk in stream:
        window = tail + chunk
        found.update(n.label for n in needles if n.data in window)
        tail = window[-overlap:] if overlap else b""
    return found


def _file_chunks(path: Path) -> Iterator[bytes]:
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:  # a symlink is never opened
        while chunk := handle.read(_CHUNK):
            yield chunk


def scan_files(files: Iterable[Path], needles: list[Needle]) -> list[Leak]:
    leaks = []
    for path in files:
        try:
            found = _contains(_file_chunks(path), needles)
        except OSError as error:
            if error.errno in (errno.ENOENT, errno.ELOOP):
                continue  # gone since it was listed, or replaced by a symlink: nothing to read
            raise
        leaks.extend(Leak(str(path), label) for label in sorted(found))
    return leaks


def _walk(path: Path, wanted: Callable[[PurePosixPath, bool], bool], rel: PurePosixPath) -> Iterator[Path]:
    """Regular files at or under `path` that `wanted(relative path, is a folder)` keeps, never through a symlink."""
    with os.scandir(path) as entries:
        ordered = sorted(entries, key=lambda entry: entry.name)
    for entry in ordered:
        name = rel / entry.name
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in NEVER_WALKED and wanted(name, True):
                yield from _walk(Path(entry.path), wanted, name)
        elif entry.is_file(follow_symlinks=False) and wanted(name, False):
            yield Path(entry.path)


def walk(path: Path) -> Iterator[Path]:
    """Every regular file at or under `path` (itself if a file), never through a symlink, not in .git/ or .venv/."""
    if path.is_symlink():
        return
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from _walk(path, lambda rel, is_dir: True, PurePosixPath())


def _git_listed(root: Path) -> set[PurePosixPath]:
    """Tracked files and untracked files git does not ignore, relative to `root`."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        raise RuntimeError(f"git ls-files failed in {root}: is it a git work tree?")
    return {PurePosixPath(os.fsdecode(name)) for name in listed.stdout.split(b"\0") if name}


def not_read(root: Path, secret_file: Path | None) -> Callable[[Path], bool]:
    """Under `root`/data, the database files (DuckDB's, and the embedded PostgreSQL server's data folder) and the
    secret file (by identity, not name) are not read."""
    data = Path(os.path.abspath(root / "data"))
    server = Path(os.path.abspath(root / postgres_server.SERVER_FOLDER))
    secret = os.stat(secret_file) if secret_file is not None else None

    def skipped(path: Path) -> bool:
        if not Path(os.path.abspath(path)).is_relative_to(data):
            return False
        if path.name.endswith(DATABASE_SUFFIXES) or Path(os.path.abspath(path)).is_relative_to(server):
            return True
        return secret is not None and os.path.samestat(os.lstat(path), secret)

    return skipped


def work_tree_files(root: Path, secret_file: Path | None = None) -> list[Path]:
    """What `scan_work_tree` reads (see the module's docstring), in order."""
    listed = _git_listed(root)
    folders = {parent for name in listed for parent in name.parents}

    def wanted(rel: PurePosixPath, is_dir: bool) -> bool:
        return rel.parts[0] in WRITTEN_PLACES or rel in (folders if is_dir else listed)

    skipped = not_read(root, secret_file)
    return [path for path in _walk(root, wanted, PurePosixPath()) if not skipped(path)]


def scan_work_tree(root: Path, needles: list[Needle], secret_file: Path | None = None) -> list[Leak]:
    """The work tree at `root`: tracked and untracked (not ignored) files, target/, logs/ and data/."""
    return scan_files(work_tree_files(root, secret_file), needles)


def scan_paths(
    paths: Iterable[Path], needles: list[Needle], skipped: Callable[[Path], bool] = lambda path: False
) -> list[Leak]:
    """Every file at or under `paths` (see `walk`) but those `skipped` keeps out (`not_read`)."""
    return scan_files((file for root in paths for file in walk(root) if not skipped(file)), needles)


def scan_git(repository: Path, needles: list[Needle]) -> list[Leak]:
    """Every object of the repository, reachable or not: blobs of all commits, trees, commit messages."""
    process = subprocess.Popen(
        ["git", "-C", str(repository), "cat-file", "--batch-all-objects", "--batch"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    found = _contains(iter(lambda: process.stdout.read(_CHUNK), b""), needles)  # type: ignore[union-attr]
    if process.wait() != 0:
        raise RuntimeError(f"git cat-file failed in {repository}")
    return [Leak(f"git objects of {repository}", label) for label in sorted(found)]
