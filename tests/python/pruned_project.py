"""A copy of the dbt project for tests that add models of their own, cut to the staging tables the rest reads.

The catalog's staging models are most of the project (2,477 of its models, most of its tests): a copy that keeps
only those that some other node reads (the event layer, the marts, the research projects and what they read) parses
in seconds instead of a minute or two, and each `dbt build` on it links a graph a fifth the size. What the copy's
own models read must be among those (`missing_tables`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from dbt.contracts.graph.manifest import Manifest

from snds.config import PROJECT_ROOT
from snds.dbt_slice import ancestors

COPIED = ("dbt_project.yml", "profiles", "macros", "models", "seeds", "projects", "tests/dbt", ".dbtignore")
STAGING = "models/staging/snds/"


def read_staging_tables(manifest: Manifest) -> set[str]:
    """The staging models (SNDS tables) that a node outside the catalog's staging reads, directly or not."""
    nodes = manifest.nodes
    staging = {uid for uid, node in nodes.items() if node.original_file_path.startswith(STAGING)}
    readers = {uid for uid in nodes if uid not in staging and not uid.startswith("test.")}
    return {nodes[uid].name for uid in ancestors(manifest, readers) & staging}


def copy_project(root: Path) -> None:
    """The project's dbt files in `root`: a real copy (dbt does not follow a symlinked folder)."""
    root.mkdir()
    for name in COPIED:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)


def copy_pruned(root: Path, manifest: Manifest) -> set[str]:
    """`copy_project` with the staging models of `read_staging_tables` only (their SQL files and their entries in
    the staging YAML); returns their names."""
    kept = read_staging_tables(manifest)
    copy_project(root)
    for path in (root / STAGING).rglob("*.sql"):
        if path.stem not in kept:
            path.unlink()
    for path in (root / STAGING).rglob("*.yml"):
        properties = yaml.safe_load(path.read_text(encoding="utf-8"))
        if "models" in properties:
            properties["models"] = [model for model in properties["models"] if model["name"] in kept]
            path.write_text(yaml.safe_dump(properties, sort_keys=False), encoding="utf-8")
    return kept
