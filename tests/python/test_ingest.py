"""`snds ingest` on real DuckDB files, fed by `snds synth`: nothing lost, refusals clear, atomic, idempotent."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from snds import config
from snds.catalog.committed import CatalogTable, load_tables
from snds.cli import main
from snds.ingest import DeliveryRefused, ingest_delivery
from snds.synth import SynthSpec, synthesize, truth_path


@pytest.fixture(scope="module")
def tables() -> dict[str, CatalogTable]:
    return load_tables()


@pytest.fixture(scope="module")
def delivery(tmp_path_factory: pytest.TempPathFactory, tables: dict[str, CatalogTable]) -> Path:
    out = tmp_path_factory.mktemp("deliveries") / "D2019_001"
    synthesize(out, SynthSpec(400, (2019, 2020), seed=7), tables, config.reference_dir(), fault_rate=0.002)
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, delivery: Path, tables: dict[str, CatalogTable]) -> Path:
    database = tmp_path_factory.mktemp("db") / "warehouse.duckdb"
    ingest_delivery(delivery, database, tables)
    return database


def _query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database)) as con:
        return con.execute(sql).fetchall()


def _snapshot(database: Path) -> list[tuple]:
    """Every non-empty landing table with its row count: what a refused delivery must leave as it was.

    (Empty tables do not count: ingestion may create its empty bookkeeping tables before it refuses.)
    """
    if not database.exists():
        return []
    with duckdb.connect(str(database)) as con:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'landing' order by 1"
            ).fetchall()
        ]
        counts = [(n, con.execute(f"select count(*) from landing.{n}").fetchone()) for n in names]
    return [(n, c) for n, c in counts if c != (0,)]


def _rewrite_manifest(directory: Path) -> None:
    """Recompute the manifest of a hand-modified delivery (digests and row counts of what is there)."""
    rows = list(csv.DictReader((directory / "MANIFEST.csv").open(encoding="utf-8"), delimiter=";"))
    with (directory / "MANIFEST.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            path = directory / row["file"]
            if path.exists():
                data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
                row["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
                row["rows"] = str(max(0, data.count(b"\n") - 1))
            writer.writerow(row)


def test_synth_is_deterministic(tmp_path: Path, tables: dict[str, CatalogTable], delivery: Path) -> None:
    again = tmp_path / delivery.name
    synthesize(again, SynthSpec(400, (2019, 2020), seed=7), tables, config.reference_dir(), fault_rate=0.002)
    assert (again / "MANIFEST.csv").read_bytes() == (delivery / "MANIFEST.csv").read_bytes()


def test_every_planted_fault_is_quarantined_with_its_reason(delivery: Path, loaded: Path) -> None:
    faults = json.loads(truth_path(delivery).read_text())["faults"]
    assert {f["kind"] for f in faults} == {
        "wrong_field_count",
        "impossible_date",
        "text_in_numeric",
        "string_too_long",
        "undecodable_bytes",
    }
    expected = {(f["file"], f["line"], f["reason_code"], f["column"]) for f in faults}
    found = set(_query(loaded, "select FILE_NAME, LINE_NUMBER, REASON_CODE, COLUMN_NAME from landing.quarantine"))
    assert found == expected


def test_counts_balance_for_every_file(delivery: Path, loaded: Path) -> None:
    manifest = {r["file"]: int(r["rows"]) for r in csv.DictReader((delivery / "MANIFEST.csv").open(), delimiter=";")}
    files = _query(
        loaded, "select FILE_NAME, TABLE_NAME, ROW_COUNT, LOADED_COUNT, QUARANTINED_COUNT from landing.delivery_files"
    )
    assert {f[0] for f in files} == set(manifest)
    for name, table, rows, loaded_rows, quarantined in files:
        assert rows == manifest[name] == loaded_rows + quarantined
        in_landing = _query(loaded, f"select count(*) from landing.{table} where DELIVERY_FILE = '{name}'")
        assert in_landing == [(loaded_rows,)]
        in_quarantine = _query(loaded, f"select count(*) from landing.quarantine where FILE_NAME = '{name}'")
        assert in_quarantine == [(quarantined,)]


def test_second_ingest_changes_nothing(delivery: Path, loaded: Path, tables: dict[str, CatalogTable]) -> None:
    before = _snapshot(loaded)
    report = ingest_delivery(delivery, loaded, tables)
    assert report.status == "unchanged" and _snapshot(loaded) == before


def test_dcir_nine_key_joins_and_pmsi_person_link(loaded: Path) -> None:
    keys = """FLX_DIS_DTD, FLX_TRT_DTD, FLX_EMT_TYP, FLX_EMT_NUM, FLX_EMT_ORD,
        ORG_CLE_NUM, DCT_ORD_NUM, PRS_ORD_NUM, REM_TYP_AFF"""
    for satellite in ("ER_PHA_F", "ER_BIO_F", "ER_CAM_F", "ER_ETE_F"):
        total, joined = _query(
            loaded,
            f"""select count(*), count(p.BEN_NIR_PSA)
            from landing.{satellite} s left join landing.ER_PRS_F p using ({keys})""",
        )[0]
        assert total > 0 and joined == total, satellite
    stays, linked, with_claims = _query(
        loaded,
        """select count(*), count(b.BEN_NIR_PSA),
            count(distinct case when exists (select 1 from landing.ER_PRS_F p where p.BEN_NIR_PSA = c.NIR_ANO_17)
                  then c.NIR_ANO_17 end)
        from landing.T_MCO19C c left join landing.IR_BEN_R b on b.BEN_NIR_PSA = c.NIR_ANO_17""",
    )[0]
    assert stays > 0 and linked == stays and with_claims > 0


def test_cp1252_accents_survive_and_parts_add_up(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    directory = tmp_path / "REF_001"
    directory.mkdir()
    header = "DCD_IDT_ENC;DCD_IDT_TOP;BEN_IDT_ANO;" + ";".join(c.name for c in tables["KI_CCI_R"].columns[3:])
    blanks = ";" * (len(tables["KI_CCI_R"].columns) - 4)
    lieu = "Hôpital Saint-Éloi, cœur"  # ô, É and œ: œ is in CP1252 but not in Latin-1
    (directory / "KI_CCI_R_1.csv").write_bytes(f"{header}\nA;1;P1;{blanks}\n".encode("cp1252"))
    position = [c.name for c in tables["KI_CCI_R"].columns].index("DCD_LIE_LIB")
    fields = ["B", "1", "P2"] + [""] * (len(tables["KI_CCI_R"].columns) - 3)
    fields[position] = lieu
    (directory / "KI_CCI_R_2.csv").write_bytes(f"{header}\n{';'.join(fields)}\n".encode("cp1252"))
    (directory / "MANIFEST.csv").write_text(
        "file;table;rows;sha256;encoding\nKI_CCI_R_1.csv;KI_CCI_R;0;0;CP1252\nKI_CCI_R_2.csv;KI_CCI_R;0;0;CP1252\n"
    )
    _rewrite_manifest(directory)
    database = tmp_path / "warehouse.duckdb"
    report = ingest_delivery(directory, database, tables)
    assert report.tables()["KI_CCI_R"] == {"rows": 2, "loaded": 2, "quarantined": 0}
    assert _query(database, "select DCD_LIE_LIB from landing.KI_CCI_R where BEN_IDT_ANO = 'P2'") == [(lieu,)]


def _refused(delivery: Path, database: Path, tables: dict[str, CatalogTable], expected: str) -> None:
    before = _snapshot(database)
    with pytest.raises(DeliveryRefused, match=expected):
        ingest_delivery(delivery, database, tables)
    assert _snapshot(database) == before


def _copy(delivery: Path, tmp_path: Path, name: str = "D_BAD") -> Path:
    target = tmp_path / name
    shutil.copytree(delivery, target)
    return target


def _replace_file(directory: Path, name: str, content: bytes, manifest: bool = True) -> None:
    (directory / name).write_bytes(content)
    if manifest:
        _rewrite_manifest(directory)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_file", r"IR_IBA_R.csv: listed in the manifest but absent"),
        ("bad_digest", r"IR_IBA_R.csv: sha256 differs from the manifest"),
        ("bad_row_count", r"IR_IBA_R.csv: \d+ data rows, the manifest says"),
        ("unknown_table", r"unknown table 'XX_NOT_R'"),
        ("unknown_column", r"IR_IBA_R.csv: header does not match IR_IBA_R: 1 fields are not columns of IR_IBA_R"),
        ("missing_column", r"IR_IBA_R.csv: header does not match IR_IBA_R: missing columns"),
        ("undecodable_header", r"IR_IBA_R.csv: header is not valid utf-8"),
        ("empty_file", r"IR_IBA_R.csv: empty file"),
        ("truncated_gzip", r"IR_IBA_R.csv.gz: truncated compressed file"),
        ("stray_file", r"files not listed in the manifest: EXTRA.csv"),
        ("undecodable_cp1252", r"IR_IBA_R.csv: bytes undecodable as cp1252 on line \d+"),
    ],
)
def test_refusals_are_clear_and_change_nothing(
    case: str, expected: str, delivery: Path, loaded: Path, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    bad = _copy(delivery, tmp_path)
    original = (bad / "IR_IBA_R.csv").read_bytes()
    header, _, body = original.partition(b"\n")
    if case == "missing_file":
        (bad / "IR_IBA_R.csv").unlink()
    elif case == "bad_digest":
        _replace_file(bad, "IR_IBA_R.csv", original.replace(b";1;", b";2;", 1), manifest=False)
    elif case == "bad_row_count":
        manifest = (bad / "MANIFEST.csv").read_text().replace("IR_IBA_R.csv;IR_IBA_R;", "IR_IBA_R.csv;IR_IBA_R;9")
        (bad / "MANIFEST.csv").write_text(manifest)
    elif case == "unknown_table":
        (bad / "MANIFEST.csv").write_text((bad / "MANIFEST.csv").read_text().replace(";IR_IBA_R;", ";XX_NOT_R;"))
    elif case == "unknown_column":
        _replace_file(bad, "IR_IBA_R.csv", header + b";NOT_A_COLUMN\n" + body)
    elif case == "missing_column":
        _replace_file(bad, "IR_IBA_R.csv", header.rsplit(b";", 1)[0] + b"\n" + body)
    elif case == "undecodable_header":
        _replace_file(bad, "IR_IBA_R.csv", b"\xff" + original)
    elif case == "empty_file":
        _replace_file(bad, "IR_IBA_R.csv", b"")
    elif case == "truncated_gzip":
        (bad / "IR_IBA_R.csv").unlink()
        (bad / "MANIFEST.csv").write_text((bad / "MANIFEST.csv").read_text().replace("IR_IBA_R.csv", "IR_IBA_R.csv.gz"))
        truncated = gzip.compress(original)[:-40]
        _replace_file(bad, "IR_IBA_R.csv.gz", truncated, manifest=False)
        lines = (bad / "MANIFEST.csv").read_text().splitlines()
        digest = hashlib.sha256(truncated).hexdigest()
        lines = [line.rsplit(";", 1)[0] + ";" + digest if line.startswith("IR_IBA_R.") else line for line in lines]
        (bad / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    elif case == "stray_file":
        (bad / "EXTRA.csv").write_text("x\n")
    elif case == "undecodable_cp1252":
        lines = (bad / "MANIFEST.csv").read_text().splitlines()
        lines = [lines[0] + ";encoding"] + [
            f"{line};{'CP1252' if line.startswith('IR_IBA_R.') else ''}" for line in lines[1:]
        ]
        (bad / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
        _replace_file(bad, "IR_IBA_R.csv", original + b"X\x81Y" + b";" * (header.count(b";")) + b"\n")
    _refused(bad, loaded, tables, expected)


def test_same_delivery_id_with_other_content_is_refused(
    delivery: Path, loaded: Path, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    changed = _copy(delivery, tmp_path, delivery.name)
    original = (changed / "IR_IBA_R.csv").read_bytes()
    _replace_file(changed, "IR_IBA_R.csv", original + original.split(b"\n")[1] + b"\n")
    _refused(changed, loaded, tables, "already loaded with a different manifest")


def test_cli_ingest_json_and_refusal_exit_code(delivery: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    database = tmp_path / "cli.duckdb"
    result = runner.invoke(main, ["ingest", str(delivery), "--database", str(database), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["delivery"] == delivery.name and summary["status"] == "loaded"
    assert (
        summary["tables"]["IR_BEN_R"]["rows"]
        == summary["tables"]["IR_BEN_R"]["loaded"] + summary["tables"]["IR_BEN_R"]["quarantined"]
    )
    refused = runner.invoke(main, ["ingest", str(tmp_path / "nowhere"), "--database", str(database)])
    assert refused.exit_code == 1 and "no such delivery directory" in refused.output


def test_landing_table_out_of_line_with_the_catalog_refuses_the_delivery(
    delivery: Path, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    database = tmp_path / "old.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema landing")
        con.execute("create table landing.IR_BEN_R (BEN_NIR_PSA varchar, OLD_COLUMN varchar)")
        con.execute("insert into landing.IR_BEN_R values ('X', 'kept')")
    expected = r"landing.IR_BEN_R holds 1 rows but its (name or )?columns differ from the catalog"
    _refused(delivery, database, tables, expected)


def test_line_of_a_loaded_row_skips_the_header_and_rejected_lines() -> None:
    from snds.ingest.load import _line_of

    assert [_line_of(n, []) for n in (1, 2, 3)] == [2, 3, 4]
    # Lines 3 and 4 were rejected: the loaded rows are lines 2, 5, 6 ...
    assert [_line_of(n, [3, 4]) for n in (1, 2, 3)] == [2, 5, 6]
    assert _line_of(1, [2]) == 3
