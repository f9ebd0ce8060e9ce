"""`snds project import ID FILE --as NAME`: a project's own data into `project_<id>.import_<name>`, like a delivery.

The file is a `;`-separated UTF-8 CSV (`.csv` or `.csv.gz`) with a header; its columns and their types are declared in
a small schema file (`imports.schema.json`: YAML, `FILE.schema.yml` by default). It is verified as an incoming
delivery's file is (`snds.ingest.verify`: opened once, never through a link, sha256, lines, lone CR, gzip bounds;
the header naming exactly the declared columns), then typed exactly by the ingestion's rules
(`snds.ingest.values`): DuckDB's CSV reader reads text, the rules type it, the rows whose every value is exact land,
the others are quarantined with their line, column and reason, and the file must balance (rows in = loaded +
quarantined). One transaction: the table is there whole, or not at all.

A declared identifier column holds a person as the CNAM identifies it (`BEN_NIR_PSA` as delivered). It is never
stored: the statement that reads the file computes the platform pseudonym (the platform's person key) and from it the
project's (the project key), exactly as staging and the project's `<id>__pseudonyms` model do (macros
`keyed_pseudonym`, `hmac_sha256_hex`, `project_pseudonyms`), and stores that as `NUM_ENQ`, which joins the project's
cohort. The keys stay in the database (joined in SQL, as dbt does). The quarantine keeps line numbers and reasons,
never a value nor the line, so no clear identifier lands anywhere.

DuckDB is used directly, not through dbt, as `snds ingest` does: dbt models read tables, not files, and a model over a
landed copy of the file would have stored the clear identifiers first.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jsonschema

from snds import audit, identifiers
from snds.catalog.committed import CatalogColumn, CatalogTable
from snds.catalog.conventions import load_conventions
from snds.catalog.sqltypes import NUMERIC, VARCHAR, SqlType
from snds.ingest.errors import DeliveryRefused, Problems
from snds.ingest.limits import IngestLimits
from snds.ingest.load import FileCounts, _FileLoader, _unbalanced
from snds.ingest.manifest import ManifestEntry, shown
from snds.ingest.values import Failure, ValueRule, rows_accepted, value_rule
from snds.ingest.verify import FileIdentity, VerifiedFile, _match_header, fd_path, opened, scan_file, unchanged
from snds.keys import store
from snds.projects.lifecycle import ensure_open
from snds.projects.schema import YamlError, _describe, read_yaml

IMPORT_ACTION = "project.import"
SCHEMA_PATH = Path(__file__).with_name("imports.schema.json")
SCHEMA_SUFFIX = ".schema.yml"
DATA_SUFFIXES = (".csv", ".csv.gz")
MAX_SCHEMA_BYTES = 1 << 20
MAX_VARCHAR, MAX_PRECISION = 4000, 38
PSEUDONYM_COLUMN = "NUM_ENQ"
BOOKKEEPING, QUARANTINE = "imports", "imports_quarantine"  # never `import_...`: no import can be named like them

BOOKKEEPING_DDL = """create table if not exists {schema}.imports (
    IMPORT_NAME varchar(48) not null primary key,
    TABLE_NAME varchar(64) not null,
    FILE_NAME varchar(255) not null,
    FILE_SHA256 varchar(64) not null,
    SCHEMA_SHA256 varchar(64) not null,
    IDENTIFIER_COLUMN varchar(64),
    ROWS_IN bigint not null,
    ROWS_LOADED bigint not null,
    ROWS_QUARANTINED bigint not null,
    IMPORTED_AT timestamp not null,
    IMPORTED_BY varchar(128) not null
)"""
# One row per problem of a quarantined line: where and why, never the value nor the line.
QUARANTINE_DDL = """create table if not exists {schema}.imports_quarantine (
    IMPORT_NAME varchar(48) not null,
    FILE_SHA256 varchar(64) not null,
    LINE_NUMBER bigint not null,
    COLUMN_NAME varchar(64),
    REASON_CODE varchar(32) not null,
    EXPECTED varchar(64) not null,
    REASON varchar(255) not null
)"""


class ImportRefused(Exception):
    """The file is not imported; each problem names the file, a column, a line or a count, never a value."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def describe(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass(frozen=True)
