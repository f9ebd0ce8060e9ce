"""Scan artifacts for key material: git (every object ever stored), dbt's target/ and logs, exports.

The needles are every form in which a key could leak: the derived keys and their pads (raw bytes, hex in
both cases, base64) from the key store, and optionally the operator's secret itself. A finding names the file
and the form, never the key.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.keys.material import Pads, pads

_CHUNK = 1 << 20


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


def key_store_needles(con: duckdb.DuckDBPyConnection) -> list[Needle]:
    """Every form of every key still held by the store (retired keys have no material left to leak)."""
    rows = con.execute("select KEY_ID, KEY_DOMAIN, IPAD, OPAD from keys.key_material where IPAD is not null")
    return [
        needle
        for key_id, domain, ipad, opad in rows.fetchall()
        for needle in key_needles(f"{key_id} {domain}", Pads(bytes(ipad), bytes(opad)).key)
    ]


def secret_needles(secret: bytes) -> list[Needle]:
    return list(_forms("operator secret", secret))


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
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def scan_paths(paths: Iterable[Path], needles: list[Needle]) -> list[Leak]:
    leaks = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            leaks.extend(Leak(str(path), label) for label in sorted(_contains(_file_chunks(path), needles)))
    return leaks


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
