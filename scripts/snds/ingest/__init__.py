"""Ingestion of CNAM deliveries into the `landing` schema (`snds ingest`).

DuckDB is used directly here, not through dbt: its CSV reader is what loads the files (see ARCHITECTURE.md), into
the DuckDB warehouse or, through COPY, into PostgreSQL's (`--target postgres`); the Oracle path is
`snds oracle ingest-sql`. Every attempt, loaded, unchanged or refused, is in `audit.events`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from snds import audit, engine
from snds.catalog.committed import CatalogTable
from snds.ingest.errors import DeliveryRefused
from snds.ingest.limits import IngestLimits, load_limits
from snds.ingest.load import IngestReport, load_delivery
from snds.ingest.manifest import Manifest, read_manifest, shown
from snds.ingest.verify import verify_delivery
from snds.landing import create_bookkeeping

__all__ = ["DeliveryRefused", "IngestReport", "ingest_delivery"]


def _bytes_to_read(manifest: Manifest) -> int:
    """What the progress bar counts: each regular listed file twice (verified, then loaded)."""
    total = 0
    for entry in manifest.entries:
        try:
            info = os.lstat(manifest.directory / entry.file)
        except OSError:
            continue
        total += 2 * info.st_size if stat.S_ISREG(info.st_mode) else 0
    return total


def ingest_delivery(
    directory: Path,
    database: Path | None,
    catalog: dict[str, CatalogTable],
    progress: Callable[[int], None] = lambda _: None,
    total: Callable[[int], None] = lambda _: None,
    limits: IngestLimits | None = None,
    target: str = "duckdb",
) -> IngestReport:
    """Verify then load one delivery; `total` receives the bytes to process, `progress` each step's bytes.

    Raises DeliveryRefused (every problem found, recorded in the audit trail), warehouse.WarehouseError or
    engine.EngineError.
    """
    limits = limits or load_limits()
    with engine.connect(target, database, create=True) as con:
        create_bookkeeping(con)
        try:
            manifest = read_manifest(directory)
            total(_bytes_to_read(manifest))
            report = load_delivery(
                con, manifest, lambda: verify_delivery(manifest, catalog, progress, limits), limits, progress
            )
        except DeliveryRefused as refusal:
            audit.record(con, "ingest", shown(directory.name), "refused", refusal.as_json())
            raise
        detail = {"manifest_sha256": manifest.sha256} if report.status == "unchanged" else report.as_json()
        audit.record(con, "ingest", manifest.delivery_id, report.status, detail)
        return report
