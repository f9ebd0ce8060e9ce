"""`snds ingest` against hostile and broken deliveries: names, paths, links, floods, bombs, exact values, refusals.

Each test is one defect a tester found (issue 10): it failed before the fix. Deliveries are written by hand, small,
with a correct MANIFEST.csv, into real DuckDB files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from snds.catalog.committed import CatalogTable, load_tables
from snds.cli import main
from snds.formats import DATE_FORMAT, TIMESTAMP_FORMAT
from snds.ingest import DeliveryRefused, ingest_delivery
from snds.ingest.verify import write_manifest

PSEUDONYM = "8DE58D9E37CE3A119"  # a delivered value that no message may show


@pytest.fixture(scope="module")
def tables() -> dict[str, CatalogTable]:
    return load_tables()


def _line(table: CatalogTable, values: dict[str, str]) -> str:
    return ";".join(values.get(c.name, "") for c in table.columns)


def _header(table: CatalogTable) -> str:
    return ";".join(c.name for c in table.columns)


def _write_delivery(directory: Path, files: dict[str, tuple[str, bytes]], rows: dict[str, str] | None = None) -> Path:
    """A delivery with the given files {name: (table, bytes)} and a manifest of their true digests and row counts."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["file;table;rows;sha256"]
    for name, (table, content) in files.items():
        (directory / name).write_bytes(content)
        data = gzip.decompress(content) if name.endswith(".gz") else content
        count = (rows or {}).get(name) or str(max(0, data.count(b"\n") - 1))
        lines.append(f"{name};{table};{count};{hashlib.sha256(content).hexdigest()}")
    (directory / "MANIFEST.csv").write_text("\n".join(lines) + "\n")
    return directory


def _csv(table: CatalogTable, rows: list[dict[str, str]]) -> bytes:
    return ("\n".join([_header(table), *(_line(table, r) for r in rows)]) + "\n").encode()


def _query(database: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(database)) as con:
        return con.execute(sql, parameters or []).fetchall()


def _refusal(directory: Path, database: Path, tables: dict[str, CatalogTable]) -> DeliveryRefused:
    with pytest.raises(DeliveryRefused) as caught:
        ingest_delivery(directory, database, tables)
    return caught.value


def _landing_tables(database: Path) -> list[str]:
    return [r[0] for r in _query(database, "select table_name from duckdb_tables() where schema_name = 'landing'")]


