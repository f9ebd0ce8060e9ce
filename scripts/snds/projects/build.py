"""`snds project generate` and `snds project build ID`: definitions to models, models to tables.

`generate` writes every project's models from `projects/*.yml` (and the perimeters the build's guard reads);
`--check` only says which generated files are stale. `build` checks the definition, its authorisation on today's
date and its project key, regenerates, then runs `dbt build` on the project's folder only: the base and the
shared marts are not rebuilt (run `dbt build` once for them). dbt itself enforces the perimeter
(`macros/access/project_guard.sql`), so a direct `dbt build` is held to the same rules.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from snds.catalog.committed import CatalogTable, committed_tables
from snds.projects.definition import ProjectDefinition, load_definition
from snds.projects.generate import (
    MODELS_ROOT,
    PERIMETERS_MACRO,
    folder,
    is_generated,
    perimeters_macro,
    project_files,
    write_files,
)
from snds.projects.lifecycle import closed_message
from snds.projects.schema import PROJECTS_DIR


class ProjectBuildError(ValueError):
    """The project cannot be built: expired authorisation, missing key, a definition the generator refuses."""


@dataclass(frozen=True)
class Generated:
    definitions: tuple[ProjectDefinition, ...]
    files: dict[PurePosixPath, str]


def definitions_in(projects_dir: Path = PROJECTS_DIR) -> list[Path]:
    return sorted(p for p in projects_dir.glob("*.yml") if p.is_file())


def generate_all(projects_dir: Path = PROJECTS_DIR, catalog: dict[str, CatalogTable] | None = None) -> Generated:
    """Every project's generated files and the perimeters macro (ProjectDefinitionError, GenerationError)."""
    catalog = catalog or committed_tables()
    definitions = tuple(load_definition(path, catalog) for path in definitions_in(projects_dir))
    files: dict[PurePosixPath, str] = {PERIMETERS_MACRO: perimeters_macro(list(definitions))}
    for definition in definitions:
        files |= project_files(definition, catalog)
    return Generated(definitions, files)


def stale_files(root: Path, generated: Generated) -> list[str]:
    """Generated files that differ from what is on disk, and generated files no definition produces any more."""
    stale = [str(p) for p, text in generated.files.items() if _read(root / p) != text]
    folders = {MODELS_ROOT / folder(d) for d in generated.definitions}
    if (root / MODELS_ROOT).is_dir():
        for path in sorted((root / MODELS_ROOT).rglob("*")):
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if path.is_file() and relative not in generated.files and is_generated(path):
                stale.append(f"{relative} (no definition generates it)")
            elif path.is_dir() and relative.parent == MODELS_ROOT and relative not in folders:
                stale.append(f"{relative}/ (no projects/*.yml for this folder)")
    return stale


def write_generated(root: Path, generated: Generated) -> tuple[int, int]:
    written = removed = 0
    for definition in generated.definitions:
        owned = MODELS_ROOT / folder(definition)
        mine = {p: t for p, t in generated.files.items() if p.parent == owned}
        w, r = write_files(root, mine, owned)
        written, removed = written + w, removed + r
    w, _ = write_files(root, {PERIMETERS_MACRO: generated.files[PERIMETERS_MACRO]})
    return written + w, removed


def check_buildable(definition: ProjectDefinition, today: date, key_present: bool, closed: date | None = None) -> None:
    """ProjectBuildError when the project may not be built: closed (`closed`: the day, see `lifecycle.closed_on`),
    its authorisation not valid today, or its key missing."""
    if closed is not None:
        raise ProjectBuildError(f"{closed_message(definition.id, closed)}; nothing is built")
    problem = definition.authorisation.problem_on(today)
    if problem:
        raise ProjectBuildError(f"project {definition.id}: {problem}; nothing is built")
    if not key_present:
        raise ProjectBuildError(
            f"project {definition.id} has no project key: run `snds keys init --project {definition.id}`"
        )


def project_folder(definition: ProjectDefinition) -> PurePosixPath:
    """The project's folder of models, relative to the dbt project."""
    return MODELS_ROOT / folder(definition)


def selector(definition: ProjectDefinition) -> str:
    """The dbt selection of the project's own nodes (models, their tests, the exposure)."""
    return f"path:{project_folder(definition)}"


def git_commit(root: Path) -> str:
    """The commit the generated models come from (recorded by the build), or `unknown` outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and re.fullmatch("[0-9a-f]{40}", sha) else "unknown"


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
