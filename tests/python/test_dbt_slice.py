"""The project's slice of the parsed dbt project (snds.dbt_slice): what it keeps, and when it is cut again.

The guard's cases are built with the slice too (test_project_guard: each case both ways)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pytest
from dbt.contracts.graph.manifest import Manifest

from snds.dbt import run_dbt
from snds.dbt_slice import (
    PARSES_DIR,
    SLICES_DIR,
    cut_slice,
    nodes_slice,
    save_parse,
    saved_parse,
    sliced_manifest,
    sources_slice,
)
from snds.promotion import (
    EMPTY_TAG,
    PROMOTED,
    PROMOTED_TAG,
    Delivered,
    exclusion,
    nothing_to_apply,
    promotion_manifest,
    selection,
)

P_T2D = PurePosixPath("models/projects/p_t2d")


def test_the_slice_keeps_the_projects_nodes_their_parents_tests_hooks_and_every_macro(dbt_manifest: Manifest) -> None:
    cut = cut_slice(dbt_manifest, P_T2D)
    own = {uid for uid, n in dbt_manifest.nodes.items() if n.original_file_path.startswith(f"{P_T2D}/")}
    assert {"model.snds.p_t2d__cohort", "model.snds.p_t2d__er_pha_f"} <= own <= set(cut.nodes)
    assert {"model.snds.events", "model.snds.persons", "model.snds.ER_PHA_F", "model.snds.ER_PRS_F"} <= set(cut.nodes)
    # the parents outside are read, never run: they depend only on their nearest ancestors in the slice (events on
    # the staging tables the project also reads), and nothing else of the base is kept
    events = set(cut.nodes["model.snds.events"].depends_on.nodes)
    assert "model.snds.ER_PHA_F" in events and events <= set(cut.nodes)
    assert "model.snds.int_dispensings_coded" not in cut.nodes and len(cut.nodes) < 100 < len(dbt_manifest.nodes)
    nodes = dbt_manifest.nodes.items()
    tests = {uid for uid, n in nodes if n.resource_type == "test" and own & set(n.depends_on.nodes)}
    assert tests and tests <= set(cut.nodes)
    hooks = {uid for uid, n in dbt_manifest.nodes.items() if n.resource_type == "operation"}
    assert hooks and hooks <= set(cut.nodes)
    assert set(cut.exposures) == {"exposure.snds.p_t2d"}
    assert cut.macros.keys() == dbt_manifest.macros.keys()
    # every kept node's dependencies are in the slice: dbt links its graph without the rest of the project
    for node in cut.nodes.values():
        assert set(node.depends_on.nodes) <= set(cut.nodes) | set(cut.sources), node.unique_id


def test_the_sources_slice_keeps_every_source_and_macro_and_no_model(dbt_manifest: Manifest) -> None:
    cut = sources_slice(dbt_manifest)
    assert cut.sources.keys() == dbt_manifest.sources.keys() and cut.macros.keys() == dbt_manifest.macros.keys()
    assert {node.resource_type for node in cut.nodes.values()} == {"operation"}  # the run's hooks alone


def _project(root: Path) -> Path:
    for path, text in {
        "dbt_project.yml": "name: tiny\n",
        "macros/one.sql": "{% macro one() %}1{% endmacro %}\n",
        "models/projects/p_x/p_x__cohort.sql": "select 1 as x\n",
        "models/elsewhere/other.sql": "select 2 as y\n",
    }.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return root


def test_the_slice_is_reused_until_what_it_was_cut_from_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, target, folder = _project(tmp_path / "project"), tmp_path / "target", PurePosixPath("models/projects/p_x")
    parses: list[int] = []

    def parse() -> Manifest:
        parses.append(1)
        return Manifest()

    def reused() -> bool:
        return sliced_manifest(folder, target, parse, root).reused

    assert not reused() and len(parses) == 1
    assert reused() and reused() and len(parses) == 1
    assert (target / SLICES_DIR / "models__projects__p_x.json").is_file()
    changes = [
        lambda: (root / "macros/one.sql").write_text("{% macro one() %}2{% endmacro %}\n", encoding="utf-8"),
        lambda: (root / folder / "p_x__extra.sql").write_text("select 3 as z\n", encoding="utf-8"),
        lambda: (root / "dbt_project.yml").write_text("name: tiny\nversion: '2'\n", encoding="utf-8"),
        lambda: monkeypatch.setenv("SNDS_DUCKDB_PATH", str(tmp_path / "another.duckdb")),
        lambda: (target / SLICES_DIR / "models__projects__p_x.msgpack").write_bytes(b"not a manifest"),
        # a test or a patch may reach a kept node from any properties file; a new file anywhere may clash
        lambda: (root / "models/elsewhere/_other.yml").write_text("version: 2\n", encoding="utf-8"),
        lambda: (root / "models/elsewhere/new.sql").write_text("select 5 as w\n", encoding="utf-8"),
        lambda: (root / ".dbtignore").write_text("models/projects/p_x/p_x__extra.sql\n", encoding="utf-8"),
    ]
    for number, change in enumerate(changes, start=2):
        change()
        assert not reused(), f"change {number - 1} not seen"
        assert len(parses) == number and reused()
    (root / "models/elsewhere/other.sql").write_text("select 4 as y\n", encoding="utf-8")
    assert reused(), "a model outside the slice changed nothing in it"
    monkeypatch.setenv("SNDS_ORACLE_PASSWORD", "changed")
    assert reused(), "credentials shape no parse, and are never hashed into the readable fingerprint"
    meta = target / SLICES_DIR / "models__projects__p_x.json"
    meta.write_text(meta.read_text(encoding="utf-8").replace('"files": []', '"files": ["../../etc"]'), "utf-8")
    assert not reused(), "a meta file naming a path outside the project is not trusted"


def test_the_whole_parse_is_kept_for_any_database_of_the_same_name_until_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path / "project")
    monkeypatch.setenv("SNDS_DUCKDB_PATH", str(tmp_path / "one" / "warehouse.duckdb"))
    assert saved_parse(root=root) is None
    save_parse(Manifest(), root=root)
    assert (root / PARSES_DIR / "default.json").is_file() and saved_parse("oracle_offline", root) is None
    monkeypatch.setenv("SNDS_DUCKDB_PATH", str(tmp_path / "two" / "warehouse.duckdb"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    assert saved_parse(root=root) is not None, "the database's folder and dbt's log path shape no parse"
    changes = [
        lambda: monkeypatch.setenv("SNDS_DUCKDB_PATH", str(tmp_path / "two" / "other.duckdb")),  # another database
        lambda: (root / "models/elsewhere/other.sql").write_text("select 4 as y\n", encoding="utf-8"),
        lambda: (root / "seeds/new.csv").parent.mkdir() or (root / "seeds/new.csv").write_text("a\n1\n", "utf-8"),
        lambda: (root / PARSES_DIR / "default.msgpack").write_bytes(b"not a manifest"),
    ]
    for number, change in enumerate(changes, start=1):
        save_parse(Manifest(), root=root)
        assert saved_parse(root=root) is not None
        change()
        assert saved_parse(root=root) is None, f"change {number} not seen"


@pytest.mark.parametrize(
    ("tables", "first"),
    [(["ER_PRS_F", "ER_PHA_F", "IR_BEN_R"], False), (["ER_PRS_F", "T_MCO19B", "IR_CIP_V", "IR_NAT_V"], True)],
    ids=["a monthly promotion", "a first promotion"],
)
def test_a_promotion_selects_from_its_slice_what_it_selects_from_the_whole_project(
    dbt_manifest: Manifest, dbt_target: Path, tables: list[str], first: bool
) -> None:
    def listed(manifest: Manifest, touched: list[str]) -> set[str]:
        arguments = ("--select", *selection(touched, first), "--exclude", *exclusion(first))
        run = run_dbt("ls", "--quiet", "--no-write-json", "--output", "json", "--output-keys", "unique_id", *arguments,
                      manifest=manifest, target_path=dbt_target)  # fmt: skip
        return {json.loads(line)["unique_id"] for line in run.result.result}

    cut = promotion_manifest(dbt_manifest, tables)
    whole = listed(dbt_manifest, tables)  # by name, from the whole project
    assert len(cut.nodes) < len(dbt_manifest.nodes) / 3 and "model.snds.events" in whole
    assert listed(cut, [PROMOTED]) == whole  # by the tag of the promotion's copy
    assert PROMOTED_TAG not in dbt_manifest.nodes["model.snds.ER_PRS_F"].tags  # the parse it was cut from unchanged


def test_a_first_promotion_leaves_out_the_tables_nobody_delivered_and_their_tests(
    dbt_manifest: Manifest, dbt_target: Path
) -> None:
    """What no validated delivery holds is created empty by a hook (macros/staging/empty_increments.sql): the
    build selects neither those models nor their tests, and the hook reads their tag from dbt's graph."""
    tables = ["IR_CIP_V", "ER_PRS_F"]
    delivered = Delivered(tables, [], first=True, clean=True, held=frozenset([*tables, "T_MCO19B"]))
    empty = nothing_to_apply(dbt_manifest, delivered)
    assert {"T_MCO06B", "ER_PHA_F_2006", "IR_BEN_R"} <= empty and not empty & {*delivered.held}
    assert nothing_to_apply(dbt_manifest, replace(delivered, existing=frozenset(["IR_BEN_R"]))) == empty - {"IR_BEN_R"}
    assert not nothing_to_apply(dbt_manifest, replace(delivered, first=False))
    cut = promotion_manifest(dbt_manifest, tables, empty)
    run = run_dbt("ls", "--quiet", "--no-write-json", "--output", "json", "--output-keys", "unique_id",
                  "--select", *selection([PROMOTED], True), "--exclude", *exclusion(True),
                  manifest=cut, target_path=dbt_target)  # fmt: skip
    listed = {json.loads(line)["unique_id"] for line in run.result.result}
    created = {uid for uid, node in cut.nodes.items() if EMPTY_TAG in node.tags}
    assert {node.name for uid, node in cut.nodes.items() if uid in created} == empty
    assert {"model.snds.events", "model.snds.T_MCO19B", "model.snds.ER_PRS_F"} <= listed and not created & listed
    tests = {uid for uid, node in cut.nodes.items() if node.resource_type == "test"}
    assert not {uid for uid in tests & listed if created & set(cut.nodes[uid].depends_on.nodes)}
    assert all(EMPTY_TAG in cut.flat_graph["nodes"][uid]["tags"] for uid in created)  # what the hook reads


def test_a_slice_takes_the_graph_entries_of_the_nodes_it_keeps_as_they_are_from_the_whole_parse(
    dbt_manifest: Manifest,
) -> None:
    whole = dbt_manifest.flat_graph["nodes"]
    cohort = nodes_slice(dbt_manifest, {"model.snds.p_t2d__cohort"})  # its parents outside read only their own
    for cut in (promotion_manifest(dbt_manifest, ["ER_PRS_F"], ["T_MCO06B"]), cohort):
        graph = cut.flat_graph["nodes"]
        assert graph.keys() == cut.nodes.keys()
        same = {uid for uid, node in cut.nodes.items() if dbt_manifest.nodes.get(uid) is node}
        assert same and all(graph[uid] is whole[uid] for uid in same)
        for uid, node in cut.nodes.items():  # those a slice changed (tags, the parents read outside) serialised again
            parents = getattr(node.depends_on, "nodes", [])  # a seed depends on macros only
            assert graph[uid]["tags"] == node.tags and graph[uid]["depends_on"].get("nodes", []) == parents
        assert len(same) < len(cut.nodes)
