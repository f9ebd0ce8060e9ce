"""A parsed slice of the dbt project for one folder's nodes, kept between invocations while its sources are unchanged.

Every dbt invocation loads the whole project before it runs any SQL: with 2,517 models, even a partial parse reads
dbt's 30 MB saved state, hashes every file and links the whole graph, about 2.5 s here. A research project builds
a few dozen nodes. `snds project build` therefore hands dbt a manifest cut to what those nodes need (dbt's
programmatic API for a parsed project, `dbtRunner(manifest=...)`): the folder's nodes, every node and source they
read, the tests attached to them, the project's hooks and exposures on them, and every macro. dbt compiles, runs and
tests these exactly as in a full invocation; the guard (`macros/access/project_guard.sql`) reads the same graph
entries for them (their dependencies, their tests).

The slice is reused only while a fingerprint of everything it was cut from is unchanged: the folder's files, every
macro and data test, dbt_project.yml and the profiles, the files the slice's other nodes are defined in, the
environment variables dbt or the profile read (SNDS_*, DBT_* and those the parse recorded), the versions of dbt
and its adapters, and this module. Otherwise dbt parses the project (its own partial parse) and the slice is cut
again. A plain `dbt build` never uses it.
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

from snds.config import PROJECT_ROOT

SLICES_DIR = "snds_slices"  # inside dbt's target path
FORMAT = 1  # the slice file's layout; a change invalidates every slice
ALWAYS_READ = ("dbt_project.yml", "profiles", "macros", "tests/dbt")  # what any node's compilation may read
ENVIRONMENT_PREFIXES = ("SNDS_", "DBT_")


@dataclass(frozen=True)
class Slice:
    manifest: Manifest
    reused: bool  # False: dbt parsed the project and the slice was cut again


def sliced_manifest(
    folder: PurePosixPath, target_path: Path, parse: Callable[[], Manifest], root: Path = PROJECT_ROOT
) -> Slice:
    """The slice of the dbt project in `root` for the nodes under `folder` (relative to `root`), from `target_path`
    when it is still valid, else cut from `parse()` (a full dbt parse) and saved there."""
    slice_path, meta_path = _paths(folder, target_path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") == FORMAT and meta.get("fingerprint") == _fingerprint(
            root, folder, meta["files"], meta["env"]
        ):
            manifest = Manifest.from_msgpack(slice_path.read_bytes(), decoder=extended_mashumuro_decoder)
            return Slice(_ready(manifest), reused=True)
    except Exception:
        pass  # no slice yet, or one unreadable in any way (file, msgpack, dbt's classes): cut it again
    full = parse()
    cut = cut_slice(full, folder)
    files = sorted(_defining_files(cut))
    env = sorted(_environment_names(full))
    slice_path.parent.mkdir(parents=True, exist_ok=True)
    slice_path.write_bytes(cut.to_msgpack(extended_mashumaro_encoder))
    meta = {"format": FORMAT, "folder": str(folder), "files": files, "env": env}
    meta["fingerprint"] = _fingerprint(root, folder, files, env)
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return Slice(_ready(cut), reused=False)


def _ready(manifest: Manifest) -> Manifest:
    manifest.build_flat_graph()  # the `graph` of Jinja (the guard reads it), as dbt's own loading builds it
    return manifest


def cut_slice(full: Manifest, *folders: PurePosixPath) -> Manifest:
    """`full` restricted to the nodes under `folders`, their parents, the tests on them and their parents, the hooks,
    the exposures on them and every macro. The parents outside are read, never run: their own dependencies are
    dropped from the slice (dbt's graph would otherwise need every ancestor up to the deliveries)."""
    prefixes = tuple(f"{folder}/" for folder in folders)
    own = {uid for uid, node in full.nodes.items() if node.original_file_path.startswith(prefixes)}
    tests = {
        uid
        for uid, node in full.nodes.items()
        if node.resource_type == "test" and own.intersection(node.depends_on.nodes)
    }
    hooks = {uid for uid, node in full.nodes.items() if node.resource_type == "operation"}
    exposures = {uid for uid, e in full.exposures.items() if own.intersection(e.depends_on.nodes)}
    kept = own | tests | hooks
    parents = {p for uid in kept for p in full.nodes[uid].depends_on.nodes}
    parents |= {p for uid in exposures for p in full.exposures[uid].depends_on.nodes}
    nodes = {uid: full.nodes[uid] for uid in sorted(kept)}
    for uid in sorted(parents & full.nodes.keys() - kept):  # read, never run: their own parents are left out
        parent = full.nodes[uid]
        inside = [p for p in parent.depends_on.nodes if p in kept]
        nodes[uid] = replace(parent, depends_on=replace(parent.depends_on, nodes=inside))
    sources = {uid: full.sources[uid] for uid in sorted(parents & full.sources.keys())}
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
    )


def _paths(folder: PurePosixPath, target_path: Path) -> tuple[Path, Path]:
    name = str(folder).replace("/", "__")
    base = target_path / SLICES_DIR
    return base / f"{name}.msgpack", base / f"{name}.json"


def _defining_files(cut: Manifest) -> set[str]:
    """The files (relative to the project) the slice's nodes and sources are defined or described in."""
    entries: Iterable = [*cut.nodes.values(), *cut.sources.values(), *cut.exposures.values()]
    files = set()
    for entry in entries:
        for path in (entry.original_file_path, getattr(entry, "patch_path", None)):
            if path:
                files.add(path.split("://", 1)[-1])  # a patch path names its package: snds://models/...
    return files


def _environment_names(full: Manifest) -> set[str]:
    names = set(full.env_vars)
    for source_file in full.files.values():
        names.update(getattr(source_file, "env_vars", None) or ())
    return names


def _fingerprint(root: Path, folder: PurePosixPath, files: list[str], env_names: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{FORMAT}|{DBT_VERSION}|{_adapter_versions()}|{sys.version}\n".encode())
    digest.update(hashlib.sha256(Path(__file__).read_bytes()).digest())  # this module: how the slice is cut
    roots = [str(folder), *ALWAYS_READ, *files]
    for path in sorted(_expand(root, roots)):
        digest.update(path.encode() + b"\0")
        try:
            digest.update(hashlib.sha256((root / path).read_bytes()).digest())
        except OSError:
            digest.update(b"(missing)")
    environment = {k: v for k, v in os.environ.items() if k.startswith(ENVIRONMENT_PREFIXES) or k in env_names}
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


def _adapter_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("dbt-adapters", "dbt-duckdb", "dbt-oracle", "dbt-postgres"):
        try:
            found.append(f"{package}={version(package)}")
        except PackageNotFoundError:
            continue
    return ",".join(found)
