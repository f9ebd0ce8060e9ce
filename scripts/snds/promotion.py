"""`snds promote`: apply validated deliveries to the base, building only what they touch.

The dbt selection is made from the deliveries' tables: the staging model of each table they delivered and its
descendants (event layer, marts), the pseudonym correspondences, and what those read (the promotion gate's views,
the catalog seed, the keys view), with the tables of any delivery an earlier build left half-applied (a model that
failed, and those after it): an event-layer model never applies a delivery from intermediate tables that have not.
Into a base that was never built (no incremental model has a recorded build),
the descendants' other parents are built too (dbt's `@` selection), so that the event layer finds every table;
those of them that no validated delivery holds (years and archives nobody delivered: about 340 of the 520 nodes
of a first promotion) have nothing to apply, and are created empty by one hook instead of being built and tested
node by node (macros/staging/empty_increments.sql).
The incremental models apply only what they have not applied yet
(macros/staging/delivery_increments.sql), so a monthly delivery costs in proportion to its own size. Research
projects are not rebuilt: each is built on request (`snds project build`), under its authorisation. Into a built
base, the tests of the views over every event (persons, cleaning_rules) are left to `dbt build`: they read the whole
layer, and no delivery is applied to those views.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dbt.contracts.graph.manifest import Manifest

from snds import engine
from snds.catalog.committed import committed_tables
from snds.catalog.pseudonymisation import DOMAINS, correspondence_model
from snds.dbt import BUILD_OPTIONS, DbtRun, dbt_database, dbt_environment, parse_project, run_dbt, target_options
from snds.dbt_slice import ancestors, descendants, nodes_slice, tagged
from snds.engine import EMBEDDED, Connection, connect, where
from snds.warehouse import require_landing

# The staging models of the tables a promotion builds, tagged in its copy of the parse (`promotion_manifest`): dbt
# selects them with one criterion, where a criterion per table (534 on the demo's first promotion) made it search
# its graph once per table, three times over (a build selects with and without unit tests, then queues): 26 s of
# the 40 s it spent before its first node.
PROMOTED_TAG = "snds_promoted_table"
PROMOTED = f"tag:{PROMOTED_TAG}"
# The staging models of a first promotion that have nothing to apply, tagged in its copy of the parse: the hook
# create_empty_increments (macros/staging/empty_increments.sql; this is its default tag) creates their tables
# empty, and the build leaves them and their tests out.
EMPTY_TAG = "snds_created_empty"
BASE_LAYER = ("staging", "snds")  # the folders of the base's staging models, one per SNDS table
# With `+`: the gate's views (what staging and the event layer have still to apply) and the catalog seed they read.
GATE_MODELS = ("pending_deliveries", "pending_event_deliveries")
PROJECTS_PATH = "path:models/projects"
EVENT_LAYER = ("intermediate", "marts")  # the layers of models/ after staging
# The tests of the views over every event (persons, cleaning_rules), which read the whole event layer: no delivery
# is applied to those views (re-created, they read the new rows). A promotion into a built base leaves their tests
# to `dbt build` (a deployment, CI, the demo).
WHOLE_LAYER_TESTS = "tag:whole_event_layer"
# What the data tests of a model with flow months read (macros/staging/tested_rows.sql): the months the run applied,
# or every row (the default, for a `dbt build` by hand).
TESTED_ROWS_VARIABLE, TESTED_ROWS_APPLIED, TESTED_ROWS_EVERY = "SNDS_TESTED_ROWS", "applied", "every"


class PromotionRefused(Exception):
    """A delivery cannot be promoted (unknown, or not validated): nothing was built."""


@dataclass(frozen=True)
class Promotion:
    deliveries: tuple[str, ...]
    tables: tuple[str, ...]  # the SNDS tables built: those they delivered, and those an earlier build left
    resumed: tuple[str, ...]  # other deliveries that an earlier build left half-applied, finished by this one
    selection: tuple[str, ...]  # dbt --select arguments
    nodes: tuple[str, ...]  # the names of the nodes dbt ran (models, tests ...)
    seconds_by_layer: dict[str, float]  # dbt's execution time of the nodes, summed by layer (staging, marts ...)


@dataclass(frozen=True)
class Delivered:
    tables: list[str]  # catalog tables to build, sorted
    resumed: list[str]  # deliveries other than those asked for that an earlier build left half-applied
    first: bool  # a base never built: no incremental model has a recorded build, or the gate's views are missing
    clean: bool  # no delivery was left half-applied: the months an earlier build applied were tested then
    # into a base never built: the tables some validated delivery holds, and the base's tables that exist (upper
    # case); nothing otherwise
    held: frozenset[str] = frozenset()
    existing: frozenset[str] = frozenset()


def delivered_tables(database: Path, delivery_ids: list[str], target: str = EMBEDDED) -> Delivered:
    """The catalog tables the validated deliveries delivered, with those of the deliveries an earlier build left
    half-applied; PromotionRefused for a delivery unknown or not validated."""
    with connect(target, database) as con:
        require_landing(con, where(target, database))
        problems = []
        tables: set[str] = set()
        for delivery in delivery_ids:
            row = con.execute("select STATUS from landing.deliveries where DELIVERY_ID = ?", [delivery]).fetchone()
            if row is None:
                problems.append(f"delivery {delivery} was never ingested")
            elif row[0] != "validated":
                problems.append(f"delivery {delivery} is {row[0]}, not validated: run `snds validate {delivery}`")
            else:
                names = con.execute(
                    "select distinct TABLE_NAME from landing.delivery_files where DELIVERY_ID = ?", [delivery]
                ).fetchall()
                tables.update(name for (name,) in names)
        first = not con.execute("select count(*) from landing.model_builds").fetchone()[0] or not gate_built(con)
        left = [] if first else half_applied(con)
        held, existing = held_and_existing(con) if first else (frozenset(), frozenset())
    if problems:
        raise PromotionRefused("; ".join(problems))
    catalog = committed_tables()
    tables.update(table for _, table in left)
    resumed = sorted({delivery for delivery, _ in left} - set(delivery_ids))
    # a name reaches dbt only if the catalog has it
    return Delivered(sorted(name for name in tables if name in catalog), resumed, first, not left, held, existing)


def held_and_existing(con: Connection) -> tuple[frozenset[str], frozenset[str]]:
    """The tables that some validated delivery holds files for (every one of them is promoted: promoted_deliveries),
    and the names, in upper case, of every table of the base's schema (as PostgreSQL folds them, lower case)."""
    held = con.execute(
        """
        select distinct files.TABLE_NAME from landing.delivery_files files
        inner join landing.deliveries deliveries on files.DELIVERY_ID = deliveries.DELIVERY_ID
        where deliveries.STATUS = 'validated'
        """
    ).fetchall()
    existing = con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [BASE_LAYER[1]]
    ).fetchall()
    return frozenset(name for (name,) in held), frozenset(name.upper() for (name,) in existing)


