"""A parsed slice of the dbt project for one folder's nodes, kept between invocations while its sources are unchanged.

Every dbt invocation loads the whole project before it runs any SQL: with 2,517 models, even a partial parse reads
dbt's 30 MB saved state, hashes every file and links the whole graph, about 2.5 s here. A research project builds
a few dozen nodes. `snds project build` therefore hands dbt a manifest cut to what those nodes need (dbt's
programmatic API for a parsed project, `dbtRunner(manifest=...)`): the folder's nodes, every node and source they
read, the tests attached to them, the project's hooks and exposures on them, and every macro. dbt compiles, runs and
tests these exactly as in a full invocation; the guard (`macros/access/project_guard.sql`) reads the same graph
entries for them (their dependencies, their tests).

The slice is reused only while a fingerprint of everything it was cut from is unchanged (`_fingerprint`: the
folder, the files the slice's nodes are defined in, ALWAYS_READ, PROPERTIES, the names under LISTED, the
environment, LIBRARIES and this module). Otherwise dbt parses the project (its own partial parse) and the slice is
cut again. A plain `dbt build` never uses it.

The whole parse is kept the same way (`saved_parse`, `save_parse`), once per checkout and dbt target in PARSES_DIR:
dbt's own partial parse starts over for a DuckDB file in another folder (the path is in its profile hash), a full
parse of a minute for each test's or benchmark's scratch database. The DuckDB file counts by its name only (dbt names
the database after it; its folder shapes no parse), and dbt's target and log paths not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from dbt.contracts.graph.manifest import Manifest
from dbt.parser.manifest import extended_mashumaro_encoder, extended_mashumuro_decoder
from dbt.version import __version__ as DBT_VERSION

from snds import postgres_server
from snds.config import PROJECT_ROOT

SLICES_DIR = "snds_slices"  # inside dbt's target path
PARSES_DIR = "target/snds_parses"  # inside the checkout: the whole parse of each dbt target, whatever the database
DBT_TESTS = "tests/dbt"  # dbt_project.yml's test-paths: the rest of tests/ (pytest's) shapes no parse
WHOLE = ("models", "seeds", DBT_TESTS)  # read whole for the whole parse's fingerprint
FORMAT = 3  # the kept files' layout; a change invalidates every slice and parse kept
# Read whole: what any node's compilation or the parse's file list may depend on
ALWAYS_READ = (
    "dbt_project.yml", "profiles", "macros", DBT_TESTS, ".dbtignore", "packages.yml", "dependencies.yml",
    "selectors.yml", "dbt_packages",
)  # fmt: skip
# every *.yml under it (one of LISTED) read whole: a test or a patch may reach a kept node from any of them
PROPERTIES = "models"
LISTED = ("models", "seeds", DBT_TESTS)  # every path under them listed, not read: a new or moved file cuts again
ENVIRONMENT_PREFIXES = ("SNDS_", "DBT_")
DATABASE_FILE = "SNDS_DUCKDB_PATH"  # counts by the file's name: dbt names the database after it
WRITE_LOCATIONS = ("DBT_TARGET_PATH", "DBT_LOG_PATH")  # where dbt writes: shapes no parse
# How dbt reaches the PostgreSQL server (its database's name does count): shapes no parse either
CONNECTION_ONLY = (postgres_server.HOST_VARIABLE, postgres_server.PORT_VARIABLE, postgres_server.USER_VARIABLE)
CREDENTIAL_WORDS = ("PASSWORD", "SECRET", "TOKEN")  # never hashed into the readable fingerprint (they shape no parse)
LOOKUPS = (  # Manifest's private caches: a slice must not answer from the whole project's
    "_doc_lookup", "_source_lookup", "_ref_lookup", "_metric_lookup", "_saved_query_lookup",
    "_semantic_model_by_measure_lookup", "_disabled_lookup", "_analysis_lookup", "_singular_test_lookup",
    "_function_lookup", "_macros_by_name", "_macros_by_package",
)  # fmt: skip
LIBRARIES = (
    "dbt-core", "dbt-adapters", "dbt-common", "dbt-duckdb", "dbt-oracle", "dbt-postgres", "dbt-semantic-interfaces",
    "jinja2", "mashumaro", "msgpack",
)  # fmt: skip


@dataclass(frozen=True)
class Slice:
    manifest: Manifest
    reused: bool  # False: dbt parsed the project and the slice was cut again (or dbt's whole manifest is used)


def sliced_manifest(
    folder: PurePosixPath,
    target_path: Path,
    parse: Callable[[], Manifest],
    root: Path = PROJECT_ROOT,
    dbt_target: str | None = None,
) -> Slice:
    """The slice of the dbt project in `root` for the nodes under `folder` (relative to `root`), from `target_path`
    when it is still valid, else cut from `parse()` (a full dbt parse for `dbt_target`, None: the profile's default)
    and saved there, apart from other targets' slices. When the folder's nodes
    have what the slice does not carry, or a file changed while dbt parsed, the whole
    parsed manifest is used and nothing is saved (see `_needs_whole`)."""
    slice_path, meta_path = _paths(folder, target_path, dbt_target)

    def fingerprint(meta: dict) -> str:
        return _fingerprint(root, folder, _safe_paths(root, meta["files"]), [str(name) for name in meta["env"]])

    saved = _load(slice_path, meta_path, fingerprint)
    if saved is not None:
        return Slice(saved, reused=True)
    full = parse()
    own = _own(full, folder)
    if needs_whole(full, own):
        return Slice(full, reused=False)
    cut = cut_nodes(full, own)
    files, env = sorted(_defining_files(cut)), sorted(_environment_names(full))
    if _changed_since_parse(full, root, _expand(root, [str(folder), *ALWAYS_READ, *files])):
        return Slice(_ready(cut, full), reused=False)  # what dbt parsed is not what is on disk now: not kept
    meta = {"folder": str(folder), "files": files, "env": env}
    _save(cut, slice_path, meta_path, meta | {"fingerprint": _fingerprint(root, folder, files, env)})
    return Slice(_ready(cut, full), reused=False)


def saved_parse(dbt_target: str | None = None, root: Path = PROJECT_ROOT) -> Manifest | None:
    """The whole parse of the project for `dbt_target` (None: the profile's default) that `save_parse` kept, when
    nothing it was parsed from has changed since (WHOLE and what any parse reads: `inputs_fingerprint`); else None."""
    data_path, meta_path = _parse_paths(root, dbt_target)
    return _load(data_path, meta_path, lambda meta: _whole_fingerprint(root, [str(name) for name in meta["env"]]))


def save_parse(manifest: Manifest, dbt_target: str | None = None, root: Path = PROJECT_ROOT) -> None:
    """Keep dbt's whole parse of the project for `dbt_target` (`saved_parse`), unless a file it read changed
    while dbt parsed."""
    if _changed_since_parse(manifest, root, _expand(root, [*WHOLE, *ALWAYS_READ])):
        return
    env = sorted(_environment_names(manifest))
    data_path, meta_path = _parse_paths(root, dbt_target)
    kept = replace(manifest, flat_graph={})  # half its size: rebuilt when read back (`_ready`)
    _save(kept, data_path, meta_path, {"env": env, "fingerprint": _whole_fingerprint(root, env)})


def _load(data_path: Path, meta_path: Path, fingerprint: Callable[[dict], str]) -> Manifest | None:
    """The manifest kept at `data_path` when its meta's fingerprint is `fingerprint(meta)` now, else None."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") == FORMAT and meta.get("fingerprint") == fingerprint(meta):
            data = data_path.read_bytes()
            if hashlib.sha256(data).hexdigest() == meta.get("sha256"):  # the manifest this meta was written with
                return _ready(Manifest.from_msgpack(data, decoder=extended_mashumuro_decoder))
    except Exception:
        pass  # nothing kept yet, or unreadable in any way (file, msgpack, dbt's classes): parsed again
    return None


def _save(manifest: Manifest, data_path: Path, meta_path: Path, meta: dict) -> None:
    data = manifest.to_msgpack(extended_mashumaro_encoder)
    meta = {"format": FORMAT, **meta, "sha256": hashlib.sha256(data).hexdigest()}
    data_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(data_path, data)
    write_atomically(meta_path, (json.dumps(meta, indent=1) + "\n").encode())


def needs_whole(full: Manifest, own: set[str]) -> bool:
    """Whether the nodes `own` use what a slice leaves out: unit tests on them, functions, or an ephemeral
    model outside them (compiled into theirs with its own parents)."""
    tested = any(own.intersection(t.depends_on.nodes) for t in full.unit_tests.values())
    parents = {uid for n in own for uid in _parents(full, n)}
    called = any(uid.startswith("function.") for uid in parents)
    ephemeral = any(
        uid in full.nodes and uid not in own and full.nodes[uid].config.materialized == "ephemeral" for uid in parents
    )
    return tested or called or ephemeral


def _changed_since_parse(full: Manifest, root: Path, paths: set[str]) -> bool:
    """Whether a file dbt read (sha256 of its stripped UTF-8 text, as dbt computes it) differs on disk now."""
    parsed = {  # the project's own files (a package's `macros/...` would share a path with ours)
        source_file.path.original_file_path: source_file.checksum.checksum
        for source_file in full.files.values()
        if source_file.checksum.name == "sha256" and source_file.project_name == full.metadata.project_name
    }
    for path in paths & parsed.keys():
        try:
            text = (root / path).read_bytes().decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return True
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != parsed[path]:
            return True
    return False


def write_atomically(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a reader never sees a partial file)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _safe_paths(root: Path, paths: object) -> list[str]:
    """The meta file's paths, each relative, normalised and inside `root` (ValueError otherwise: the slice is cut
    again rather than hashing whatever a tampered file names)."""
    if not isinstance(paths, list):
        raise ValueError("files: not a list")
    checked = []
    for path in paths:
        pure = PurePosixPath(str(path))
        if pure.is_absolute() or ".." in pure.parts or str(pure) != str(path) or not pure.parts:
            raise ValueError(f"files: {path!r} is not a plain relative path")
        if not (root / pure).resolve().is_relative_to(root.resolve()):
            raise ValueError(f"files: {path!r} leaves the project")
        checked.append(str(pure))
    return checked


def _ready(manifest: Manifest, full: Manifest | None = None) -> Manifest:
    """`manifest` with the `graph` of Jinja (the guard and the hooks read it), as dbt's own loading builds it. The
    entries of the nodes it shares with `full` (the same objects: a slice keeps them as they are) are taken from
    `full`'s graph rather than serialised again: 1.3 s for a promotion's slice of about 1,000 nodes."""
    known = full.flat_graph.get("nodes", {}) if full is not None and full.flat_graph else {}
    shared = {uid: known[uid] for uid, node in manifest.nodes.items() if uid in known and full.nodes.get(uid) is node}
    nodes = manifest.nodes
    manifest.nodes = {uid: node for uid, node in nodes.items() if uid not in shared}
    try:
        manifest.build_flat_graph()
    finally:
        manifest.nodes = nodes
    built = manifest.flat_graph["nodes"]
    manifest.flat_graph["nodes"] = {uid: shared[uid] if uid in shared else built[uid] for uid in nodes}
    return manifest


def nodes_slice(full: Manifest, own: set[str]) -> Manifest:
    """`cut_nodes` ready for dbt, or `full` itself when the nodes use what a slice leaves out (`needs_whole`)."""
    return full if needs_whole(full, own) else _ready(cut_nodes(full, own), full)


def sources_slice(full: Manifest) -> Manifest:
    """`full` with every source and macro, and no node but the hooks: what a compile of snippets reading sources
    alone needs."""
    return _ready(replace(cut_nodes(full, set()), sources=full.sources), full)


def tagged(manifest: Manifest, uids: Iterable[str], tag: str) -> Manifest:
    """`manifest` with the nodes `uids` (copies) carrying `tag` too: dbt then selects them with one criterion
    (`tag:`), where a criterion per name searches its whole graph once per name. The nodes of `manifest` are left
    as they are (it may be the parse kept in memory); Jinja's `graph`, if built, shows the tag too (a hook reads
    it)."""
    nodes = dict(manifest.nodes)
    changed = {uid: replace(nodes[uid], tags=[*nodes[uid].tags, tag]) for uid in uids}
    nodes.update(changed)
    flat = manifest.flat_graph
    if flat:
        flat = {**flat, "nodes": {**flat["nodes"], **{uid: n.to_dict(omit_none=False) for uid, n in changed.items()}}}
    return replace(manifest, nodes=nodes, flat_graph=flat)


def cut_slice(full: Manifest, *folders: PurePosixPath) -> Manifest:
    """`cut_nodes` of the nodes under `folders`."""
    return cut_nodes(full, _own(full, *folders))


def cut_nodes(full: Manifest, own: set[str]) -> Manifest:
    """`full` restricted to the nodes `own`, their parents, the tests on them and their parents, the hooks, the
    exposures on them and every macro. The parents outside are read, never run: each depends only on its
    ancestors that are in the slice (dbt's graph would otherwise need every ancestor up to the deliveries; the
    ancestry between the slice's nodes is kept, which the build's test edges and indirect selection follow)."""
    tests = {
        uid
        for uid, node in full.nodes.items()
        if node.resource_type == "test" and own.intersection(node.depends_on.nodes)
    }
    hooks = {uid for uid, node in full.nodes.items() if node.resource_type == "operation"}
    exposures = {uid for uid, e in full.exposures.items() if own.intersection(e.depends_on.nodes)}
    kept = own | tests | hooks
    parents = {p for uid in kept for p in _parents(full, uid)}
    parents |= {p for uid in exposures for p in full.exposures[uid].depends_on.nodes}
    nodes = {uid: full.nodes[uid] for uid in sorted(kept)}
    sources = {uid: full.sources[uid] for uid in sorted(parents & full.sources.keys())}
    inside = kept | parents
    for uid in sorted(parents & full.nodes.keys() - kept):
        parent = full.nodes[uid]
        if hasattr(parent.depends_on, "nodes"):  # a seed depends on macros only
            parent = replace(parent, depends_on=replace(parent.depends_on, nodes=_ancestors_in(full, uid, inside)))
        nodes[uid] = parent
    lookups = {name: None for name in LOOKUPS}  # rebuilt from the slice, as after reading it back
    return replace(
        full,
        nodes=nodes,
        sources=sources,
        exposures={uid: full.exposures[uid] for uid in sorted(exposures)},
        files={},
        disabled={},
        flat_graph={},
        functions={},
        metrics={},
        semantic_models={},
        saved_queries={},
        unit_tests={},
        fixtures={},
        **lookups,
    )


def ancestors(full: Manifest, uids: Iterable[str]) -> set[str]:
    """Every node (model, seed, snapshot ...) that the nodes `uids` read, directly or not; sources are not nodes."""
    found: set[str] = set()
    stack = [parent for uid in uids for parent in _parents(full, uid)]
    while stack:
        uid = stack.pop()
        if uid not in found and uid in full.nodes:
            found.add(uid)
            stack.extend(_parents(full, uid))
    return found


def descendants(full: Manifest, uids: Iterable[str]) -> set[str]:
    """Every node other than a test that reads one of the nodes `uids`, directly or not."""
    children: dict[str, list[str]] = {}
    for uid, node in full.nodes.items():
        if node.resource_type != "test":
            for parent in _parents(full, uid):
                children.setdefault(parent, []).append(uid)
    found: set[str] = set()
    stack = [child for uid in uids for child in children.get(uid, [])]
    while stack:
        uid = stack.pop()
        if uid not in found:
            found.add(uid)
            stack.extend(children.get(uid, []))
    return found


def _parents(full: Manifest, uid: str) -> list[str]:
    return list(getattr(full.nodes[uid].depends_on, "nodes", ())) if uid in full.nodes else []  # a seed: macros


def _own(full: Manifest, *folders: PurePosixPath) -> set[str]:
    """The nodes defined under `folders` (what `--select path:<folder>` selects of the nodes)."""
    prefixes = tuple(f"{folder}/" for folder in folders)
    return {uid for uid, node in full.nodes.items() if node.original_file_path.startswith(prefixes)}


def _ancestors_in(full: Manifest, uid: str, inside: set[str]) -> list[str]:
    """The nearest ancestors of node `uid` that are in `inside`, found through the nodes that are not."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = _parents(full, uid)
    while stack:
        ancestor = stack.pop()
        if ancestor in seen:
            continue
        seen.add(ancestor)
        if ancestor in inside:
            found.add(ancestor)
        else:
            stack.extend(_parents(full, ancestor))
    return sorted(found)


def _paths(folder: PurePosixPath, target_path: Path, dbt_target: str | None) -> tuple[Path, Path]:
    name = str(folder).replace("/", "__")
    base = target_path / SLICES_DIR
    if dbt_target:  # the default target's slices keep their place
        base = base / _target_name(dbt_target)
    return base / f"{name}.msgpack", base / f"{name}.json"


def _parse_paths(root: Path, dbt_target: str | None) -> tuple[Path, Path]:
    name = _target_name(dbt_target)
    base = root / PARSES_DIR
    return base / f"{name}.msgpack", base / f"{name}.json"


def _target_name(dbt_target: str | None) -> str:
    name = dbt_target or "default"
    if not name.replace("_", "").isalnum():
        raise ValueError(f"dbt target {dbt_target!r}: letters, digits and _ only")
    return name


def _defining_files(cut: Manifest) -> set[str]:
    """The files (relative to the project) the slice's nodes and sources are defined or described in."""
    entries: Iterable = [*cut.nodes.values(), *cut.sources.values(), *cut.exposures.values()]
    files = set()
    for entry in entries:
        for path in (entry.original_file_path, getattr(entry, "patch_path", None)):
            if path:
                files.add(str(PurePosixPath(path.split("://", 1)[-1])))  # snds://models/..., ./dbt_project.yml
    return files


def _environment_names(full: Manifest) -> set[str]:
    names = set(full.env_vars)
    for source_file in full.files.values():
        names.update(getattr(source_file, "env_vars", None) or ())
    return names


def _fingerprint(root: Path, folder: PurePosixPath, files: list[str], env_names: list[str]) -> str:
    return inputs_fingerprint(root, [str(folder), *files], env_names)


def _whole_fingerprint(root: Path, env_names: list[str]) -> str:
    return inputs_fingerprint(root, list(WHOLE), env_names)


def inputs_fingerprint(root: Path, paths: list[str], env_names: list[str] | tuple[str, ...] = ()) -> str:
    """A digest of what a dbt parse of the project reads beyond `paths` (files or folders): every macro, data test,
    properties YAML, `dbt_project.yml`, profiles, the names of the model, seed and test files, the environment
    (credentials, WRITE_LOCATIONS and CONNECTION_ONLY excepted, DATABASE_FILE by its name), dbt's libraries and
    this module. Equal digests: the parse would give the same result."""
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|{_library_versions()}|{sys.version}\n".encode())
    digest.update(hashlib.sha256(Path(__file__).read_bytes()).digest())  # this module: how the slice is cut
    listed = sorted(str(p.relative_to(root)) for name in LISTED for p in (root / name).rglob("*"))
    digest.update("\n".join(listed).encode())  # names only
    properties = [p for p in listed if p.startswith(f"{PROPERTIES}/") and p.endswith(".yml")]
    for path in sorted(_expand(root, [*paths, *ALWAYS_READ, *properties])):
        digest.update(path.encode() + b"\0")
        full = root / path
        try:
            digest.update(hashlib.sha256(full.read_bytes()).digest() if full.is_file() else b"(not a file)")
        except OSError:
            digest.update(b"(unreadable)")
    environment = {
        name: Path(value).name if name == DATABASE_FILE else value
        for name, value in os.environ.items()
        if (name.startswith(ENVIRONMENT_PREFIXES) or name in env_names)
        and not any(word in name.upper() for word in CREDENTIAL_WORDS)
        and name not in WRITE_LOCATIONS + CONNECTION_ONLY
    }
    digest.update(json.dumps(sorted(environment.items())).encode())
    return digest.hexdigest()


def _expand(root: Path, paths: list[str]) -> set[str]:
    """Each path (relative to `root`) as itself when a file (or missing), else every file under it."""
    found: set[str] = set()
    for path in paths:
        full = root / path
        if full.is_dir():
            found.update(str(p.relative_to(root)) for p in full.rglob("*") if p.is_file())
        else:
            found.add(path)
    return found


def _library_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = [f"dbt={DBT_VERSION}"]
    for package in LIBRARIES:
        try:
            found.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            continue
    return ",".join(found)
