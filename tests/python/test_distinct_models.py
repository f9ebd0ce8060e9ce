"""The classes of staging models that the whole build and the Oracle compile run one model of (distinct_models.py)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from dbt.contracts.graph.manifest import Manifest

from distinct_models import CATALOG_META, distinct_nodes, distinct_tables, model_classes, textual_classes
from pruned_project import STAGING, read_staging_tables
from snds.catalog.committed import load_tables


@pytest.fixture(scope="module")
def textual() -> list[list[str]]:
    return textual_classes()


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
    # their primary keys' tests have names too long, which dbt replaces by a hash of the name as their alias
    assert _class_of(classes, "ER_PRS_F_2006") == _class_of(classes, "ER_PRS_F_2007")
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


def test_the_textual_classes_refine_the_parsed_ones(dbt_manifest: Manifest, textual: list[list[str]]) -> None:
    """One model of each class of files is one of each class of parsed definitions at least (the Oracle compile's
    copy of the project, test_oracle_compile.py): every class of files lies in one parsed class."""
    parsed = {dbt_manifest.nodes[uid].name: i for i, group in enumerate(model_classes(dbt_manifest)) for uid in group}
    assert sorted(name for group in textual for name in group) == sorted(parsed)
    assert [group for group in textual if len({parsed[name] for name in group}) > 1] == []
    assert {parsed[group[0]] for group in textual} == set(parsed.values())
    textual_class = {name: i for i, group in enumerate(textual) for name in group}
    assert textual_class["ER_DCT_F_2006"] == textual_class["ER_DCT_F_2007"]  # files in two folders
    assert textual_class["ER_TRS_F_2006"] != textual_class["ER_TRS_F_2007"]


def test_the_distinct_tables_hold_every_staging_model_the_rest_of_the_project_reads(
    dbt_manifest: Manifest, textual: list[list[str]]
) -> None:
    read = read_staging_tables(dbt_manifest)
    kept = distinct_tables(textual, keep={"ER_DCT_F_2008"})
    assert read <= kept and "ER_DCT_F_2008" in kept
    staging = {name for group in textual for name in group}
    outside = [n for n in dbt_manifest.nodes.values() if not n.original_file_path.startswith(STAGING)]
    tested = {uid for n in outside if n.resource_type == "test" for uid in n.depends_on.nodes}
    tested = {dbt_manifest.nodes[uid].name for uid in tested if uid in dbt_manifest.nodes}  # not the sources
    assert tested & staging <= kept  # a test whose model is missing would be left out of the parse, with a warning
    assert {"T_MCO19B", "T_MCO06B", "ER_PRS_F_2006", "IR_BEN_R"} <= read  # by name, and through snds_table_history
    assert len(kept) < len(load_tables()) * 0.6  # a copy cut to about half the staging models


def test_files_that_differ_by_their_name_only_share_a_textual_class(tmp_path: Path) -> None:
    """Descriptions and catalog facts aside, any difference of SQL, properties or folder configuration splits."""
    project = {
        "name": "snds",
        "models": {"snds": {"staging": {"snds": {"+materialized": "incremental", "b": {"+tags": ["x"]}}}}},
    }
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    same = "cast(landed.X as date)"
    models = {  # T_SPACED: a space more; T_WIDER: a column more; T_ELSEWHERE: in a folder tagged
        "a": {"T_A06": same, "T_A07": same, "T_SPACED": f"{same} ", "T_WIDER": same},
        "b": {"T_ELSEWHERE": same},
    }
    for folder, sql in models.items():
        (tmp_path / STAGING / folder).mkdir(parents=True)
        for name, text in sql.items():
            (tmp_path / STAGING / folder / f"{name}.sql").write_text(
                f"select {text} from {{{{ source('landing', '{name}') }}}} landed\n"
            )
        entries = [
            {
                "name": name,
                "description": f"table {name}",
                "meta": {CATALOG_META: {"year": i}},
                "columns": [
                    {"name": "X", "data_type": "date", "description": name},
                    *([{"name": "Y", "data_type": "date"}] if name == "T_WIDER" else []),
                ],
            }
            for i, name in enumerate(sql)
        ]
        (tmp_path / STAGING / folder / "_m.yml").write_text(yaml.safe_dump({"models": entries}), encoding="utf-8")
    assert textual_classes(tmp_path) == [["T_A06", "T_A07"], ["T_ELSEWHERE"], ["T_SPACED"], ["T_WIDER"]]
