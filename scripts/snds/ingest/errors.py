"""Errors of the ingestion."""

from __future__ import annotations

from collections.abc import Iterable


class DeliveryRefused(Exception):
    """The delivery cannot be loaded; each problem names the file and what is wrong. Nothing was changed.

    Problems never quote delivered values (lines, fields): only names, counts, line numbers and expectations.
    """

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def describe(self) -> str:
        """One problem, or their count and one per line."""
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
