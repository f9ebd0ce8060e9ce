"""The catalog's staging models up to their own name, for the tests that build or compile the whole project.

2,477 of the project's models are the catalog's staging tables, generated from about 940 column structures: the
DCIR archives (ER_PRS_F_2006 ... ER_PRS_F_2013), the PMSI years, the code lists of one shape. Two models whose
definitions (their SQL, configuration, columns and types, and the tests on them, as dbt parsed them) are the same
text once each one's own name is replaced are the same function of that name: building or compiling one proves the
other's SQL, and its name is checked by the catalog (`snds catalog --check`) and by the engines' DDL of landing.
`distinct_nodes` keeps one model of each such class (the first by name), every model listed in `keep` (the tables
a test delivered rows to) and every node outside the catalog's staging with all it reads: what a whole build or
compile then runs is every distinct definition at least once, at about half the cost.

`textual_classes` finds the same classes from the files alone, for a test that must not wait for the project's
parse (a minute): the model's SQL file, its entry in its folder's properties YAML and its folder's configuration in
dbt_project.yml, each up to the model's name. What dbt parses a model from is these, so equal texts are equal
definitions (test_distinct_models.py checks that each textual class lies in one class of `model_classes`), and a
copy of the project keeping `distinct_tables` (1,206 of the 2,477 staging models) parses for Oracle in 38 s
against 68 s for the whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import yaml
from dbt.contracts.graph.manifest import Manifest

from pruned_project import STAGING, named_staging_tables, staging_properties
from snds.config import PROJECT_ROOT
from snds.dbt_slice import ancestors

# what names a node or says where it is written, never what it runs
MODEL_NAMING = ("description", "original_file_path", "patch_path", "path", "fqn")
TEST_NAMING = ("name", "unique_id", "fqn", "alias", "path", "original_file_path")
# what a compile or a build adds to a node in memory: a class is the same before and after either
COMPILED = ("compiled", "compiled_code", "compiled_path", "extra_ctes", "extra_ctes_injected", "_pre_injected_sql")
CATALOG_META = "snds"  # the generator's facts on each table (meta.snds), for the documentation
NAME = "\0"  # what a model's own name is replaced with


def model_classes(manifest: Manifest) -> list[list[str]]:
    """The catalog's staging models (unique ids) grouped by definition up to their own name, each group sorted."""
    tests: dict[str, list[str]] = defaultdict(list)
    for node in manifest.nodes.values():
        if node.resource_type == "test":
            for parent in node.depends_on.nodes:
                tests[parent].append(_definition(node, exclude=TEST_NAMING))
    classes: dict[str, list[str]] = defaultdict(list)
    for uid, node in manifest.nodes.items():
        if node.resource_type == "model" and node.original_file_path.startswith(STAGING):
            own = _definition(node, exclude=MODEL_NAMING)
            key = json.dumps([own, sorted(tests[uid])]).replace(node.name, NAME)
            classes[key].append(uid)
    return sorted(sorted(group) for group in classes.values())


def distinct_nodes(manifest: Manifest, keep: set[str]) -> set[str]:
    """The nodes a build of every distinct definition runs (see the module): unique ids, tests not included."""
    classes = model_classes(manifest)
    staging = {uid for group in classes for uid in group}
    others = {uid for uid, node in manifest.nodes.items() if uid not in staging and node.resource_type != "test"}
    kept = {group[0] for group in classes} | {uid for uid in staging if manifest.nodes[uid].name in keep}
    return kept | others | ancestors(manifest, others)


def created_empty(manifest: Manifest, nodes: set[str], held: set[str]) -> set[str]:
    """The staging models of `nodes` (`distinct_nodes`) that stand for no class and no delivery holds (`held`): read
    by the event layer alone, their definition built as their class's first. A build creates them empty with the
    hook of a first promotion (macros/staging/empty_increments.sql), as `snds promote` creates the tables nobody
    delivered, rather than running them and their tests as dbt nodes."""
    return {
        uid for group in model_classes(manifest) for uid in group[1:] if uid in nodes and uid.split(".")[-1] not in held
    }


def textual_classes(root: Path = PROJECT_ROOT) -> list[list[str]]:
    """The catalog's staging models (names) in the project at `root` grouped by their files' text up to their own
    name (see the module), each group sorted."""
    folders = _folder_configs(root)
    classes: dict[str, list[str]] = defaultdict(list)
    for path, properties in staging_properties(root).items():
        for entry in properties.get("models", []):
            name = entry["name"]
            sql = (path.parent / f"{name}.sql").read_text(encoding="utf-8")
            folder = folders(path.parent.relative_to(root).as_posix())
            classes[json.dumps([folder, sql, _entry(entry)], sort_keys=True).replace(name, NAME)].append(name)
    return sorted(sorted(group) for group in classes.values())


def distinct_tables(classes: list[list[str]], keep: set[str]) -> set[str]:
    """The staging models a copy of the project keeps to compile every distinct definition: the first of each class,
    those in `keep` (what a test's snippets read), and those the other nodes may read (`named_staging_tables`)."""
    return {group[0] for group in classes} | keep | named_staging_tables()


def _entry(entry: dict) -> dict:
    """A model's properties without what `_definition` leaves out: its descriptions and its catalog facts."""
    entry = {key: value for key, value in entry.items() if key != "description"}
    meta = {key: value for key, value in (entry.get("meta") or {}).items() if key != CATALOG_META}
    entry["meta"] = meta
    entry["columns"] = [{k: v for k, v in column.items() if k != "description"} for column in entry.get("columns", [])]
    return entry


def _folder_configs(root: Path) -> Callable[[str], list[dict]]:
    """What dbt_project.yml configures for the models of a folder (`models/...`): the settings (`+schema`: a key
    that is no subfolder's) of each level of `models:` on the folder's path, the levels below the project's name."""
    project = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8"))
    top = project["models"][project["name"]]

    def configs(folder: str) -> list[dict]:
        found, level = [], top
        for part in folder.split("/")[1:]:
            level = level.get(part) if isinstance(level, dict) else None
            if not isinstance(level, dict):
                break
            found.append(
                {key: value for key, value in level.items() if key.startswith("+") or not isinstance(value, dict)}
            )
        return found

    return configs


def _definition(node: object, exclude: tuple[str, ...]) -> str:
    """The node as dbt parsed it, without what never reaches the database: its descriptions, its file's path, and
    its catalog facts (`meta.snds`: structure, template and year, for the documentation; no macro reads them,
    test_distinct_models.py checks it)."""
    data = node.to_dict()  # type: ignore[attr-defined]
    for field in (*exclude, *COMPILED, "doc_blocks", "checksum", "created_at", "relation_name", "build_path"):
        data.pop(field, None)
    (data.get("depends_on") or {}).pop("macros", None)  # what the code calls; a build adds those it called
    for holder in (data, data.get("config", {}), data.get("unrendered_config", {})):
        (holder.get("meta") or {}).pop(CATALOG_META, None)
    for column in data.get("columns", {}).values():
        column.pop("description", None)
        column.pop("doc_blocks", None)
    text = json.dumps(data, sort_keys=True, default=str)
    if node.resource_type == "test":  # type: ignore[attr-defined]
        # its alias names it too (TEST_NAMING), and the parse copies it into the config and the code: for a long
        # name, dbt's hash of the name, which the model's name in it no longer shows (ER_PRS_F_2006's primary key)
        return text.replace(node.alias, NAME)  # type: ignore[attr-defined]
    return text