class ImportColumn:
    name: str
    sql_type: SqlType


@dataclass(frozen=True)
class ImportSchema:
    path: Path
    sha256: str
    columns: tuple[ImportColumn, ...]
    identifier: str | None  # a declared column (its spelling in the schema), pseudonymised at import

    def stored_name(self, column: ImportColumn) -> str:
        return PSEUDONYM_COLUMN if column.name == self.identifier else column.name


@dataclass(frozen=True)
class ImportReport:
    project_id: str
    name: str
    table: str  # project_<id>.import_<name>
    file: str
    sha256: str
    schema_sha256: str
    identifier: str | None
    rows: int
    loaded: int
    quarantined: int
    replaced: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project_id,
            "name": self.name,
            "table": self.table,
            "file": self.file,
            "sha256": self.sha256,
            "schema_sha256": self.schema_sha256,
            "identifier": self.identifier,
            "stored_as": PSEUDONYM_COLUMN if self.identifier else None,
            "rows_in": self.rows,
            "rows_loaded": self.loaded,
            "rows_quarantined": self.quarantined,
            "replaced": self.replaced,
        }


def import_name(value: str) -> str:
    """The import's name in lower case (the table is `import_<name>`), or InvalidIdentifier: the project
    identifier's pattern (1 to 48 letters, digits or _, starting with a letter or digit)."""
    if not identifiers.PROJECT_ID.fullmatch(value):
        raise identifiers.InvalidIdentifier(
            f"import name {ascii(value)[:80]} is not accepted: 1 to 48 letters, digits or _, "
            "starting with a letter or digit"
        )
    return value.lower()


def default_schema_path(file: Path) -> Path:
    """`persons.csv` (or `persons.csv.gz`) is described by `persons.schema.yml` beside it."""
    name = file.name
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return file.with_name(name[: -len(suffix)] + SCHEMA_SUFFIX)
    return file.with_name(name + SCHEMA_SUFFIX)


@cache
def _import_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_import_schema(path: Path, identifier: str | None = None) -> ImportSchema:
    """The schema file read and checked (every problem at once), with `identifier` (--identifier) if given."""
    where = shown(path.name)
    if not os.path.lexists(path):
        raise ImportRefused(f"no schema file {where}: write it beside the file, or give --schema")
    try:
        with opened(path) as fd, open(fd_path(fd), "rb") as handle:
            raw = handle.read(MAX_SCHEMA_BYTES + 1)
    except DeliveryRefused as refusal:
        raise ImportRefused(f"schema {refusal}") from None
    if len(raw) > MAX_SCHEMA_BYTES:
        raise ImportRefused(f"schema {where}: larger than {MAX_SCHEMA_BYTES >> 20} MiB")
    try:
        document = read_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ImportRefused(f"schema {where}: not UTF-8 text") from None
    except YamlError as error:
        raise ImportRefused(f"schema {where}: {error}") from None
    validator = jsonschema.Draft202012Validator(_import_schema())
    problems = sorted(
        {f"schema {where}: {p}: {e}" for error in validator.iter_errors(document) for p, e in _describe(error)}
    )
    if problems:
        raise ImportRefused(problems)
    columns = tuple(ImportColumn(c["name"], SqlType.parse(c["type"])) for c in document["columns"])
    problems = [f"schema {where}: {p}" for p in _column_problems(columns)]
    declared = document.get("identifier")
    if identifier is not None and declared is not None and identifier.upper() != declared.upper():
        problems.append(f"schema {where}: identifier {declared} differs from --identifier {ascii(identifier)[:80]}")
    chosen = identifier if identifier is not None else declared
    by_upper = {c.name.upper(): c for c in columns}
    if chosen is not None:
        column = by_upper.get(chosen.upper())
        if column is None:
            problems.append(f"identifier {ascii(chosen)[:80]} is not a column of schema {where}")
        elif column.sql_type.kind != VARCHAR:
            problems.append(f"identifier {column.name} must be declared varchar(n), not {column.sql_type}")
        elif PSEUDONYM_COLUMN in by_upper:
            problems.append(f"schema {where}: a column {PSEUDONYM_COLUMN} cannot stand beside the identifier")
        chosen = column.name if column is not None else chosen
    person_columns = _person_identifiers()
    for column in columns:
        if column.name.upper() in person_columns and column.name != chosen:
            problems.append(
                f"column {column.name} is a person identifier: declare it the identifier (--identifier "
                f"{column.name}) to store it pseudonymised as {PSEUDONYM_COLUMN}, or leave it out of the file"
            )
    if problems:
        raise ImportRefused(problems)
    return ImportSchema(path, hashlib.sha256(raw).hexdigest(), columns, chosen)