def gate_built(con: Connection) -> bool:
    """Whether the gate's views exist (a build of a few models by hand may have left them out)."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'landing' and table_name in (?, ?)",
        list(GATE_MODELS),
    ).fetchone()[0]
    return found == len(GATE_MODELS)


def half_applied(con: Connection) -> list[tuple[str, str]]:
    """(delivery, table) of each promoted delivery that some model of the base has applied and another reading it
    has not yet: what a build that failed (or was stopped) left; a delivery no model has applied yet is left to
    the promotion that asks for it. From the gate's views as the last build created them."""
    correspondences = [correspondence_model(domain) for domain in DOMAINS]  # they apply every validated delivery
    return con.execute(
        """
        select pending.DELIVERY_ID, pending.MODEL_NAME from landing.pending_deliveries pending
        where exists (
            select 1 from landing.applied_deliveries applied
            where applied.DELIVERY_ID = pending.DELIVERY_ID and applied.MODEL_NAME not in (?, ?)
        )
        union
        select pending.DELIVERY_ID, pending.TABLE_NAME from landing.pending_event_deliveries pending
        """,
        correspondences,
    ).fetchall()


def selection(tables: list[str], first: bool = False) -> list[str]:
    """dbt --select arguments for the staging models `tables` (names, or [PROMOTED] in `promotion_manifest`'s copy
    of the parse); `first`: into a base never built, with the parents of every descendant."""
    correspondences = [f"+{correspondence_model(domain)}" for domain in DOMAINS]
    touched = [f"@{table}" if first else f"{table}+" for table in tables]
    return [*(f"+{model}" for model in GATE_MODELS), *correspondences, *touched]


def promotion_manifest(manifest: Manifest, tables: list[str], empty: Iterable[str] = ()) -> Manifest:
    """The parsed project cut to what a promotion of `tables` can reach (`snds.dbt_slice.cut_nodes`): the staging
    models of `tables` and their descendants outside the research projects, the gate's views, the correspondences,
    every model of the event layer (the gate's view of the layer and the definitions drop_stale_increments compares
    are read from dbt's graph of every one of them), everything these read, and the tests on them. dbt selects the
    same nodes from it as from the whole project (`selection`, first or not), and links and searches a graph a
    fraction of the size: a monthly promotion's slice has about 520 nodes of the project's 3,500, and on the demo's
    first promotion (534 tables) dbt spent 82 s between loading the whole project and running its first node. The
    staging models of `tables` carry PROMOTED_TAG there, the models `empty` (`nothing_to_apply`) EMPTY_TAG."""
    models, touched, below = _reached(manifest, tables)
    gate = {models[name] for name in (*GATE_MODELS, *(correspondence_model(d) for d in DOMAINS)) if name in models}
    # with every model of the event layer and all they read: the gate's view of the event layer and the definitions
    # that drop_stale_increments compares are read from dbt's graph of every one of them and of their ancestors
    layer = {
        uid for uid, node in manifest.nodes.items() if node.resource_type == "model" and node.fqn[1] in EVENT_LAYER
    }
    own = touched | below | gate | layer
    cut = tagged(nodes_slice(manifest, own | ancestors(manifest, own)), touched, PROMOTED_TAG)
    return tagged(cut, {models[name] for name in empty}, EMPTY_TAG)


