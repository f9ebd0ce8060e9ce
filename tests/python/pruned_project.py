"""A copy of the dbt project for tests that add models of their own, cut to the staging tables the rest reads.

The catalog's staging models are most of the project (2,477 of its models, most of its tests): a copy that keeps
only those that some other node reads (the event layer, the marts, the research projects and what they read) parses
in seconds instead of a minute or two, and each `dbt build` on it links a graph a fifth the size. What the copy's
own models read must be among those (`missing_tables`). Which they are comes from a parse (`read_staging_tables`)
or, for a test that must not wait for one, from the files (`named_staging_tables`, which test_distinct_models.py
checks against the parse).
"""

from __future__ import annotations

import re
import shutil
from functools import cache
from pathlib import Path

import yaml
from dbt.contracts.graph.manifest import Manifest

from snds.catalog.committed import load_tables
from snds.catalog.pseudonymisation import GENERATED_MACROS_ROOT
from snds.config import PROJECT_ROOT
from snds.dbt_slice import DBT_TESTS, ancestors

COPIED = ("dbt_project.yml", "profiles", "macros", "models", "seeds", "projects", DBT_TESTS, ".dbtignore")
STAGING = "models/staging/snds/"
# What defines or expands the nodes outside the catalog's staging (the catalog's own macros list every table)
NODE_TEXTS = {"models": (".sql", ".py", ".yml"), DBT_TESTS: (".sql", ".yml"), "macros": (".sql",)}
SOURCE_CALL = re.compile(r"\bsource\([^)]*\)")  # a landing table, named as the staging model that reads it


def read_staging_tables(manifest: Manifest) -> set[str]:
    """The staging models (SNDS tables) that a node outside the catalog's staging reads, directly or not."""
    nodes = manifest.nodes
    staging = {uid for uid, node in nodes.items() if node.original_file_path.startswith(STAGING)}
    readers = {uid for uid in nodes if uid not in staging and not uid.startswith("test.")}
    return {nodes[uid].name for uid in ancestors(manifest, readers) & staging}


def named_staging_tables() -> set[str]:
    """The staging models whose name, or whose catalog template (the yearly tables that `snds_table_history` loops
    over: `T_MCOaaB`, `ER_PRS_F`), is a word of the files outside the catalog's staging, `source()` calls left out:
    what the nodes there may read, found without a parse (a name built by Jinja from other parts would be missed:
    test_distinct_models.py compares with `read_staging_tables` on the project's parse)."""
    words: set[str] = set()
    for folder, suffixes in NODE_TEXTS.items():
        for path in (PROJECT_ROOT / folder).rglob("*"):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if path.suffix in suffixes and not relative.startswith((STAGING, f"{GENERATED_MACROS_ROOT}/")):
                words.update(re.findall(r"\w+", SOURCE_CALL.sub("", path.read_text(encoding="utf-8"))))
    return {name for name, table in load_tables().items() if name in words or table.template in words}


@cache
def staging_properties(root: Path) -> dict[Path, dict]:
    """Each properties file of the catalog's staging with its content, read once (shared: never changed) with
    libyaml's parser (its 113 files in seconds, where PyYAML's own takes a minute)."""
    return {
        path: yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        for path in sorted((root / STAGING).rglob("*.yml"))
    }


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
    """`copy_staging` of the staging models of `read_staging_tables`; returns their names."""
    kept = read_staging_tables(manifest)
    copy_staging(root, kept)
    return kept


def copy_staging(root: Path, kept: set[str]) -> None:
    """`copy_project` with the staging models `kept` only (their SQL files and their entries in the staging YAML);
    the sources stay whole."""
    copy_project(root)
    for path in (root / STAGING).rglob("*.sql"):
        if path.stem not in kept:
            path.unlink()
    for path, properties in staging_properties(PROJECT_ROOT).items():
        if "models" in properties:
            models = [model for model in properties["models"] if model["name"] in kept]
            text = yaml.dump({**properties, "models": models}, Dumper=yaml.CSafeDumper, sort_keys=False)
            (root / path.relative_to(PROJECT_ROOT)).write_text(text, encoding="utf-8")
