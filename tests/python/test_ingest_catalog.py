"""Every definition of a catalog table ingests: one generated file, its header and one typed row, for one table of each
pair (columns, delivery policy), which is all that ingestion reads of a table besides its name (`snds.ingest`
reads `name`, `columns` and `policy`, and a test below keeps it so). 2,477 tables have about 960 such
definitions (the yearly PMSI tables and the DCIR archives share theirs); a table's name reaches SQL only as a
checked identifier, and every table's landing DDL is created and checked by test_landing.py."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from snds.catalog.committed import CatalogTable, load_tables
from snds.catalog.sqltypes import DATE, DOUBLE, NUMERIC, TIMESTAMP, VARCHAR, SqlType
from snds.config import PROJECT_ROOT
from snds.ingest import ingest_delivery
from snds.ingest.verify import write_manifest

pytestmark = pytest.mark.slow

# One valid text per kind of type, as a CNAM file writes it.
_SAMPLE = {VARCHAR: "A", NUMERIC: "1", DOUBLE: "1.5", DATE: "01/01/2019", TIMESTAMP: "01JAN2019:00:00:00"}
# What ingestion reads of a catalog table (CatalogTable's fields) besides its name: a table's definition here.
DEFINITION = ("columns", "policy")
# Where ingestion reads the catalog's tables.
INGESTION_CODE = ("scripts/snds/ingest", "scripts/snds/landing.py")


def _sample(sql_type: SqlType) -> str:
    return _SAMPLE[sql_type.kind]


def one_table_per_definition(tables: dict[str, CatalogTable]) -> dict[str, CatalogTable]:
    """The first table by name of each (columns, delivery policy), by name."""
    kept: dict[tuple, CatalogTable] = {}
    for name in sorted(tables):
        kept.setdefault(tuple(getattr(tables[name], field) for field in DEFINITION), tables[name])
    return {table.name: table for table in kept.values()}


def test_ingestion_reads_no_other_field_of_a_table() -> None:
    """What makes one table per definition enough: the ingestion code names no other field of CatalogTable."""
    others = set(CatalogTable.__dataclass_fields__) - {"name", *DEFINITION}
    paths = [path for place in INGESTION_CODE for path in sorted((PROJECT_ROOT / place).glob("**/*.py"))]
    paths += [PROJECT_ROOT / place for place in INGESTION_CODE if place.endswith(".py")]
    code = "\n".join(path.read_text(encoding="utf-8") for path in paths)
    assert len(paths) > 5 and "table.columns" in code and "table.policy" in code
    assert not {field for field in others if re.search(rf"\.{field}\b", code)}


def test_every_table_definition_ingests(tmp_path: Path) -> None:
    catalog = load_tables()
    tables = one_table_per_definition(catalog)
    directory = tmp_path / "WHOLE_CATALOG"
    directory.mkdir()
    files = []
    for table in tables.values():
        header = ";".join(c.name for c in table.columns)
        row = ";".join(_sample(c.sql_type) for c in table.columns)
        name = f"{table.name}.csv"
        (directory / name).write_text(f"{header}\n{row}\n", encoding="utf-8")
        files.append((name, table.name))
    write_manifest(directory, files)
    database = tmp_path / "warehouse.duckdb"
    report = ingest_delivery(directory, database, catalog)
    counts = report.tables()
    assert set(counts) == set(tables) and 900 < len(counts) < 2400
    assert all(c == {"rows": 1, "loaded": 1, "quarantined": 0} for c in counts.values())
    with duckdb.connect(str(database)) as con:
        sizes = dict(
            con.execute(
                "select table_name, estimated_size from duckdb_tables() where schema_name = 'landing'"
            ).fetchall()
        )
    assert {name: sizes.get(name) for name in tables} == dict.fromkeys(tables, 1)
    print(f"{len(tables)} table definitions ingested, one row each")
