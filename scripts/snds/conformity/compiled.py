"""The conformity SQL that dbt compiles, kept on disk while the project and the rules are unchanged.

`snds validate` compiles the checks of every delivered table in one dbt compile (macro `conformity_query`): about
ten seconds of dbt parsing and compiling per delivery, whatever its size. The compiled text depends on the delivery
only through its identifier, so it is compiled for a placeholder identifier and kept under a digest of the Jinja
parts, the database's name, and everything a dbt parse of the project reads (`dbt_slice.inputs_fingerprint`:
macros, properties, profiles, environment, libraries). The next delivery with the same tables and rules reuses it;
the placeholder literal is replaced by the delivery's checked identifier. A missing, unreadable or foreign cache
file is compiled again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from snds import identifiers
from snds.config import PROJECT_ROOT
from snds.dbt_slice import inputs_fingerprint, write_atomically
from snds.sql import sql_literal

# A valid delivery identifier, compiled in place of the real one; it must appear in the SQL only as this literal.
PLACEHOLDER = "SNDS_DELIVERY_PLACEHOLDER_0"
_QUOTED = sql_literal(PLACEHOLDER)
FORMAT = 1


class CompiledParts:
    """Compile Jinja parts for a delivery through `compile_parts`, reusing what an earlier delivery compiled."""

    def __init__(
        self, directory: Path, database_name: str, compile_parts: Callable[[dict[str, str]], dict[str, str]]
    ) -> None:
        self.directory, self.database_name, self._compile = directory, database_name, compile_parts
        self._fingerprint: str | None = None
        self.reused = self.compiled = 0  # parts sets, for the tests and the progress line

    def for_delivery(self, parts: dict[str, str], delivery_id: str) -> dict[str, str]:
        """`parts` written for PLACEHOLDER; the compiled SQL of each for `delivery_id`."""
        literal = sql_literal(identifiers.delivery_id(delivery_id))
        compiled = self._cached(parts)
        return {name: sql.replace(_QUOTED, literal) for name, sql in compiled.items()}

    def _cached(self, parts: dict[str, str]) -> dict[str, str]:
        if self._fingerprint is None:
            self._fingerprint = inputs_fingerprint(PROJECT_ROOT, [])
        key = hashlib.sha256(
            json.dumps([FORMAT, self._fingerprint, self.database_name, parts], sort_keys=True).encode()
        ).hexdigest()
        path = self.directory / f"{key}.json"
        try:
            kept = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            kept = None
        if isinstance(kept, dict) and list(kept) == list(parts) and all(isinstance(v, str) for v in kept.values()):
            self.reused += 1
            return kept
        compiled = self._compile(parts)
        for name, sql in compiled.items():
            if sql.count(PLACEHOLDER) != sql.count(_QUOTED):
                raise ValueError(f"compiled conformity SQL of {name} uses the delivery identifier outside a literal")
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(compiled).encode())
        self.compiled += 1
        return compiled
