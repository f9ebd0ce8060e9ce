"""Ingestion of CNAM deliveries into the `landing` schema (`snds ingest`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.ingest.errors import DeliveryRefused
from snds.ingest.load import IngestReport, load_delivery
from snds.ingest.manifest import read_manifest
from snds.ingest.verify import verify_delivery

__all__ = ["DeliveryRefused", "IngestReport", "ingest_delivery"]


def ingest_delivery(
    directory: Path,
    database: Path,
    catalog: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
    total: Callable[[int], None] = lambda _: None,
) -> IngestReport:
    """Verify then load one delivery; `total` receives the bytes to process, `progress` each step's bytes."""
    manifest = read_manifest(directory)
    total(2 * sum((directory / e.file).stat().st_size for e in manifest.entries if (directory / e.file).is_file()))
    database.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(database)) as con:
        return load_delivery(con, manifest, lambda: verify_delivery(manifest, catalog, progress), progress)
