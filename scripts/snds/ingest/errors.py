"""Errors of the ingestion."""

from __future__ import annotations

from collections.abc import Iterable

MAX_PROBLEMS = 100  # problems kept and shown per refusal; the others are counted


class DeliveryRefused(Exception):
    """The delivery cannot be loaded; each problem names the file and what is wrong. Nothing was changed.

    Problems never quote delivered values (lines, fields): only names, counts, line numbers and expectations.
    """

    def __init__(self, problems: str | Iterable[str], more: int = 0) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.more = more  # problems found beyond those kept
        super().__init__("; ".join(self.problems) + (f"; and {more} more problems" if more else ""))

    def describe(self) -> str:
        """One problem, or their count and one per line."""
        if len(self.problems) == 1 and not self.more:
            return self.problems[0]
        listed = "\n".join(f"  - {p}" for p in self.problems)
        return f"{len(self.problems) + self.more} problems:\n{listed}" + (
            f"\n  ... and {self.more} more" if self.more else ""
        )

    def as_json(self) -> dict:
        return {"problems": self.problems, "more_problems": self.more}


class Problems:
    """Problems collected over a whole delivery, at most MAX_PROBLEMS of them kept (a junk manifest cannot flood)."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.more = 0

    def add(self, problem: str) -> None:
        if len(self.kept) < MAX_PROBLEMS:
            self.kept.append(problem)
        else:
            self.more += 1

    def take(self, refusal: DeliveryRefused) -> None:
        for problem in refusal.problems:
            self.add(problem)
        self.more += refusal.more

    def __bool__(self) -> bool:
        return bool(self.kept)

    def refusal(self) -> DeliveryRefused:
        return DeliveryRefused(self.kept, self.more)
