"""The recipients of an export: age X25519 public keys, written in the definition or in a file of data/recipients/.

A project definition names its recipients under `outputs.export.recipients`, each with `public_key` (`age1...`) or
`public_key_file`, a plain file name (no path) in `data/recipients/`, which is not in git: the demo cannot commit a
key pair, so `make demo` makes one and writes its public half there. The keys are parsed by pyrage (the age
implementation the export encrypts with), so a key the export would refuse is refused when the definition is read.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snds.config import PROJECT_ROOT

if TYPE_CHECKING:
    from pyrage import x25519

    from snds.projects.definition import ExportRecipient

RECIPIENTS_DIR = PROJECT_ROOT / "data" / "recipients"
RECIPIENT_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
MAX_KEY_FILE_BYTES = 4096


class RecipientError(ValueError):
    """A recipient whose public key cannot be used: the message names the definition's key path."""


@dataclass(frozen=True)
class ResolvedRecipient:
    name: str
    public_key: str  # age1...
    source: str  # "definition" or the file name in data/recipients/

    @property
    def sha256(self) -> str:
        """The fingerprint the audit and export.json carry beside the (public) key itself."""
        return hashlib.sha256(self.public_key.encode("ascii")).hexdigest()

    def parsed(self) -> x25519.Recipient:
        from pyrage import x25519

        return x25519.Recipient.from_str(self.public_key)


def public_key_problem(text: str) -> str | None:
    """Why `text` is not an age X25519 public key pyrage accepts, or None when it is."""
    from pyrage import RecipientError as PyrageRecipientError
    from pyrage import x25519

    if not text.startswith("age1"):
        return "expected an age X25519 public key (age1 followed by 58 characters)"
    try:
        x25519.Recipient.from_str(text)
    except (PyrageRecipientError, ValueError) as error:
        return f"not a valid age public key ({error})"
    return None


def read_key_file(name: str, directory: Path) -> str:
    """The public key in `directory/name`: a checked plain file name, a regular file (no link), one key line.

    Lines starting with `#` (age-keygen writes comments) and blank lines are skipped.
    """
    if not RECIPIENT_FILE.fullmatch(name):
        raise RecipientError(f"'{name}' is not a plain file name (letters, digits, _ . -, no path)")
    path = directory / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise RecipientError(f"no file {path}") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_FILE_BYTES:
        raise RecipientError(f"{path} is not a regular file of at most {MAX_KEY_FILE_BYTES} bytes (links refused)")
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as handle:
        raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise RecipientError(f"{path}: expected ASCII text (an age public key)") from None
    keys = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(keys) != 1:
        raise RecipientError(f"{path}: expected exactly one public key line, found {len(keys)}")
    if keys[0].upper().startswith("AGE-SECRET-KEY-"):  # never echo it
        raise RecipientError(f"{path} holds a secret key: give the public key (age1...) only")
    problem = public_key_problem(keys[0])
    if problem:
        raise RecipientError(f"{path}: {problem}")
    return keys[0]


def resolve(recipients: tuple[ExportRecipient, ...], directory: Path = RECIPIENTS_DIR) -> list[ResolvedRecipient]:
    """Every recipient with its key; RecipientError listing every unusable one, each by its definition key path."""
    resolved, problems = [], []
    for index, recipient in enumerate(recipients):
        where = f"outputs.export.recipients[{index}]"
        if recipient.public_key is not None:
            problem = public_key_problem(recipient.public_key)
            if problem:
                problems.append(f"{where}.public_key: {problem}")
            else:
                resolved.append(ResolvedRecipient(recipient.name, recipient.public_key, "definition"))
            continue
        try:
            key = read_key_file(recipient.public_key_file or "", directory)
        except RecipientError as error:
            problems.append(f"{where}.public_key_file: {error}")
        else:
            resolved.append(ResolvedRecipient(recipient.name, key, recipient.public_key_file or ""))
    if problems:
        raise RecipientError("\n".join(problems))
    if not resolved:
        raise RecipientError("outputs.export.recipients: no recipient: the package would be readable by nobody")
    return resolved


def make_identity(secret_file: Path, public_file: Path) -> str:
    """A new age identity in `secret_file` (mode 0600, created exclusively) and its public key in `public_file`.

    Returns the public key; the identity is written, never returned or printed. Used by the demo.
    """
    from pyrage import x25519

    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    secret_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"# public key: {public}\n{identity}\n")
    public_file.parent.mkdir(parents=True, exist_ok=True)
    public_file.write_text(f"{public}\n", encoding="ascii")
    return public


def public_key_of(secret_file: Path) -> str:
    """The public key of the age identity in `secret_file` (the identity itself is never returned)."""
    from pyrage import x25519

    lines = [
        line.strip()
        for line in secret_file.read_text(encoding="ascii").splitlines()
        if line.strip().upper().startswith("AGE-SECRET-KEY-")
    ]
    if len(lines) != 1:
        raise RecipientError(f"{secret_file}: expected one age identity (AGE-SECRET-KEY-...)")
    return str(x25519.Identity.from_str(lines[0]).to_public())
