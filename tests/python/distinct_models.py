"""The catalog's staging models up to their own name, for the tests that build or compile the whole project.

2,477 of the project's models are the catalog's staging tables, generated from about 940 column structures: the
DCIR archives (ER_PRS_F_2006 ... ER_PRS_F_2013), the PMSI years, the code lists of one shape. Two models whose
definitions (their SQL, configuration, columns and types, and the tests on them, as dbt parsed them) are the same
text once each one's own name is replaced are the same function of that name: building or compiling one proves the
other's SQL, and its name is checked by the catalog (`snds catalog --check`) and by the engines' DDL of landing.
`distinct_nodes` keeps one model of each such class (the first by name), every model listed in `keep` (the tables
a test delivered rows to) and every node outside the catalog's staging with all it reads: what a whole build or
compile then runs is every distinct definition at least once, at about half the cost.
"""

from __future__ import annotations

import json
from collections import defaultdict

from dbt.contracts.graph.manifest import Manifest

from pruned_project import STAGING
from snds.dbt_slice import ancestors

# what names a node or says where it is written, never what it runs
MODEL_NAMING = ("description", "original_file_path", "patch_path", "path", "fqn")
TEST_NAMING = ("name", "unique_id", "fqn", "alias", "path", "original_file_path")
# what a compile or a build adds to a node in memory: a class is the same before and after either
COMPILED = ("compiled", "compiled_code", "compiled_path", "extra_ctes", "extra_ctes_injected", "_pre_injected_sql")
CATALOG_META = "snds"  # the generator's facts on each table (meta.snds), for the documentation


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
            key = json.dumps([own, sorted(tests[uid])]).replace(node.name, "\0")
            classes[key].append(uid)
    return sorted(sorted(group) for group in classes.values())


def distinct_nodes(manifest: Manifest, keep: set[str]) -> set[str]:
    """The nodes a build of every distinct definition runs (see the module): unique ids, tests not included."""
    classes = model_classes(manifest)
    staging = {uid for group in classes for uid in group}
    others = {uid for uid, node in manifest.nodes.items() if uid not in staging and node.resource_type != "test"}
    kept = {group[0] for group in classes} | {uid for uid in staging if manifest.nodes[uid].name in keep}
    return kept | others | ancestors(manifest, others)


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
    return json.dumps(data, sort_keys=True, default=str)