def _column_problems(columns: tuple[ImportColumn, ...]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for index, column in enumerate(columns):
        where = f"columns[{index}]"
        if column.name.upper() in seen:
            problems.append(f"{where}.name: {column.name} is declared twice (names are compared in any case)")
        seen.add(column.name.upper())
        kind = column.sql_type
        if kind.kind == VARCHAR and (kind.length or 0) > MAX_VARCHAR:
            problems.append(f"{where}.type: at most varchar({MAX_VARCHAR})")
        if kind.kind == NUMERIC and (
            (kind.precision or 0) > MAX_PRECISION or (kind.scale or 0) > (kind.precision or 0)
        ):
            problems.append(f"{where}.type: numeric(p,s) needs p from 1 to {MAX_PRECISION} and s at most p")
    return problems


@cache
def _person_identifiers() -> frozenset[str]:
    """Column names that hold a person or a professional as identified by the CNAM or the platform."""
    direct = {name for name, c in load_conventions().identifiers.items() if c.pseudonym_domain is not None}
    return frozenset({*direct, "PERSON_ID"})


class _IdentifierRule(ValueRule):
    """An identifier column's rule: a value is required (a row without its person cannot join the cohort)."""

    @property
    def accepts(self) -> str:
        return f"({self.column} is not null and {self.valid})"


def _identifier_rule(sql_type: SqlType, column: str) -> ValueRule:
    rule = value_rule(sql_type, column)
    missing = Failure("missing_identifier", f"{column} is null", "no identifier: the person is required")
    return _IdentifierRule(rule.column, rule.expected, rule.valid, rule.parsed, (missing, *rule.failures))


def keyed_sql(value: str, key: str, length: int) -> str:
    """What the macros `keyed_pseudonym` and `duckdb__hmac_sha256_hex` compute (a test compares them)."""
    return f"upper(substr(sha256({key}.opad || unhex(sha256({key}.ipad || encode({value})))), 1, {length}))"


def _pseudonym(value: str) -> str:
    """SQL: the project's pseudonym of a delivered person identifier: platform pseudonym, then the project's; the
    PMSI's placeholders for an unknown patient identify nobody and stay as they are, as in staging."""
    conventions = load_conventions().pseudonyms
    placeholders = ", ".join(f"'{p}'" for p in conventions.person_placeholders)
    keyed = keyed_sql(value, "platform_key", conventions.length)
    platform = f"case when {value} in ({placeholders}) then {value} else {keyed} end"
    project = keyed_sql(f"({platform})", "project_key", conventions.length)
    return (
        f"cast(case when {value} in ({placeholders}) then {value} else {project} end as varchar({conventions.length}))"
    )


def key_join(scope: str, alias: str) -> str:
    return (
        f"cross join (select IPAD as ipad, OPAD as opad from keys.key_material where KEY_SCOPE = '{scope}' "
        f"and KEY_DOMAIN = 'person' and KEY_STATUS = 'active') {alias}"
    )


def _table(name: str, schema: ImportSchema) -> CatalogTable:
    """The import as a table of the shape the ingestion's verification and reader take."""
    columns = tuple(CatalogColumn(c.name, str(c.sql_type), c.sql_type.oracle, "", "other", "") for c in schema.columns)
    return CatalogTable(f"import_{name}", "import", f"import_{name}", None, "import", (), columns)


def _verify(file: Path, name: str, schema: ImportSchema, limits: IngestLimits, sha256: str | None) -> VerifiedFile:
    shown_name = shown(file.name)
    if not any(file.name.lower().endswith(s) for s in DATA_SUFFIXES):
        raise ImportRefused(f"{shown_name}: a file to import is a `;`-separated CSV named *.csv or *.csv.gz")
    if not os.path.lexists(file):
        raise ImportRefused(f"{shown_name}: no such file")
    table = _table(name, schema)
    try:
        with opened(file) as fd:
            identity = FileIdentity.of(os.fstat(fd))
            scan = scan_file(fd, shown_name, limits)
        if sha256 is not None and scan.sha256 != sha256.lower():
            raise DeliveryRefused(f"{shown_name}: sha256 differs from the one given (--sha256)")
        entry = ManifestEntry(file.name, table.name, scan.rows, scan.sha256, "utf-8")
        header = _match_header(entry, scan.header, table)
    except DeliveryRefused as refusal:
        raise ImportRefused(refusal.problems) from None
    return VerifiedFile(entry, file, table, header, identity)


def import_file(
    con: duckdb.DuckDBPyConnection,
    project_id: str,
    file: Path,
    name: str,
    schema: ImportSchema,
    limits: IngestLimits,
    replace: bool = False,
    sha256: str | None = None,
) -> ImportReport:
    """Verify, type, pseudonymise and load the file, in one transaction; ImportRefused (or ProjectClosed) else.

    The caller records the refusals; a successful import is recorded here, in its transaction.
    """
    name = import_name(name)
    ensure_open(con, project_id)
    verified = _verify(file, name, schema, limits, sha256)
    project_schema = identifiers.project_schema(project_id)
    table = f"{project_schema}.import_{name}"
    store.create_key_store(con)
    if schema.identifier is not None:
        _require_keys(con, project_id)
    replaced = import_exists(con, project_id, name)
    if replaced and not replace:
        raise ImportRefused(
            f"project {project_id} already has an import {name} ({table}): give --replace to replace it"
        )
    con.execute(f"set memory_limit = '{int(limits.memory_limit_mib)}MiB'")
    con.execute("set preserve_insertion_order = false")
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {project_schema}")
        con.execute(BOOKKEEPING_DDL.format(schema=project_schema))
        con.execute(QUARANTINE_DDL.format(schema=project_schema))
        con.execute(f"drop table if exists {table}")
        con.execute(f"delete from {project_schema}.{BOOKKEEPING} where IMPORT_NAME = ?", [name])
        con.execute(f"delete from {project_schema}.{QUARANTINE} where IMPORT_NAME = ?", [name])
        declared = ", ".join(f'"{schema.stored_name(c)}" {_stored_type(schema, c)}' for c in schema.columns)
        con.execute(f"create table {table} ({declared})")
        counts = _load(con, verified, schema, table, limits, project_id)
        report = ImportReport(
            project_id,
            name,
            table,
            file.name,
            verified.entry.sha256,
            schema.sha256,
            schema.identifier,
            counts.rows,
            counts.loaded,
            counts.quarantined,
            replaced,
        )
        con.execute(
            f"insert into {project_schema}.{BOOKKEEPING} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                name,
                f"import_{name}",
                file.name,
                report.sha256,
                schema.sha256,
                schema.identifier,
                counts.rows,
                counts.loaded,
                counts.quarantined,
                datetime.now(),
                getpass.getuser(),
            ],
        )
        audit.record(con, IMPORT_ACTION, project_id, "done", {**report.as_json(), "who": getpass.getuser()})
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.execute("reset preserve_insertion_order")
    return report


