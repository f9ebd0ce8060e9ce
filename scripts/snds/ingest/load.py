"""Load a verified delivery into `landing`: typed, with provenance, every row accounted for, atomically.

DuckDB parses and types the files (`read_csv` with `store_rejects`): rows it cannot type are kept
by its own reject handling, with line, column, error and raw text, and moved to `landing.quarantine`.
Strings longer than their column (which DuckDB does not enforce) are found after the load and moved too.
"""

from __future__ import annotations

import codecs
import gzip
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from snds import audit
from snds.ingest.errors import DeliveryRefused
from snds.ingest.manifest import Manifest
from snds.ingest.verify import VerifiedFile
from snds.landing import LandingError, create_bookkeeping, ensure_landing_tables
from snds.sql import sql_literal

DATE_FORMAT = "%d/%m/%Y"  # DCIR and every DATE column: DD/MM/YYYY
TIMESTAMP_FORMAT = "%d%b%Y:%H:%M:%S"  # PMSI datetimes in the SAS form 02JAN2019:00:00:00
TOO_LONG = "VALUE TOO LONG"


@dataclass(frozen=True)
class FileCounts:
    file: str
    table: str
    rows: int
    loaded: int
    quarantined: int


@dataclass
class IngestReport:
    delivery: str
    status: str  # loaded | unchanged
    files: list[FileCounts] = field(default_factory=list)

    def tables(self) -> dict[str, dict[str, int]]:
        totals: dict[str, dict[str, int]] = {}
        for f in self.files:
            counts = totals.setdefault(f.table, {"rows": 0, "loaded": 0, "quarantined": 0})
            counts["rows"] += f.rows
            counts["loaded"] += f.loaded
            counts["quarantined"] += f.quarantined
        return totals

    def as_json(self) -> dict:
        return {"delivery": self.delivery, "status": self.status, "tables": self.tables()}


