"""The classes of staging models that the whole build and the Oracle compile run one model of (distinct_models.py)."""

from __future__ import annotations

import re
from dataclasses import replace

from dbt.contracts.graph.manifest import Manifest

from distinct_models import CATALOG_META, distinct_nodes, model_classes
from snds.catalog.committed import load_tables


def _class_of(classes: list[list[str]], name: str) -> list[str]:
    (found,) = [group for group in classes if f"model.snds.{name}" in group]
    return found


def test_models_that_differ_by_their_name_only_share_a_class(dbt_manifest: Manifest) -> None:
    classes = model_classes(dbt_manifest)
    tables = load_tables()
    assert sum(len(group) for group in classes) == len(tables)
    archives = _class_of(classes, "ER_DCT_F_2006")
    assert "model.snds.ER_DCT_F_2007" in archives  # the DCIR archives of one year and the next
    assert _class_of(classes, "T_MCO17B") == _class_of(classes, "T_MCO23B")  # the PMSI's stays kept their columns
    assert _class_of(classes, "ER_TRS_F_2006") != _class_of(classes, "ER_TRS_F_2007")  # 2006 lacks 18 columns
    for group in classes:  # a class never mixes typed columns, delivery policies or keys (the dictionary's own
        # types may differ: T_HAD06E ... share the SQL of two structures of the catalog)
        shapes = {
            (tuple((c.name, c.data_type) for c in t.columns), t.policy, t.primary_key)
            for t in (tables[uid.split(".")[-1]] for uid in group)
        }
        assert len(shapes) == 1, group
    assert len(tables) / 3 < len(classes) < len(tables) / 2


def test_any_other_difference_splits_a_class(dbt_manifest: Manifest) -> None:
    first, second = "model.snds.ER_DCT_F_2006", "model.snds.ER_DCT_F_2007"
    node = dbt_manifest.nodes[second]
    for changed in (
        replace(node, raw_code=node.raw_code.replace("cast(", "cast( ", 1)),
        replace(node, config=replace(node.config, materialized="table")),
    ):
        nodes = {**dbt_manifest.nodes, second: changed}
        classes = model_classes(replace(dbt_manifest, nodes=nodes))
        assert second not in _class_of(classes, first.split(".")[-1])


def test_the_distinct_nodes_keep_what_the_rest_of_the_project_reads(dbt_manifest: Manifest) -> None:
    kept = distinct_nodes(dbt_manifest, keep={"ER_DCT_F_2007"})
    assert {"model.snds.ER_DCT_F_2006", "model.snds.ER_DCT_F_2007"} <= kept  # a class's first, and one asked for
    assert "model.snds.ER_DCT_F_2008" not in kept
    for name in ("events", "p_t2d__cohort", "ER_PRS_F", "T_MCO19B", "IR_BEN_R", "person_pseudonyms"):
        assert f"model.snds.{name}" in kept
    assert not any(uid.startswith("test.") for uid in kept)


def test_no_macro_or_model_reads_the_catalog_facts_the_classes_ignore(dbt_manifest: Manifest) -> None:
    reading = re.compile(rf"meta\s*(\.|\[|\.get\()\s*['\"]?{CATALOG_META}\b")
    sources = [m.macro_sql for m in dbt_manifest.macros.values() if m.package_name == "snds"]
    sources += [n.raw_code for n in dbt_manifest.nodes.values()]
    assert not [text for text in sources if reading.search(text)]
    assert reading.search("{{ model.meta.snds.year }}") and reading.search("config.meta['snds']")
