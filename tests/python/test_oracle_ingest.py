"""The Oracle ingestion SQL: generated for a real synthetic delivery and every landing table, checked offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from snds import config
from snds.catalog.committed import CatalogTable, load_tables
from snds.ingest.manifest import read_manifest
from snds.ingest.verify import verify_delivery
from snds.oracle_ingest import check_oracle_script, check_oracle_statement, delivery_sql, landing_ddl
from snds.synth import SynthSpec, synthesize


@pytest.fixture(scope="module")
def tables() -> dict[str, CatalogTable]:
    return load_tables()


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory, tables: dict[str, CatalogTable]) -> list[str]:
    delivery = tmp_path_factory.mktemp("oracle") / "D_ORACLE"
    synthesize(delivery, SynthSpec(200, (2019,), seed=3), tables, config.reference_dir(), fault_rate=0.01)
    manifest = read_manifest(delivery)
    return delivery_sql(manifest.delivery_id, verify_delivery(manifest, tables))


def test_delivery_script_loads_every_file_with_error_logging(script: list[str]) -> None:
    assert check_oracle_script(script) == []
    externals = [s for s in script if " organization external " in s]
    inserts = [s for s in script if s.startswith("insert into")]
    assert len(externals) == len(inserts) > 20
    assert all("reject limit unlimited" in s and "badfile SNDS_LOG_DIR:" in s for s in externals)
    assert all(" log errors into landing.ERR$_" in s and s.endswith("reject limit unlimited") for s in inserts)
    prs = next(s for s in inserts if s.startswith("insert into landing.ER_PRS_F "))
    assert "to_date(EXE_SOI_DTD, 'DD/MM/YYYY')" in prs and "cast(BSE_REM_MNT as number(11,2))" in prs
    stays = next(s for s in inserts if s.startswith("insert into landing.T_MCO19C "))
    assert "to_timestamp(EXE_SOI_DTD, 'DDMONYYYY:HH24:MI:SS')" in stays


def test_landing_ddl_passes_for_every_structure(tables: dict[str, CatalogTable]) -> None:
    one_per_structure = {t.structure_id: t for t in tables.values()}.values()
    statements = landing_ddl(one_per_structure)
    assert len(statements) == 2 * len(one_per_structure) > 1500
    assert check_oracle_script(statements) == []


def test_check_rejects_what_oracle_or_our_contract_would(script: list[str]) -> None:
    external = next(s for s in script if " organization external " in s)
    insert = next(s for s in script if s.startswith("insert into"))
    broken = {
        "external-table": external.replace(" reject limit unlimited", ""),
        "log-errors": insert.replace("reject limit unlimited", "reject limit 10"),
        "table-alias-as": insert.replace(" log errors ", " x, dual as d log errors "),
        "alter-session": "alter session set sql_trace = true",
        "limit": "select a from landing.t limit 3",
    }
    for rule, statement in broken.items():
        assert rule in {f.rule for f in check_oracle_statement(statement)}, rule
    assert {f.rule for f in check_oracle_statement(external.replace("char(4000)", "integer"))} == {"external-table"}


def test_cp1252_and_gzip_files_get_their_character_set_and_preprocessor(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    import gzip
    import hashlib

    directory = tmp_path / "D_GZ"
    directory.mkdir()
    header = ";".join(c.name for c in tables["IR_SEX_V"].columns)
    data = gzip.compress(f"{header}\n1;MASCULIN;0\n".encode("cp1252"))
    (directory / "IR_SEX_V.csv.gz").write_bytes(data)
    (directory / "MANIFEST.csv").write_text(
        f"file;table;rows;sha256;encoding\nIR_SEX_V.csv.gz;IR_SEX_V;1;{hashlib.sha256(data).hexdigest()};CP1252\n"
    )
    manifest = read_manifest(directory)
    statements = delivery_sql(manifest.delivery_id, verify_delivery(manifest, tables))
    external = next(s for s in statements if " organization external " in s)
    assert "characterset WE8MSWIN1252 preprocessor SNDS_EXEC_DIR:'zcat.sh'" in external
    assert check_oracle_script(statements) == []
