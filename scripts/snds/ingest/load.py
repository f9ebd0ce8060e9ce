"""Load a verified delivery into `landing`: typed exactly, with provenance, every row accounted for, atomically.

DuckDB reads each file as text (the open, verified file: `/dev/fd/N`) and the values are typed in SQL by the rules
of `snds.ingest.values`: one pass loads the rows whose every value is exact. DuckDB is the reader whatever the
warehouse: on PostgreSQL, an in-memory DuckDB types the rows and writes them to a scratch CSV file that the server
reads by COPY, within the warehouse's transaction, so that both engines get the same rows, the same quarantine
and the same guarantees. Only a file with failing lines is
read again, to find each failing column of each line and its reason; its lines go to `landing.quarantine`.
Lines DuckDB cannot split into the header's fields (field count, encoding, quoting) are kept by its reject
handling, capped per file. A file with more failing lines than the limits allow is refused with its counts.
"""

from __future__ import annotations

import codecs
import gzip
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

import duckdb

from snds.catalog.committed import CatalogTable
from snds.engine import ENGINE_ERRORS, Connection, identifier
from snds.ingest.errors import DeliveryRefused, Problems
from snds.ingest.limits import IngestLimits
from snds.ingest.manifest import MANIFEST_NAME, Manifest
from snds.ingest.periods import record_periods
from snds.ingest.values import ValueRule, rows_accepted, rows_not_accepted, value_rule
from snds.ingest.verify import CHUNK, VerifiedFile, fd_path, first_empty_line, opened, unchanged
from snds.landing import LandingError, create_bookkeeping, ensure_landing_tables
from snds.sql import quoted_name, sql_literal

QUARANTINE_BATCH = 100  # quarantine rows inserted at a time: each may hold a raw line of up to max_line_bytes
# DuckDB's reasons for a line it cannot split into fields, in the platform's words: (code, reason).
_LINE_PROBLEMS = {
    "MISSING COLUMNS": ("field_count", "fewer fields than the header"),
    "TOO MANY COLUMNS": ("field_count", "more fields than the header"),
    "INVALID ENCODING": ("encoding", "bytes that are not valid UTF-8"),
    "INVALID UNICODE": ("encoding", "bytes that are not valid UTF-8"),
    "UNQUOTED VALUE": ("quoting", "a quote inside an unquoted field"),
}


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


@contextmanager
def _readable(verified: VerifiedFile, fd: int, scratch: Path) -> Iterator[tuple[str, str]]:
    """(path, compression) at which DuckDB reads the verified file: the open file itself, or its UTF-8 transcoding
    (DuckDB reads UTF-8; CP1252 files are transcoded first, into a scratch file of the platform's naming)."""
    if verified.entry.encoding == "utf-8":
        yield fd_path(fd), "gzip" if verified.compressed else "none"
        return
    target = scratch / "transcoded.csv"
    decoder = codecs.getincrementaldecoder(verified.entry.encoding)(errors="strict")
    lines = 0
    with _raw_stream(verified, fd) as raw, target.open("wb") as out:
        while chunk := raw.read(CHUNK):
            try:
                out.write(decoder.decode(chunk).encode("utf-8"))
            except UnicodeDecodeError as error:
                line = lines + chunk[: error.start].count(b"\n") + 1
                raise DeliveryRefused(
                    f"{verified.entry.file}: bytes undecodable as {verified.entry.encoding} on line {line}"
                ) from None
            lines += chunk.count(b"\n")
    try:
        yield str(target), "none"
    finally:
        target.unlink(missing_ok=True)


@contextmanager
def _raw_stream(verified: VerifiedFile, fd: int) -> Iterator[BinaryIO]:
    """The verified file's bytes, decompressed, read through a new description of the same open file."""
    with open(fd_path(fd), "rb") as raw:
        yield gzip.GzipFile(fileobj=raw) if verified.compressed else raw  # type: ignore[misc]


def _read_csv(path: str, compression: str, verified: VerifiedFile, line_bytes: int, options: str) -> str:
    columns = ", ".join(f"{sql_literal(name)}: 'VARCHAR'" for name in verified.header)
    return (
        f"read_csv({sql_literal(path)}, delim=';', header=true, auto_detect=false, quote='\"', escape='\"', "
        f"compression='{compression}', columns={{{columns}}}, max_line_size={2 * line_bytes + 1}{options})"
    )


