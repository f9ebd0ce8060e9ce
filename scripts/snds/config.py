"""Where things are: the project, the reference dictionary and the default database."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = PROJECT_ROOT / "profiles"
DEFAULT_REFERENCE_DIR = PROJECT_ROOT.parent / "shared" / "reference" / "schema-snds"
# Not `snds.duckdb`: DuckDB names the catalog after the file, and a catalog `snds` makes `snds.ER_PRS_F`
# ambiguous between the catalog and the `snds` schema that SNDS programs query.
DEFAULT_DATABASE = PROJECT_ROOT / "data" / "warehouse.duckdb"
REPORTS_DIR = PROJECT_ROOT / "data" / "reports"  # conformity reports (a folder per delivery) and project pages


def reference_dir() -> Path:
    """The SNDS dictionary (schema-snds): `SNDS_REFERENCE_DIR`, else `../shared/reference/schema-snds`."""
    return Path(os.environ.get("SNDS_REFERENCE_DIR") or DEFAULT_REFERENCE_DIR)


def database_path() -> Path:
    """The DuckDB database: `SNDS_DUCKDB_PATH` (relative to the project), else `data/warehouse.duckdb`."""
    configured = os.environ.get("SNDS_DUCKDB_PATH")
    return PROJECT_ROOT / configured if configured else DEFAULT_DATABASE
