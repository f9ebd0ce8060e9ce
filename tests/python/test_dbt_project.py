"""Structure rules of ARCHITECTURE.md, checked over dbt's manifest (dbt-project-evaluator's, our way)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
import yaml

from snds import config
from snds.catalog.build import Catalog
from snds.catalog.conventions import Conventions
from snds.catalog.labels import DBT_IGNORE, INSTALLED_LABELS, NEUTRAL_LABELS

pytestmark = pytest.mark.slow

LAYER_NAMES = {
    # SNDS spelling: ER_PRS_F, T_MCO19B, and the dictionary's own placeholders such as T_MCO19GVxx.
    "staging/snds": re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9](xx)?$"),
    # The restricted key store and the pseudonym correspondences, in the `keys` schema.
    "staging/keys": re.compile(r"^[a-z][a-z0-9_]*$"),
    "staging/landing": re.compile(r"^[a-z][a-z0-9_]*$"),
    "staging/pseudonymisation": re.compile(r"^[a-z][a-z0-9_]*_(pseudonyms|renewals)$"),
    "intermediate": re.compile(r"^int_[a-z0-9_]+s_[a-z0-9]+$"),
    "marts": re.compile(r"^[a-z][a-z0-9_]*$"),
    "projects": re.compile(r"^[a-z][a-z0-9_]*$"),
}
HARD_CODED_RELATION = re.compile(r"\b(from|join)\s+(landing|snds|catalog|int|marts|audit|keys)\.\w+", re.IGNORECASE)


def _models(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]


def _path(node: dict) -> PurePosixPath:
    return PurePosixPath(node["original_file_path"])


def test_every_model_and_seed_is_documented(manifest: dict) -> None:
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")]
    undocumented = [n["name"] for n in nodes if not n["description"].strip()]
    assert nodes and not undocumented


def test_models_follow_layer_folders_and_names(manifest: dict) -> None:
    wrong = []
    for node in _models(manifest):
        path = _path(node)
        layer = path.parts[1] if path.parts[0] == "models" and len(path.parts) > 2 else ""
        if layer == "staging":
            layer = "/".join(path.parts[1:3])
        pattern = LAYER_NAMES.get(layer)
        if pattern is None or not pattern.match(node["name"]):
            wrong.append(str(path))
    assert not wrong, wrong[:10]


def test_yaml_per_folder(manifest: dict) -> None:
    wrong = []
    for node in _models(manifest):
        folder = _path(node).parent
        expected = f"_{'_'.join(folder.parts[3:]) if len(folder.parts) > 3 else folder.name}__models.yml"
        if node["patch_path"] is None or PurePosixPath(node["patch_path"].split("://")[-1]) != folder / expected:
            wrong.append((node["name"], node["patch_path"]))
    assert not wrong, wrong[:10]


def test_staging_is_the_catalog(manifest: dict, catalog: Catalog) -> None:
    staging = {n["name"]: n for n in _models(manifest) if _path(n).parts[1:3] == ("staging", "snds")}
    assert set(staging) == {t.name for t in catalog.tables}
    for table in catalog.tables:
        node = staging[table.name]
        assert (node["schema"], node["alias"]) == ("snds", table.name)
        assert node["config"]["contract"]["enforced"]
        assert [(c["name"], c["data_type"]) for c in node["columns"].values()] == [
            (c.name, c.data_type) for c in table.columns
        ]


def test_only_staging_reads_sources(manifest: dict, catalog: Catalog) -> None:
    readers: dict[str, list[str]] = {}
    for node in _models(manifest):
        for dependency in node["depends_on"]["nodes"]:
            if dependency.startswith("source."):
                readers.setdefault(dependency, []).append("/".join(_path(node).parts[1:3]))
    assert set(readers) == set(manifest["sources"])
    # Each source has one staging model; the correspondence of a domain also reads every landing table that
    # holds identifiers of that domain.
    domains = {t.name: {c.identifier.pseudonym_domain for c in t.columns} - {None} for t in catalog.tables}
    for source, folders in readers.items():
        table = source.split(".")[-1]
        if table in ("deliveries", "delivery_files", "delivery_periods"):  # the promotion gate's views
            assert set(folders) == {"staging/landing"}, source
            continue
        elif table == "applied_deliveries":  # read by the views of what is pending; written by the build's hooks
            assert set(folders) == {"staging/landing"}, source
            continue
        elif source.startswith("source.snds.landing."):
            expected = ["staging/snds"] + ["staging/pseudonymisation"] * len(domains[table])
        else:
            expected = ["staging/keys"]
        assert sorted(folders) == sorted(expected), source


def test_pseudonym_conventions_agree_between_dbt_and_the_catalog(manifest: dict, conventions: Conventions) -> None:
    project = yaml.safe_load((config.PROJECT_ROOT / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["snds_pseudonym_length"] == conventions.pseudonyms.length
    assert tuple(project["vars"]["snds_person_placeholders"]) == conventions.pseudonyms.person_placeholders


def test_direct_identifiers_come_from_the_correspondences(manifest: dict, catalog: Catalog) -> None:
    nodes = {n["name"]: n for n in _models(manifest)}
    for table in catalog.tables:
        domains = {c.identifier.pseudonym_domain for c in table.columns} - {None}
        refs = {d.split(".")[-1] for d in nodes[table.name]["depends_on"]["nodes"] if d.startswith("model.")}
        # and the deliveries it has still to apply
        assert refs == {f"{d}_pseudonyms" for d in domains} | {"pending_deliveries"}, table.name


def test_no_hard_coded_relations(manifest: dict) -> None:
    sql = [n for n in _models(manifest) if n["language"] == "sql"]  # a Python model's `from x import y` is no relation
    offenders = [n["name"] for n in sql if HARD_CODED_RELATION.search(n["raw_code"])]
    assert len(sql) > 2000 and not offenders


def test_declared_keys_have_a_primary_key_test(manifest: dict, catalog: Catalog) -> None:
    tested: dict[str, list[str]] = {}
    for node in manifest["nodes"].values():
        metadata = node.get("test_metadata") or {}
        if node["resource_type"] == "test" and metadata.get("name") == "primary_key":
            tested.setdefault(node["attached_node"].split(".")[-1], []).append(metadata["kwargs"]["columns"])
    expected = {t.name: [list(t.primary_key)] for t in catalog.tables if t.primary_key}
    expected.update(
        {f"{d}_pseudonyms": [["delivered_identifier"], ["platform_pseudonym"]] for d in ("person", "professional")}
    )
    expected["promoted_deliveries"] = [["DELIVERY_ID"]]
    expected["promoted_tables"] = [["DELIVERY_ID", "TABLE_NAME"]]
    assert len(expected) > 500
    assert {k: sorted(v) for k, v in tested.items()} == expected


def test_table_docs_come_from_one_labels_file(manifest: dict) -> None:
    # The committed neutral labels, or the installed ones (then .dbtignore hides the neutral file from dbt).
    installed = (config.PROJECT_ROOT / DBT_IGNORE).exists()
    sources = {d["original_file_path"] for d in manifest["docs"].values() if d["name"].startswith("snds_table__")}
    assert sources == {str(INSTALLED_LABELS if installed else NEUTRAL_LABELS)}
