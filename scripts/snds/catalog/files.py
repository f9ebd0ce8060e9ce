"""Write the generated files, or compare them with what is on disk (`--check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from snds.catalog.generate import GENERATED_ROOTS


@dataclass
class Drift:
    changed: list[PurePosixPath] = field(default_factory=list)
    missing: list[PurePosixPath] = field(default_factory=list)
    unexpected: list[PurePosixPath] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.unexpected)

    def describe(self, limit: int = 20) -> str:
        lines = []
        for kind, paths in (("changed", self.changed), ("missing", self.missing), ("not generated", self.unexpected)):
            for path in paths[:limit]:
                lines.append(f"  {kind}: {path}")
            if len(paths) > limit:
                lines.append(f"  ... and {len(paths) - limit} more {kind}")
        return "\n".join(lines)


def _on_disk(root: Path) -> set[PurePosixPath]:
    found: set[PurePosixPath] = set()
    for generated_root in GENERATED_ROOTS:
        base = root / generated_root
        if base.is_dir():
            found.update(PurePosixPath(p.relative_to(root).as_posix()) for p in base.rglob("*") if p.is_file())
    return found


def compare(root: Path, files: dict[PurePosixPath, str]) -> Drift:
    drift = Drift()
    for path, content in sorted(files.items()):
        target = root / path
        if not target.exists():
            drift.missing.append(path)
        elif target.read_text(encoding="utf-8") != content:
            drift.changed.append(path)
    drift.unexpected = sorted(_on_disk(root) - set(files))
    return drift


def write(root: Path, files: dict[PurePosixPath, str]) -> Drift:
    """Write what changed and remove generated files that are no longer generated."""
    drift = compare(root, files)
    for path in drift.changed + drift.missing:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(files[path], encoding="utf-8")
    for path in drift.unexpected:
        (root / path).unlink()
    return drift