def nothing_to_apply(manifest: Manifest, delivered: Delivered) -> set[str]:
    """Into a base never built, the staging models that its promotion selects (dbt's `@` selection of the delivered
    tables: their descendants outside the research projects, and all these read) whose table no validated delivery
    holds and does not exist yet: built, each would be an empty table with nothing applied. Nothing otherwise."""
    if not delivered.first:
        return set()
    _, touched, below = _reached(manifest, delivered.tables)
    return {
        node.name
        for node in (manifest.nodes[uid] for uid in ancestors(manifest, touched | below))
        if tuple(node.fqn[1:3]) == BASE_LAYER
        and node.config.materialized == "incremental"
        and node.name not in delivered.held
        and node.name.upper() not in delivered.existing
    }


def _reached(manifest: Manifest, tables: list[str]) -> tuple[dict[str, str], set[str], set[str]]:
    """The models' unique ids by name, those of the staging models of `tables`, and their descendants outside the
    research projects."""
    models = {node.name: uid for uid, node in manifest.nodes.items() if node.resource_type == "model"}
    touched = {models[table] for table in tables if table in models}
    projects = PROJECTS_PATH.removeprefix("path:") + "/"
    below = {
        uid for uid in descendants(manifest, touched) if not manifest.nodes[uid].original_file_path.startswith(projects)
    }
    return models, touched, below


def exclusion(first: bool = False) -> list[str]:
    """dbt --exclude arguments: the research projects; into a base never built, the models with nothing to apply
    (created empty by a hook) and their tests; into a built base, the tests over the whole event layer."""
    return [PROJECTS_PATH, f"tag:{EMPTY_TAG}"] if first else [PROJECTS_PATH, WHOLE_LAYER_TESTS]


def promote(
    database: Path,
    delivery_ids: list[str],
    target_path: Path | None = None,
    manifest: Manifest | None = None,
    extra: tuple[str, ...] = (),
    target: str = EMBEDDED,
) -> Promotion:
    """Build the models the deliveries touch (dbt build: models and their tests); DbtError if dbt fails. `manifest`:
    the project already parsed for `target` (else the parse kept for the checkout); `extra`: more dbt options
    (`--full-refresh`); `target`: the engine (the DuckDB file `database`, or the `postgres` target's server)."""
    with engine.held(target, database):  # read here, then built by dbt in this process
        delivered = delivered_tables(database, delivery_ids, target)
        selected = selection([PROMOTED], first=delivered.first)
        # a build after one that stopped half-way tests every row: what it applied may not have been tested
        tested = TESTED_ROWS_APPLIED if delivered.clean and not delivered.first else TESTED_ROWS_EVERY
        dbt_target = engine.dbt_target(target)
        with dbt_database(database):
            # the parse kept for the checkout (seconds), not dbt's own parse of a minute in a target it has not parsed
            if manifest is None:
                manifest = parse_project("--quiet", target_path=target_path, dbt_target=dbt_target)
            with dbt_environment(TESTED_ROWS_VARIABLE, tested):
                excluded = exclusion(first=delivered.first)
                arguments = ("build", *target_options(dbt_target), *BUILD_OPTIONS, "--select", *selected)
                arguments += ("--exclude", *excluded, *extra)
                cut = promotion_manifest(manifest, delivered.tables, nothing_to_apply(manifest, delivered))
                run: DbtRun = run_dbt(*arguments, target_path=target_path, manifest=cut)
    results = getattr(run.result.result, "results", None) or []
    layers: dict[str, float] = {}
    for result in results:
        fqn = getattr(result.node, "fqn", None) or ["", "other"]
        layer = fqn[1] if result.node.resource_type == "model" and len(fqn) > 2 else str(result.node.resource_type)
        layers[layer] = layers.get(layer, 0.0) + float(result.execution_time or 0.0)
    return Promotion(
        tuple(delivery_ids),
        tuple(delivered.tables),
        tuple(delivered.resumed),
        tuple(selected),
        tuple(result.node.name for result in results),
        layers,
    )