def duckdb_type(data_type: str) -> str:
    """The catalog's portable type, as DuckDB's CSV reader wants it."""
    if data_type.startswith("varchar"):
        return "VARCHAR"
    if data_type.startswith("numeric"):
        return "DECIMAL" + data_type[len("numeric") :]
    return {"double precision": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP"}[data_type]


def _open(path: Path, mode: str, **options: str):  # noqa: ANN202 - a file object, plain or gzip
    return (gzip.open if path.name.endswith(".gz") else open)(path, mode, **options)


@contextmanager
def _utf8_source(verified: VerifiedFile, scratch: Path) -> Iterator[Path]:
    """The file as DuckDB should read it: CP1252 files are transcoded to UTF-8 first (DuckDB reads UTF-8)."""
    if verified.entry.encoding == "utf-8":
        yield verified.path
        return
    target = scratch / (verified.path.name.removesuffix(".gz") + ".utf8.csv")
    try:
        with _open(verified.path, "rb") as raw, target.open("wb") as out:
            reader = codecs.getreader(verified.entry.encoding)(raw, errors="strict")
            while chunk := reader.read(1 << 20):
                out.write(chunk.encode("utf-8"))
    except UnicodeDecodeError as error:
        raise DeliveryRefused(
            f"{verified.entry.file}: bytes undecodable as {verified.entry.encoding}: {error}"
        ) from error
    try:
        yield target
    finally:
        target.unlink(missing_ok=True)


def _read_csv(path: Path, verified: VerifiedFile, rejects: str) -> str:
    types = {c.name: c.data_type for c in verified.table.columns}
    columns = ", ".join(f"{sql_literal(name)}: {sql_literal(duckdb_type(types[name]))}" for name in verified.header)
    return (
        f"read_csv({sql_literal(str(path))}, delim=';', header=true, auto_detect=false, quote='\"', escape='\"', "
        f"columns={{{columns}}}, dateformat='{DATE_FORMAT}', timestampformat='{TIMESTAMP_FORMAT}', "
        f"store_rejects=true, rejects_table='{rejects}_errors', rejects_scan='{rejects}_scans')"
    )


def _line_of(ordinal: int, rejected_lines: list[int]) -> int:
    """File line of the n-th loaded row (1-based), given the sorted lines DuckDB rejected (header is line 1)."""
    line = ordinal + 1
    for rejected in rejected_lines:
        if rejected <= line:
            line += 1
        else:
            break
    return line


def _raw_lines(path: Path, encoding: str, wanted: set[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    with _open(path, "rt", encoding=encoding, errors="replace", newline="") as handle:
        for number, text in enumerate(handle, start=1):
            if number in wanted:
                found[number] = text.rstrip("\r\n")
                if len(found) == len(wanted):
                    break
    return found


class _FileLoader:
    def __init__(self, con: duckdb.DuckDBPyConnection, delivery: str, scratch: Path) -> None:
        self.con, self.delivery, self.scratch = con, delivery, scratch
        self.serial = 0

    def load(self, verified: VerifiedFile) -> FileCounts:
        self.serial += 1
        rejects = f"snds_rejects_{self.serial}"
        table, name = verified.table, verified.entry.file
        with _utf8_source(verified, self.scratch) as source:
            inserted = self.con.execute(
                f"insert into landing.{table.name} ({', '.join(verified.header)}, DELIVERY_ID, DELIVERY_FILE) "
                f"select *, ?, ? from {_read_csv(source, verified, rejects)}",
                [self.delivery, name],
            ).fetchone()
        loaded = int(inserted[0]) if inserted else 0
        rejected_lines = self._quarantine_rejects(verified, rejects)
        too_long = self._quarantine_too_long(verified, rejected_lines)
        return FileCounts(name, table.name, verified.entry.rows, loaded - too_long, len(rejected_lines) + too_long)

    def _quarantine_rejects(self, verified: VerifiedFile, rejects: str) -> list[int]:
        """Move DuckDB's rejects (one row per bad line, all its errors in the reason) to the quarantine."""
        self.con.execute(
            f"""insert into landing.quarantine
            select ?, ?, ?, line,
                   case when bool_or(error_type in ('MISSING COLUMNS', 'TOO MANY COLUMNS')) then null
                        else arg_min(column_name, column_idx) end,
                   arg_min(error_type, column_idx), null,
                   string_agg(error_message, ' | ' order by column_idx), min(csv_line)
            from {rejects}_errors group by line""",
            [self.delivery, verified.table.name, verified.entry.file],
        )
        lines = [
            row[0] for row in self.con.execute(f"select distinct line from {rejects}_errors order by line").fetchall()
        ]
        self.con.execute(f"drop table {rejects}_errors")
        self.con.execute(f"drop table {rejects}_scans")
        return lines

    def _quarantine_too_long(self, verified: VerifiedFile, rejected_lines: list[int]) -> int:
        limits = [(c.name, c.max_chars) for c in verified.table.columns if c.max_chars is not None]
        if not limits:
            return 0
        over = " or ".join(f"length({name}) > {limit}" for name, limit in limits)
        scope = "DELIVERY_ID = ? and DELIVERY_FILE = ?"
        target = f"landing.{verified.table.name}"
        count = self.con.execute(
            f"select count(*) from {target} where {scope} and ({over})", [self.delivery, verified.entry.file]
        ).fetchone()
        if not count or not count[0]:
            return 0
        first_over = "case " + " ".join(f"when length({n}) > {m} then '{n}'" for n, m in limits) + " end"
        rows = self.con.execute(
            f"""select ordinal, rid, column_name from (
                select row_number() over (order by rowid) as ordinal, rowid as rid, {first_over} as column_name,
                       ({over}) as too_long
                from {target} where {scope}) where too_long""",
            [self.delivery, verified.entry.file],
        ).fetchall()
        limit_of = dict(limits)
        lines = {rid: _line_of(ordinal, rejected_lines) for ordinal, rid, _ in rows}
        raw = _raw_lines(verified.path, verified.entry.encoding, set(lines.values()))
        self.con.executemany(
            "insert into landing.quarantine values (?, ?, ?, ?, ?, ?, null, ?, ?)",
            [
                (
                    self.delivery,
                    verified.table.name,
                    verified.entry.file,
                    lines[rid],
                    column,
                    TOO_LONG,
                    f'Value of column "{column}" is longer than its {limit_of[column]} characters',
                    raw.get(lines[rid]),
                )
                for _, rid, column in rows
            ],
        )
        self.con.execute(f"delete from {target} where rowid in ({', '.join(str(rid) for _, rid, _ in rows)})")
        return len(rows)


def _previous(con: duckdb.DuckDBPyConnection, manifest: Manifest) -> IngestReport | None:
    row = con.execute(
        "select MANIFEST_SHA256 from landing.deliveries where DELIVERY_ID = ?", [manifest.delivery_id]
    ).fetchone()
    if row is None:
        return None
    if row[0] != manifest.sha256:
        raise DeliveryRefused(
            f"delivery {manifest.delivery_id} was already loaded with a different manifest; "
            "a corrected delivery needs a new identifier"
        )
    files = con.execute(
        "select FILE_NAME, TABLE_NAME, ROW_COUNT, LOADED_COUNT, QUARANTINED_COUNT from landing.delivery_files "
        "where DELIVERY_ID = ? order by FILE_NAME",
        [manifest.delivery_id],
    ).fetchall()
    return IngestReport(manifest.delivery_id, "unchanged", [FileCounts(*f) for f in files])


def load_delivery(
    con: duckdb.DuckDBPyConnection,
    manifest: Manifest,
    verify: Callable[[], list[VerifiedFile]],
    progress: Callable[[int], None] = lambda _: None,
) -> IngestReport:
    """Load the delivery in one transaction: all of it, balanced, or nothing."""
    create_bookkeeping(con)
    previous = _previous(con, manifest)
    if previous is not None:
        audit.record(con, "ingest", manifest.delivery_id, "unchanged", {"manifest_sha256": manifest.sha256})
        return previous
    verified = verify()
    report = IngestReport(manifest.delivery_id, "loaded")
    scratch = Path(tempfile.mkdtemp(prefix="snds-ingest-"))
    con.execute("begin transaction")
    try:
        try:
            ensure_landing_tables(con, list({v.table.name: v.table for v in verified}.values()))
        except LandingError as error:
            raise DeliveryRefused(f"{error}; run `snds landing init` after migrating it") from error
        loader = _FileLoader(con, manifest.delivery_id, scratch)
        for file in verified:
            counts = loader.load(file)
            if counts.loaded + counts.quarantined != counts.rows:
                raise DeliveryRefused(
                    f"{counts.file}: {counts.rows} rows in the file but {counts.loaded} loaded and "
                    f"{counts.quarantined} quarantined; the delivery is not loaded"
                )
            report.files.append(counts)
            con.execute(
                "insert into landing.delivery_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    manifest.delivery_id,
                    counts.file,
                    counts.table,
                    file.entry.encoding,
                    file.entry.sha256,
                    file.size,
                    counts.rows,
                    counts.loaded,
                    counts.quarantined,
                ],
            )
            progress(file.size)
        totals = [sum(getattr(f, k) for f in report.files) for k in ("rows", "loaded", "quarantined")]
        con.execute(
            "insert into landing.deliveries values (?, ?, 'loaded', ?, ?, ?, ?, ?)",
            [manifest.delivery_id, manifest.sha256, datetime.now(), len(report.files), *totals],
        )
        audit.record(con, "ingest", manifest.delivery_id, "loaded", report.as_json())
        con.execute("commit")
    except BaseException as error:
        con.execute("rollback")
        audit.record(con, "ingest", manifest.delivery_id, "refused", {"error": str(error)})
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report