@pytest.mark.parametrize("name", ["D1\n-- snds:conformity:query X\ncreate table pwned(x int)", "D'1", "G[X]", "a b"])
def test_a_delivery_identifier_outside_the_pattern_is_refused_before_any_sql(
    name: str, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    directory = _write_delivery(tmp_path / name, {"IR_BEN_R.csv": ("IR_BEN_R", _csv(tables["IR_BEN_R"], []))})
    database = tmp_path / "warehouse.duckdb"
    refusal = _refusal(directory, database, tables)
    assert "delivery identifier" in str(refusal) and "\n" not in str(refusal)
    assert "IR_BEN_R" not in _landing_tables(database)
    assert not _query(database, "select * from duckdb_tables() where table_name = 'pwned'")
    event = _query(database, "select OUTCOME, DETAIL from audit.events where ACTION = 'ingest'")
    assert event and event[-1][0] == "refused"


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_and_dot_dot_are_not_identifiers(
    name: str, tmp_path: Path, tables: dict[str, CatalogTable], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    refusal = _refusal(Path(name), tmp_path / "warehouse.duckdb", tables)
    assert "delivery identifier" in str(refusal)


def test_pattern_characters_in_the_path_never_load_another_file(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    """A parent folder `in[p]ut` is a glob matching `input`: the loaded bytes must be this delivery's own."""
    table = tables["IR_BEN_R"]
    mine = _csv(table, [{"BEN_NIR_PSA": "A" * 17, "BEN_RNG_GEM": "1"}])
    theirs = _csv(table, [{"BEN_NIR_PSA": "B" * 17, "BEN_RNG_GEM": "1"}] * 2)
    _write_delivery(tmp_path / "input" / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", theirs)})
    directory = _write_delivery(tmp_path / "in[p]ut" / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", mine)})
    database = tmp_path / "warehouse.duckdb"
    ingest_delivery(directory, database, tables)
    assert _query(database, "select BEN_NIR_PSA from landing.IR_BEN_R") == [("A" * 17,)]


@pytest.mark.parametrize("name", ["IR_BEN_R[1].csv", "IR_BEN_R*.csv", "IR_BEN_R?.csv", "../IR_BEN_R.csv"])
def test_pattern_characters_in_a_file_name_are_refused(
    name: str, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    directory = tmp_path / "D1"
    directory.mkdir()
    (directory / "IR_BEN_R.csv").write_bytes(_csv(tables["IR_BEN_R"], []))
    digest = hashlib.sha256(_csv(tables["IR_BEN_R"], [])).hexdigest()
    (directory / "MANIFEST.csv").write_text(f"file;table;rows;sha256\n{name};IR_BEN_R;0;{digest}\n")
    assert "invalid file name" in str(_refusal(directory, tmp_path / "w.duckdb", tables))


def test_a_symlink_is_refused_never_followed(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    secret = tmp_path / "platform.secret"
    secret.write_bytes(os.urandom(32))
    directory = _write_delivery(tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", _csv(tables["IR_BEN_R"], []))})
    (directory / "IR_BEN_R.csv").unlink()
    (directory / "IR_BEN_R.csv").symlink_to(secret)
    (directory / "KI_CCI_R.csv").symlink_to(secret)
    refusal = _refusal(directory, tmp_path / "w.duckdb", tables)
    assert "IR_BEN_R.csv: a symbolic link" in str(refusal)
    assert "not listed in the manifest: KI_CCI_R.csv" in str(refusal)
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in str(refusal)


def test_a_header_less_or_cr_only_file_never_shows_its_values(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    table = tables["IR_BEN_R"]
    row = _line(table, {"BEN_NIR_PSA": PSEUDONYM, "BEN_RNG_GEM": "1"})
    cr_only = f"{_header(table)}\r{row}\r{row}\r".encode()
    directory = _write_delivery(
        tmp_path / "D1",
        {"IR_BEN_R.csv": ("IR_BEN_R", f"{row}\n{row}\n".encode()), "IR_BEN_R_2.csv": ("IR_BEN_R", cr_only)},
    )
    refusal = _refusal(directory, tmp_path / "w.duckdb", tables)
    message = str(refusal)
    assert "IR_BEN_R.csv: header does not match IR_BEN_R" in message
    assert "IR_BEN_R_2.csv: line 1 holds a lone CR" in message
    assert PSEUDONYM not in message and "8DE58" not in message
    audited = _query(tmp_path / "w.duckdb", "select DETAIL from audit.events")
    assert PSEUDONYM not in json.dumps(audited)


def test_every_problem_is_reported_in_one_run_audited_and_printed_as_json(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    ben = _csv(tables["IR_BEN_R"], [{"BEN_NIR_PSA": "A" * 17}])
    directory = _write_delivery(
        tmp_path / "D1",
        {
            "IR_BEN_R.csv": ("IR_BEN_R", ben),
            "IR_IBA_R.csv": ("IR_IBA_R", _csv(tables["IR_IBA_R"], [])),
            "XX.csv": ("XX_NOT_R", b"A\n"),
            "KI_CCI_R.csv": ("KI_CCI_R", _csv(tables["KI_CCI_R"], [])),
        },
        rows={"IR_BEN_R.csv": "5²"},
    )
    (directory / "IR_IBA_R.csv").write_bytes(b"changed\n")
    (directory / "KI_CCI_R.csv").unlink()
    (directory / "STRAY.csv").write_text("x\n")
    database = tmp_path / "w.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(directory), "--database", str(database), "--json"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    printed = json.loads(result.stdout)
    assert printed["status"] == "refused" and len(printed["problems"]) == 5
    expected = ["rows must be a non-negative integer", "STRAY.csv", "IR_IBA_R.csv: sha256", "unknown table", "absent"]
    for fragment in expected:
        assert any(fragment in p for p in printed["problems"]), fragment
    outcome, detail = _query(database, "select OUTCOME, DETAIL from audit.events where OBJECT = 'D1'")[-1]
    assert outcome == "refused" and json.loads(detail)["problems"] == printed["problems"]


def test_a_quarantine_flood_is_refused_quickly_with_its_counts_in_bounded_memory(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    """Every column of every line fails: the file is refused with its counts, in little time and memory."""
    table = tables["ER_PRS_F"]
    bad_line = ";".join("xxxx" for _ in table.columns).encode() + b"\n"  # too long, not a number, not a date
    lines = 300_000
    directory = tmp_path / "FLOOD"
    directory.mkdir()
    with (directory / "ER_PRS_F.csv").open("wb") as handle:
        handle.write(_header(table).encode() + b"\n")
        for _ in range(lines // 1000):
            handle.write(bad_line * 1000)
    write_manifest(directory, [("ER_PRS_F.csv", "ER_PRS_F")])
    size = (directory / "ER_PRS_F.csv").stat().st_size
    started = time.monotonic()
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURED_INGEST, str(directory), str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.monotonic() - started
    outcome = json.loads(measured.stdout)
    print(f"flood of {size >> 20} MiB: refused in {seconds:.1f} s, peak RSS {outcome['peak_rss_mib']:.0f} MiB")
    assert f"{lines} of {lines} lines cannot be loaded" in outcome["refused"]
    assert outcome["peak_rss_mib"] < 1024 and seconds < 60


_MEASURED_INGEST = """
import json, re, sys
from pathlib import Path
from snds.catalog.committed import load_tables
from snds.ingest import DeliveryRefused, ingest_delivery
try:
    ingest_delivery(Path(sys.argv[1]), Path(sys.argv[2]), load_tables())
    refused = ""
except DeliveryRefused as refusal:
    refused = str(refusal)
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)) / 1024
print(json.dumps({"refused": refused, "peak_rss_mib": peak}))
"""


def test_a_gzip_bomb_is_refused_while_it_is_read(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    """4 MiB of gzip members expanding to 4 GiB: refused after reading at most 100 times its size."""
    member = gzip.compress((b"x" * 99 + b"\n") * ((64 << 20) // 100), compresslevel=9)
    bomb = gzip.compress(_header(tables["IR_BEN_R"]).encode() + b"\n") + member * 64
    directory = _write_delivery(
        tmp_path / "BOMB", {"IR_BEN_R.csv.gz": ("IR_BEN_R", b"")}, rows={"IR_BEN_R.csv.gz": "1"}
    )
    (directory / "IR_BEN_R.csv.gz").write_bytes(bomb)
    manifest = (directory / "MANIFEST.csv").read_text().replace(hashlib.sha256(b"").hexdigest(), "0" * 64)
    (directory / "MANIFEST.csv").write_text(manifest)
    started = time.monotonic()
    refusal = _refusal(directory, tmp_path / "w.duckdb", tables)
    assert "expands to more than" in str(refusal) and time.monotonic() - started < 30


def test_a_line_too_long_is_refused_with_its_number(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    table = tables["IR_BEN_R"]
    long_line = _line(table, {"BEN_NIR_PSA": "A" * (3 << 20)})
    content = f"{_header(table)}\n{_line(table, {})}\n{long_line}\n{_line(table, {})}\n".encode()
    directory = _write_delivery(tmp_path / "LONG", {"IR_BEN_R.csv": ("IR_BEN_R", content)})
    assert "IR_BEN_R.csv: line 3 is longer than 1048576 bytes" in str(
        _refusal(directory, tmp_path / "w.duckdb", tables)
    )


# Values that must land exactly, and values that must be quarantined with their reason, per catalog type.
_CASES: dict[tuple[str, str], tuple[list[str], dict[str, str]]] = {
    ("T_SSR23STC", "FAC_MNT_TM"): (  # numeric(10,2)
        ["1.23", "-0.5", "12345678.99", "0", "007.10", ".25", "+3"],
        {
            "1.235": "too_many_decimals",
            "0.005": "too_many_decimals",
            "123456789": "too_many_digits",
            "1e3": "not_a_number",
        },
    ),
    ("ER_PRS_F", "BEN_AMA_COD"): (  # numeric(4)
        ["1234", "-3", "0042", "+7", "-0"],
        {
            "12345": "too_many_digits",
            "1.5": "too_many_decimals",
            "x": "not_a_number",
            " 12": "not_a_number",  # DuckDB's cast alone would take these four
            "1_000": "not_a_number",
            "1e2": "not_a_number",
            "12.": "not_a_number",
        },
    ),
    ("T_SSR23STC", "FAC_NBR_VEN"): (["99999"], {"100000": "too_many_digits"}),  # numeric(5)
    ("ER_PRS_F", "EXE_SOI_DTD"): (  # date DD/MM/YYYY
        ["01/01/2019", "29/02/2020", "01/01/1600"],
        {
            "1/1/19": "not_a_date",
            "01/01/19": "not_a_date",
            "31/02/2019": "impossible_date",
            "2019-01-01": "not_a_date",
            "01/01/0000": "impossible_date",
            " 1/02/2020": "not_a_date",  # DuckDB's strptime alone would take these three
            "01/02/202 ": "not_a_date",
            "1/02/2020\t": "not_a_date",
        },
    ),
    ("T_MCO09C", "EXE_SOI_DTD"): (  # timestamp DDMONYYYY:HH24:MI:SS
        ["02JAN2019:00:00:00", "31dec2019:23:59:59"],
        {"2JAN2019:00:00:00": "not_a_timestamp", "31FEB2019:00:00:00": "impossible_timestamp"},
    ),
}


def _parsed(data_type: str, text: str) -> object:
    if data_type == "date":
        return datetime.strptime(text, DATE_FORMAT).date()
    if data_type == "timestamp":
        return datetime.strptime(text, TIMESTAMP_FORMAT)
    if data_type == "double precision":
        return float(text)
    if data_type.startswith("numeric"):
        return Decimal(text)
    return text


def test_every_value_that_lands_equals_its_text_and_the_rest_is_quarantined(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    """Never rounded, never a guessed century: per type, each landed value equals its raw text once parsed."""
    double = next(c for c in tables["T_SSR23STC"].columns if c.data_type == "double precision").name
    varchar = next(c for c in tables["ER_PRS_F"].columns if c.data_type == "varchar(2)").name
    cases = {
        **_CASES,
        ("T_SSR23STC", double): (
            ["1.5", "-2.5e-3", "1e10", "0e5"],
            {"nan": "not_a_number", "1e400": "not_a_number", "1e-400": "not_a_number"},
        ),
        ("ER_PRS_F", varchar): (["AB", "é€"], {"ABC": "too_long"}),
    }
    files = {}
    for n, ((table, column), (good, bad)) in enumerate(cases.items()):
        rows = [{column: value} for value in [*good, *bad]]
        files[f"{table}_{n}.csv"] = (table, _csv(tables[table], rows))
    database = tmp_path / "w.duckdb"
    ingest_delivery(_write_delivery(tmp_path / "VALUES", files), database, tables)
    for n, ((table, column), (good, bad)) in enumerate(cases.items()):
        data_type = next(c.data_type for c in tables[table].columns if c.name == column)
        landed = _query(
            database, f'select "{column}" from landing.{table} where DELIVERY_FILE = ?', [f"{table}_{n}.csv"]
        )
        assert sorted(v for (v,) in landed) == sorted(_parsed(data_type, text) for text in good), (table, column)
        quarantined = _query(
            database,
            "select LINE_NUMBER, COLUMN_NAME, REASON_CODE, EXPECTED from landing.quarantine "
            "where FILE_NAME = ? order by 1",
            [f"{table}_{n}.csv"],
        )
        expected = [(len(good) + 2 + i, column, code) for i, code in enumerate(bad.values())]
        assert [q[:3] for q in quarantined] == expected, (table, column)
        assert all(q[3] for q in quarantined)
    assert isinstance(_parsed("date", "01/01/2019"), date)


def test_tool_failures_are_messages_with_their_exit_code(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    directory = _write_delivery(tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", _csv(tables["IR_BEN_R"], []))})
    runner = CliRunner()
    for name in ("keys.duckdb", "landing.duckdb", "audit.duckdb"):
        result = runner.invoke(main, ["ingest", str(directory), "--database", str(tmp_path / name)])
        assert result.exit_code == 3 and "may not be named after a schema" in result.output, result.output
        assert not (tmp_path / name).exists()
    missing = runner.invoke(main, ["quarantine", "D1", "--database", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 3 and "no database" in missing.output and not (tmp_path / "none.duckdb").exists()


def test_a_second_run_waits_for_the_lock_then_loads(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    directory = _write_delivery(
        tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", _csv(tables["IR_BEN_R"], [{"BEN_NIR_PSA": "A" * 17}]))}
    )
    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(database)!r}); print(1, flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline()
    result = CliRunner().invoke(main, ["ingest", str(directory), "--database", str(database)])
    holder.wait()
    assert result.exit_code == 0, result.output


def test_quarantine_summary_names_columns_reasons_and_lines_never_values(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    table = tables["ER_PRS_F"]
    rows = [{"BEN_NIR_PSA": PSEUDONYM, "EXE_SOI_DTD": "1/1/19", "BEN_AMA_COD": "x"}, {"BEN_NIR_PSA": PSEUDONYM}]
    directory = _write_delivery(tmp_path / "D1", {"ER_PRS_F.csv": ("ER_PRS_F", _csv(table, rows))})
    database = tmp_path / "w.duckdb"
    ingest_delivery(directory, database, tables)
    result = CliRunner().invoke(main, ["quarantine", "D1", "--database", str(database), "--json"])
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)["groups"]
    assert [(g["column"], g["reason_code"], g["expected"], g["lines"], g["first_lines"]) for g in groups] == [
        ("BEN_AMA_COD", "not_a_number", "numeric(4)", 1, [2]),
        ("EXE_SOI_DTD", "not_a_date", "date DD/MM/YYYY", 1, [2]),
    ]
    assert PSEUDONYM not in result.output
    assert _query(database, "select distinct RAW_TEXT like ? from landing.quarantine", [f"%{PSEUDONYM}%"]) == [(True,)]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{h}\n{a}\r{b}\n", "line 2 holds a lone CR"),  # DuckDB would split the line in two
        ("{h}\n{a}\n\n{b}\n", "line 3 is empty"),  # DuckDB would skip it
        ("{h}\r\n{a}\r\n\r\n{b}\r\n", "line 3 is empty"),
        ("{h}\n{a}\r", "line 2 holds a lone CR"),
    ],
)
def test_lone_cr_and_empty_lines_are_refused_with_their_line(
    content: str, expected: str, tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    """Two such anomalies would otherwise cancel out in the row balance, and a lone CR crashed DuckDB's parser."""
    table = tables["IR_BEN_R"]
    a, b = (_line(table, {"BEN_NIR_PSA": PSEUDONYM, "BEN_RNG_GEM": str(n)}) for n in (1, 2))
    data = content.format(h=_header(table), a=a, b=b).encode()
    directory = _write_delivery(tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", data)})  # rows: line ends, as counted
    message = str(_refusal(directory, tmp_path / "w.duckdb", tables))
    assert f"IR_BEN_R.csv: {expected}" in message and PSEUDONYM not in message


def test_a_fifo_a_hard_link_and_a_junk_manifest_are_refused_quickly(
    tmp_path: Path, tables: dict[str, CatalogTable]
) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_bytes(_csv(tables["IR_BEN_R"], []))
    directory = _write_delivery(tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", b""), "IR_IBA_R.csv": ("IR_IBA_R", b"")})
    (directory / "IR_BEN_R.csv").unlink()
    os.mkfifo(directory / "IR_BEN_R.csv")
    (directory / "IR_IBA_R.csv").unlink()
    os.link(outside, directory / "IR_IBA_R.csv")
    started = time.monotonic()
    message = str(_refusal(directory, tmp_path / "w.duckdb", tables))
    assert "IR_BEN_R.csv: not a regular file" in message and "IR_IBA_R.csv: has 2 hard links" in message
    assert hashlib.sha256(outside.read_bytes()).hexdigest() not in message and time.monotonic() - started < 10
    junk = tmp_path / "JUNK"
    junk.mkdir()
    (junk / "MANIFEST.csv").write_text("file;table;rows;sha256\n" + ";\n" * 200_000)
    started = time.monotonic()
    refusal = _refusal(junk, tmp_path / "w.duckdb", tables)
    assert len(refusal.problems) == 100 and refusal.more > 100_000 and time.monotonic() - started < 30


def test_a_file_written_to_after_its_verification_is_refused(tmp_path: Path, tables: dict[str, CatalogTable]) -> None:
    """Same inode, same size, modification time set back: the change time still tells."""
    table = tables["IR_BEN_R"]
    good = _csv(table, [{"BEN_NIR_PSA": "A" * 17}])
    forged = _csv(table, [{"BEN_NIR_PSA": "F" * 17}])
    directory = _write_delivery(tmp_path / "D1", {"IR_BEN_R.csv": ("IR_BEN_R", good)})
    path = directory / "IR_BEN_R.csv"
    before = path.stat()

    def swap(_: int) -> None:  # progress is called once the file is verified
        with path.open("r+b") as handle:
            handle.write(forged)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))

    with pytest.raises(DeliveryRefused, match=r"IR_BEN_R\.csv: changed since it was verified"):
        ingest_delivery(directory, tmp_path / "w.duckdb", tables, progress=swap)
