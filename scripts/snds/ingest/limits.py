"""The bounds that keep hostile or broken input from exhausting memory or time (seeds/conformity/ingestion_limits.csv).

The defaults are data; `snds ingest` overrides the quarantine caps per run (`--max-quarantined-lines`, `--max-
quarantined-share`) when a data manager decides that a delivery is worth loading anyway.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields, replace
from pathlib import Path

from snds.config import PROJECT_ROOT

LIMITS_SEED = PROJECT_ROOT / "seeds" / "conformity" / "ingestion_limits.csv"


@dataclass(frozen=True)
class IngestLimits:
    max_quarantined_lines: int
    max_quarantined_share: float
    share_from_lines: int
    max_gzip_ratio: float
    max_line_bytes: int
    memory_limit_mib: int

    def over_quarantine_cap(self, failing: int, rows: int) -> str | None:
        """Why `failing` lines of `rows` are too many to quarantine, or None."""
        if failing > self.max_quarantined_lines:
            return f"over the limit of {self.max_quarantined_lines} lines per file"
        share = failing / rows if rows else 0.0
        if failing >= self.share_from_lines and share > self.max_quarantined_share:
            return f"{share:.1%} of the file, over the limit of {self.max_quarantined_share:.1%}"
        return None

    def overridden(self, max_lines: int | None, max_share: float | None) -> IngestLimits:
        return replace(
            self,
            max_quarantined_lines=self.max_quarantined_lines if max_lines is None else max_lines,
            max_quarantined_share=self.max_quarantined_share if max_share is None else max_share,
        )


def load_limits(path: Path = LIMITS_SEED) -> IngestLimits:
    with path.open(encoding="utf-8", newline="") as handle:
        values = {row["limit_name"]: row["value"] for row in csv.DictReader(handle)}
    expected = {f.name: f.type for f in fields(IngestLimits)}
    if set(values) != set(expected):
        raise ValueError(f"{path}: expected the limits {', '.join(sorted(expected))}")
    return IngestLimits(**{name: (float if kind == "float" else int)(values[name]) for name, kind in expected.items()})
