"""The session's parse cut to what a test's own dbt commands build or query, for tests that run several of them.

On the whole parse, every dbt command links the project's graph of 6,000 nodes and searches it for cycles before it
runs anything: about three seconds a command. On the models a test names and everything they read, it links a few
hundred; dbt selects the same nodes in it (`+name`, `name`), and what the test's queries `ref` must be among them.
Not for a selection that reads the gate's `pending_event_deliveries`: that view is compiled from the event-layer
models of the graph (`event_model_tables`), and a cut without them would compile another view.
"""

from __future__ import annotations

from dbt.contracts.graph.manifest import Manifest

from snds.dbt_slice import ancestors, nodes_slice

GRAPH_COMPILED = "model.snds.pending_event_deliveries"


def selection_slice(manifest: Manifest, *selections: str) -> Manifest:
    """`manifest` cut to the models named in `selections` (dbt selection strings of names, each perhaps with a
    leading `+`), every node they read and the tests on them (`snds.dbt_slice.nodes_slice`)."""
    names = {name.lstrip("+") for selection in selections for name in selection.split()}
    models = {uid for uid, node in manifest.nodes.items() if node.resource_type == "model" and node.name in names}
    missing = names - {manifest.nodes[uid].name for uid in models}
    assert not missing, f"no model named {sorted(missing)}"
    kept = models | ancestors(manifest, models)
    assert GRAPH_COMPILED not in kept, f"{GRAPH_COMPILED} compiles from the whole graph: use the whole parse"
    return nodes_slice(manifest, kept)
