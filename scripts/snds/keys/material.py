"""Key material: derive per-domain keys from a secret, store them as HMAC pads, compute pseudonyms in Python.

The SQL side (macros `hmac_sha256_hex`, `keyed_pseudonym`) computes HMAC-SHA-256 from the stored pads:
HMAC(K, m) = SHA-256((K0 ^ opad) || SHA-256((K0 ^ ipad) || m)) with K0 the key padded to 64 bytes (RFC 2104).
`pseudonym` here is the reference the tests compare both engines with.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

BLOCK_SIZE = 64  # SHA-256 block size
KEY_SIZE = 32
MIN_SECRET_SIZE = 32
DOMAINS = ("person", "professional")
DEFAULT_SECRET_ENV = "SNDS_PLATFORM_SECRET"
_FINGERPRINT_TEXT = b"snds key fingerprint"


class KeyRefused(Exception):
    """A secret or a key operation is refused, with the reason."""


@dataclass(frozen=True)
class Pads:
    ipad: bytes
    opad: bytes

    @property
    def key(self) -> bytes:
        """The key these pads were made from (keys here are KEY_SIZE bytes, padded with zeros)."""
        return bytes(b ^ 0x36 for b in self.ipad[:KEY_SIZE])


def pads(key: bytes) -> Pads:
    if not 0 < len(key) <= BLOCK_SIZE:
        raise ValueError(f"an HMAC-SHA-256 key stored as pads has 1 to {BLOCK_SIZE} bytes")
    padded = key.ljust(BLOCK_SIZE, b"\0")
    return Pads(bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded))


def derive_platform_key(secret: bytes, domain: str) -> bytes:
    """The platform key of one identifier domain, derived from the operator's secret with HKDF-SHA-256."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown identifier domain {domain!r}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None, info=f"snds platform {domain} key".encode())
    return hkdf.derive(secret)


def random_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def hmac_hex(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, value: str, length: int) -> str:
    """What `keyed_pseudonym` computes in SQL."""
    return hmac_hex(key, value)[:length].upper()


def fingerprint(key: bytes) -> str:
    """A check value that tells keys apart without revealing them."""
    return hmac.new(key, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:16]


def read_secret(path: Path | None, env: str | None) -> bytes:
    """The operator's secret, from a file (trailing line break removed) or an environment variable."""
    if (path is None) == (env is None):
        raise KeyRefused("give the secret either as a file (--from-file) or as an environment variable (--from-env)")
    if path is not None:
        if not path.is_file():
            raise KeyRefused(f"secret file {path} does not exist")
        secret = path.read_bytes().rstrip(b"\r\n")
        origin = f"secret file {path}"
    else:
        value = os.environ.get(env or "")
        if not value:
            raise KeyRefused(f"environment variable {env} is not set or empty")
        secret = value.encode("utf-8")
        origin = f"environment variable {env}"
    if len(secret) < MIN_SECRET_SIZE:
        raise KeyRefused(f"{origin} holds {len(secret)} bytes; a secret needs at least {MIN_SECRET_SIZE}")
    return secret


def write_new_secret(path: Path) -> None:
    """A fresh random secret (hex text), readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(KEY_SIZE) + "\n")