def import_exists(con: duckdb.DuckDBPyConnection, project_id: str, name: str) -> bool:
    """Whether the project has the import `name` (lower case): its table `project_<id>.import_<name>`."""
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [identifiers.project_schema(project_id), f"import_{name}"],
    ).fetchone()
    return bool(found and found[0])


def _stored_type(schema: ImportSchema, column: ImportColumn) -> str:
    if column.name == schema.identifier:
        return f"varchar({load_conventions().pseudonyms.length})"
    return str(column.sql_type)


def _require_keys(con: duckdb.DuckDBPyConnection, project_id: str) -> None:
    active = {(k.scope, k.domain) for k in store.list_keys(con) if k.status == "active"}
    problems = []
    if (store.PLATFORM, "person") not in active:
        problems.append("no active platform key for persons: the identifier cannot be pseudonymised (`snds keys init`)")
    if (store.project_scope(project_id), "person") not in active:
        problems.append(
            f"project {project_id} has no key: the identifier cannot be pseudonymised "
            f"(`snds keys init --project {project_id}`)"
        )
    if problems:
        raise ImportRefused(problems)


def _load(
    con: duckdb.DuckDBPyConnection,
    verified: VerifiedFile,
    schema: ImportSchema,
    table: str,
    limits: IngestLimits,
    project_id: str,
) -> FileCounts:
    """The ingestion's two passes over the file (see `snds.ingest.load`): the exact rows land (the identifier
    pseudonymised in the same statement), then the failing lines are explained into the quarantine."""
    loader = _FileLoader(con, con, f"import:{project_id}", Path("/nonexistent"), limits)  # UTF-8: no scratch file
    by_name = {c.name: c for c in schema.columns}
    rules = [
        (_identifier_rule if name == schema.identifier else value_rule)(by_name[name].sql_type, f'"{name}"')
        for name in verified.header
    ]
    rejects = "snds_import_rejects"
    store_rejects = (
        f", store_rejects=true, rejects_table='{rejects}_errors', rejects_scan='{rejects}_scans', "
        f"rejects_limit={limits.max_quarantined_lines + 1}"
    )
    entry = verified.entry
    with opened(verified.path, verified.identity) as fd:
        path, compression = fd_path(fd), "gzip" if verified.compressed else "none"
        parsed = {
            name: _pseudonym(f'"{name}"') if name == schema.identifier else rule.parsed
            for name, rule in zip(verified.header, rules, strict=True)
        }
        target = ", ".join(f'"{schema.stored_name(by_name[n])}"' for n in verified.header)
        keys = ""
        if schema.identifier is not None:
            project_key = key_join(store.project_scope(project_id), "project_key")
            keys = f"{key_join(store.PLATFORM, 'platform_key')} {project_key}"
        inserted = con.execute(
            f"insert into {table} ({target}) select {', '.join(parsed[n] for n in verified.header)} "
            f"from {loader._reader(path, compression, verified, store_rejects)} source {keys} "
            f"where {rows_accepted(rules)}"
        ).fetchone()
        loaded = int(inserted[0]) if inserted else 0
        problems = loader._line_problems(rejects, len(verified.header), entry.encoding)
        failing = entry.rows - loaded
        too_many = limits.over_quarantine_cap(failing, entry.rows)
        if too_many:
            raise ImportRefused(f"{shown(entry.file)}: {failing} of {entry.rows} lines cannot be loaded ({too_many})")
        rejected_lines = sorted({p.line for p in problems})
        if failing > len(rejected_lines):
            problems += loader._value_problems(path, compression, verified, rules, rejected_lines)
        unchanged(fd, verified.identity, entry.file)
    counts = FileCounts(entry.file, verified.table.name, entry.rows, loaded, len({p.line for p in problems}))
    if counts.loaded + counts.quarantined != counts.rows:
        raise ImportRefused(_unbalanced(verified, counts))
    schema_name = table.split(".", 1)[0]
    rows = [
        (verified.table.name.removeprefix("import_"), entry.sha256, p.line, p.column, p.code, p.expected, p.reason)
        for p in problems
    ]
    if rows:
        con.executemany(f"insert into {schema_name}.{QUARANTINE} values (?, ?, ?, ?, ?, ?, ?)", rows)
    return counts


def refusal_detail(file: Path, name: str, error: Exception) -> dict[str, Any]:
    """What `audit.events` keeps of a refused import: the file's name, the import's name, the problems."""
    problems = error.problems if isinstance(error, ImportRefused) else [str(error)]
    kept = Problems()
    for problem in problems:
        kept.add(problem)
    return {"file": shown(file.name), "name": name, "problems": kept.kept, "who": getpass.getuser()}