def _line_of(ordinal: int, rejected_lines: list[int]) -> int:
    """File line of the n-th row read (1-based), given the sorted lines DuckDB rejected (header is line 1)."""
    line = ordinal + 1
    for rejected in rejected_lines:
        if rejected <= line:
            line += 1
        else:
            break
    return line


def _raw_lines(verified: VerifiedFile, fd: int, wanted: set[int]) -> Iterator[tuple[int, str]]:
    """The delivered text of some lines, in file order (kept in the quarantine, inside the database only)."""
    if not wanted:
        return
    last = max(wanted)
    with _raw_stream(verified, fd) as raw:
        for number, line in enumerate(raw, start=1):
            if number in wanted:
                yield number, line.rstrip(b"\r\n").decode(verified.entry.encoding, errors="replace")
            if number >= last:
                return


@dataclass(frozen=True)
class _Problem:
    """One reason why one line cannot land."""

    line: int
    column: str | None
    code: str
    expected: str
    reason: str


class _FileLoader:
    """Loads files into the `warehouse`, reading them with DuckDB (`reader`: the warehouse itself on DuckDB)."""

    def __init__(
        self,
        reader: duckdb.DuckDBPyConnection,
        warehouse: Connection,
        delivery: str,
        scratch: Path,
        limits: IngestLimits,
    ) -> None:
        self.reader, self.warehouse, self.delivery, self.scratch, self.limits = (
            reader, warehouse, delivery, scratch, limits
        )  # fmt: skip
        self.serial = 0

    def load(self, verified: VerifiedFile) -> FileCounts:
        self.serial += 1
        rejects = f"snds_rejects_{self.serial}"
        types = {c.name: c.sql_type for c in verified.table.columns}
        rules = [value_rule(types[name], quoted_name(name)) for name in verified.header]
        entry = verified.entry
        with opened(verified.path, verified.identity) as fd, _readable(verified, fd, self.scratch) as (path, comp):
            loaded = self._insert_valid_rows(path, comp, verified, rules, rejects)
            line_problems = self._line_problems(rejects, len(verified.header), entry.encoding)
            failing = entry.rows - loaded
            too_many = self.limits.over_quarantine_cap(failing, entry.rows)
            if too_many:
                raise DeliveryRefused(
                    f"{entry.file}: {failing} of {entry.rows} lines cannot be loaded ({too_many}); "
                    "see `snds ingest --help` to raise the limits"
                )
            rejected_lines = sorted({p.line for p in line_problems})
            problems = line_problems
            if failing > len(rejected_lines):
                problems = problems + self._value_problems(path, comp, verified, rules, rejected_lines)
            self._quarantine(verified, fd, problems)
            unchanged(fd, verified.identity, entry.file)
        return FileCounts(entry.file, verified.table.name, entry.rows, loaded, len({p.line for p in problems}))

    def _insert_valid_rows(
        self, path: str, compression: str, verified: VerifiedFile, rules: list[ValueRule], rejects: str
    ) -> int:
        """One pass: the rows whose every value is exact land typed, with their provenance; returns their count."""
        store = (
            f", store_rejects=true, rejects_table='{rejects}_errors', rejects_scan='{rejects}_scans', "
            f"rejects_limit={self.limits.max_quarantined_lines + 1}"
        )
        columns = [identifier(self.warehouse, n) for n in (*verified.header, "DELIVERY_ID", "DELIVERY_FILE")]
        table = f"landing.{identifier(self.warehouse, verified.table.name)}"
        reader = self._reader(path, compression, verified, store)
        values, accepts = ", ".join(r.parsed for r in rules), rows_accepted(rules)

        def typed_rows(delivery: str, file: str) -> str:
            return f"select {values}, {delivery}, {file} from {reader} where {accepts}"

        provenance = [self.delivery, verified.entry.file]
        if self.reader is self.warehouse:
            accepted = typed_rows("?", "?")
            inserted = self.reader.execute(f"insert into {table} ({', '.join(columns)}) {accepted}", provenance)
            row = inserted.fetchone()
            return int(row[0]) if row else 0
        # The typed rows through a scratch file (delivered values, deleted with the scratch folder); the delivery
        # and file names are checked names, written as literals (DuckDB's COPY takes no parameter).
        typed = self.scratch / "accepted.csv"
        accepted = typed_rows(*(sql_literal(value) for value in provenance))
        self.reader.execute(f"copy ({accepted}) to {sql_literal(str(typed))} (format csv, header false)")
        try:
            with typed.open("rb") as data:
                return self.warehouse.copy_csv(table, columns, data)  # type: ignore[attr-defined]
        finally:
            typed.unlink(missing_ok=True)

    def _quarantine(self, verified: VerifiedFile, fd: int, problems: list[_Problem]) -> None:
        """Insert the problems with their raw lines, a batch of lines at a time (raw lines may be long)."""
        by_line: dict[int, list[_Problem]] = {}
        for problem in problems:
            by_line.setdefault(problem.line, []).append(problem)
        where = (self.delivery, verified.table.name, verified.entry.file)
        batch: list[tuple] = []
        for number, raw in _raw_lines(verified, fd, set(by_line)):
            batch += [(*where, p.line, p.column, p.code, p.expected, p.reason, raw) for p in by_line.pop(number)]
            if len(batch) >= QUARANTINE_BATCH:
                self._insert_quarantine(batch)
                batch = []
        batch += [(*where, p.line, p.column, p.code, p.expected, p.reason, None) for ps in by_line.values() for p in ps]
        self._insert_quarantine(batch)

    def _insert_quarantine(self, rows: list[tuple]) -> None:
        if rows:
            self.warehouse.executemany("insert into landing.quarantine values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def _reader(self, path: str, compression: str, verified: VerifiedFile, options: str) -> str:
        return _read_csv(path, compression, verified, self.limits.max_line_bytes, options)

    def _line_problems(self, rejects: str, fields: int, encoding: str) -> list[_Problem]:
        """The lines DuckDB could not split into fields (one problem per line), then its reject tables dropped."""
        rows = self.reader.execute(
            f"select line, arg_min(error_type, column_idx), arg_min(column_name, column_idx) "
            f"from {rejects}_errors group by line order by line"
        ).fetchall()
        self.reader.execute(f"drop table {rejects}_errors")
        self.reader.execute(f"drop table {rejects}_scans")
        problems = []
        for line, error_type, column in rows:
            code, reason = _LINE_PROBLEMS.get(str(error_type), ("malformed_line", "cannot be read as CSV"))
            if code == "field_count":
                problems.append(_Problem(int(line), None, code, f"{fields} fields", reason))
            elif code == "encoding":
                reason = reason.replace("UTF-8", encoding.upper())
                problems.append(_Problem(int(line), column, code, encoding.upper(), reason))
            else:
                problems.append(_Problem(int(line), column, code, 'CSV: ; separated, " quoted', reason))
        return problems

    def _value_problems(
        self, path: str, compression: str, verified: VerifiedFile, rules: list[ValueRule], rejected_lines: list[int]
    ) -> list[_Problem]:
        """Every failing column of every line whose values cannot land, read again (only files that have some)."""
        failures = ", ".join(f"{r.failure} as f{i}" for i, r in enumerate(rules))
        self.reader.execute("set preserve_insertion_order = true")  # rows numbered in file order
        rows = self.reader.execute(
            f"select ordinal, {failures} from ("
            f"select row_number() over () as ordinal, * "
            f"from {self._reader(path, compression, verified, ', ignore_errors=true')}) "
            f"where {rows_not_accepted(rules)} "
            f"order by ordinal limit {self.limits.max_quarantined_lines + 1}"
        ).fetchall()
        self.reader.execute("set preserve_insertion_order = false")  # on failure above, the load resets it
        reasons = {(i, f.code): f.reason for i, r in enumerate(rules) for f in r.failures}
        return [
            _Problem(
                _line_of(int(row[0]), rejected_lines), verified.header[i], code, rules[i].expected, reasons[(i, code)]
            )
            for row in rows
            for i, code in enumerate(row[1:])
            if code is not None
        ]


def _unbalanced(verified: VerifiedFile, counts: FileCounts) -> str:
    """Why a file does not balance: an empty line (DuckDB skips it), else most likely a quoted line end."""
    with opened(verified.path, verified.identity) as fd, _raw_stream(verified, fd) as raw:
        empty = first_empty_line(iter(lambda: raw.read(CHUNK), b""))
    if empty is not None:
        return f"{counts.file}: line {empty} is empty"
    return (
        f"{counts.file}: {counts.rows} lines in the file but {counts.loaded} rows loaded and {counts.quarantined} "
        "quarantined (a quoted field spanning lines?)"
    )


def _previous(con: Connection, manifest: Manifest) -> IngestReport | None:
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


def _record_file(con: Connection, delivery: str, file: VerifiedFile, counts: FileCounts) -> None:
    con.execute(
        "insert into landing.delivery_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            delivery,
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


def _extraction_dates(verified: list[VerifiedFile], problems: Problems) -> dict[str, tuple[CatalogTable, date]]:
    """Each delivered table with its extraction date: the manifest's, the same for all its files, else today."""
    dates: dict[str, tuple[CatalogTable, set[date]]] = {}
    for file in verified:
        dates.setdefault(file.table.name, (file.table, set()))[1].add(file.entry.extracted or date.today())
    for name, (_, given) in dates.items():
        if len(given) > 1:
            problems.add(f"{MANIFEST_NAME}: the files of table {name} give different extraction dates")
    return {name: (table, max(given)) for name, (table, given) in dates.items()}


@contextmanager
def _csv_reader(con: Connection, limits: IngestLimits) -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB, which reads the files: the warehouse itself, or an in-memory database beside PostgreSQL."""
    reader = con if isinstance(con, duckdb.DuckDBPyConnection) else duckdb.connect()
    reader.execute(f"set memory_limit = '{int(limits.memory_limit_mib)}MiB'")
    # Landing rows have no order: both cores insert. The pass that numbers failing lines asks for the order.
    reader.execute("set preserve_insertion_order = false")
    try:
        yield reader
    finally:
        if reader is con:
            reader.execute("reset preserve_insertion_order")
        else:
            reader.close()


def load_delivery(
    con: Connection,
    manifest: Manifest,
    verify: Callable[[], list[VerifiedFile]],
    limits: IngestLimits,
    progress: Callable[[int], None] = lambda _: None,
) -> IngestReport:
    """Load the delivery in one transaction: all of it, balanced, or nothing (every file's problems reported)."""
    create_bookkeeping(con)
    previous = _previous(con, manifest)
    if previous is not None:
        return previous
    verified = verify()
    with _csv_reader(con, limits) as reader:
        return _load_files(con, reader, manifest, verified, limits, progress)


def _load_files(
    con: Connection,
    reader: duckdb.DuckDBPyConnection,
    manifest: Manifest,
    verified: list[VerifiedFile],
    limits: IngestLimits,
    progress: Callable[[int], None],
) -> IngestReport:
    report = IngestReport(manifest.delivery_id, "loaded")
    scratch = Path(tempfile.mkdtemp(prefix="snds-ingest-"))
    loader = _FileLoader(reader, con, manifest.delivery_id, scratch, limits)
    con.execute("begin transaction")
    try:
        try:
            ensure_landing_tables(con, list({v.table.name: v.table for v in verified}.values()))
        except LandingError as error:
            raise DeliveryRefused(f"{error}; run `snds landing init` after migrating it") from error
        problems = Problems()
        for file in verified:
            try:
                counts = loader.load(file)
            except DeliveryRefused as refusal:
                problems.take(refusal)
                continue
            except ENGINE_ERRORS as error:  # the engine's own text may quote the line: only its kind is shown
                problems.add(f"{file.entry.file}: the database cannot load it ({type(error).__name__})")
                break  # the transaction is aborted: nothing more can be loaded
            if counts.loaded + counts.quarantined != counts.rows:
                problems.add(_unbalanced(file, counts))
                continue
            report.files.append(counts)
            _record_file(con, manifest.delivery_id, file, counts)
            progress(file.size)
        if not problems:
            record_periods(con, manifest.delivery_id, _extraction_dates(verified, problems), problems)
        if problems:
            raise problems.refusal()
        totals = [sum(getattr(f, k) for f in report.files) for k in ("rows", "loaded", "quarantined")]
        con.execute(
            "insert into landing.deliveries values (?, ?, 'loaded', ?, ?, ?, ?, ?)",
            [manifest.delivery_id, manifest.sha256, datetime.now(), len(report.files), *totals],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report
