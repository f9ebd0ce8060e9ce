"""Ingestion on Oracle: the SQL a DBA runs to load a delivery, generated from the catalog and checked offline.

Per file, an ORACLE_LOADER external table reads the file as text (header skipped, bad and log files kept,
no reject limit; a record with missing fields goes to the bad file, as DuckDB quarantines it). One typed
`insert ... select` then converts every column and sends the rows Oracle cannot convert or store (wrong
number, impossible date, string longer than its column) to the table's DML error log `ERR$_<TABLE>`, tagged
with the delivery and file. Balance per file: rows = loaded + ERR$ rows + lines of the .bad file.
See docs/oracle_ingestion.md for the DBA's runbook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from snds.catalog.committed import CatalogTable
from snds.catalog.sqltypes import DATE, DOUBLE, NUMERIC, TIMESTAMP, SqlType
from snds.formats import ORACLE_DATE_FORMAT, ORACLE_TIMESTAMP_FORMAT
from snds.ingest.verify import VerifiedFile
from snds.landing import PROVENANCE_COLUMNS, create_table_sql, landing_columns
from snds.sql import sql_literal
from snds.sqlcheck import Finding, check_sql

DELIVERY_DIRECTORY = "SNDS_DELIVERY_DIR"
LOG_DIRECTORY = "SNDS_LOG_DIR"
EXEC_DIRECTORY = "SNDS_EXEC_DIR"
CHARACTER_SETS = {"utf-8": "AL32UTF8", "cp1252": "WE8MSWIN1252"}
ERROR_LOG_COLUMNS = (
    "ORA_ERR_NUMBER$ number, ORA_ERR_MESG$ varchar2(2000), ORA_ERR_ROWID$ urowid(4000), "
    "ORA_ERR_OPTYP$ varchar2(2), ORA_ERR_TAG$ varchar2(2000)"
)
SESSION_SETTINGS = (
    "alter session set nls_numeric_characters = '.,'",
    "alter session set nls_date_language = 'ENGLISH'",
)
TEXT_FIELD = 4000


def error_log_name(table: str) -> str:
    return f"ERR$_{table}"


def landing_ddl(tables: Iterable[CatalogTable]) -> list[str]:
    """Landing tables and their DML error logs (the layout DBMS_ERRLOG.CREATE_ERROR_LOG would create)."""
    statements = []
    for table in tables:
        statements.append(create_table_sql(table))
        columns = ", ".join(f"{name} varchar2({TEXT_FIELD})" for name, _ in landing_columns(table))
        statements.append(f"create table landing.{error_log_name(table.name)} ({ERROR_LOG_COLUMNS}, {columns})")
    return statements


def _convert(name: str, sql_type: SqlType) -> str:
    if sql_type.is_text:
        return name
    if sql_type.kind == NUMERIC:
        return f"cast({name} as {sql_type.oracle.lower()})"
    if sql_type.kind == DOUBLE:
        return f"cast({name} as {sql_type})"
    if sql_type.kind == DATE:
        return f"to_date({name}, '{ORACLE_DATE_FORMAT}')"
    if sql_type.kind == TIMESTAMP:
        return f"to_timestamp({name}, '{ORACLE_TIMESTAMP_FORMAT}')"
    raise ValueError(f"{name}: no Oracle conversion for {sql_type}")


def delivery_sql(delivery_id: str, files: list[VerifiedFile]) -> list[str]:
    """The statements that load one verified delivery on Oracle, in order."""
    statements = list(SESSION_SETTINGS)
    for number, file in enumerate(files, start=1):
        external = f"landing.EXT{number}_{file.table.name}"[:128]
        fields = ", ".join(f"{name} char({TEXT_FIELD})" for name in file.header)
        preprocessor = f"preprocessor {EXEC_DIRECTORY}:'zcat.sh' " if file.path.name.endswith(".gz") else ""
        statements.append(
            f"create table {external} ({', '.join(f'{name} varchar2({TEXT_FIELD})' for name in file.header)}) "
            f"organization external (type oracle_loader default directory {DELIVERY_DIRECTORY} "
            f"access parameters (records delimited by newline characterset {CHARACTER_SETS[file.entry.encoding]} "
            f"{preprocessor}skip 1 badfile {LOG_DIRECTORY}:{sql_literal(file.entry.file + '.bad')} "
            f"logfile {LOG_DIRECTORY}:{sql_literal(file.entry.file + '.log')} "
            f"fields terminated by ';' optionally enclosed by '\"' ({fields})) "
            f"location ({sql_literal(file.entry.file)})) reject limit unlimited"
        )
        types = {c.name: c.sql_type for c in file.table.columns}
        target = ", ".join([*file.header, *(name for name, _ in PROVENANCE_COLUMNS)])
        values = ", ".join(
            [
                *(_convert(name, types[name]) for name in file.header),
                sql_literal(delivery_id),
                sql_literal(file.entry.file),
            ]
        )
        statements.append(
            f"insert into landing.{file.table.name} ({target}) select {values} from {external} "
            f"log errors into landing.{error_log_name(file.table.name)} "
            f"({sql_literal(delivery_id + '/' + file.entry.file)}) reject limit unlimited"
        )
        statements.append(f"drop table {external}")
    return statements


_SPACES = re.compile(r"\s+")
_SESSION = re.compile(r"alter session set nls_[a-z_]+ = '[^']*'")
_EXTERNAL = re.compile(
    r"(?P<create>create table [\w$.]+ \(.*?\)) organization external \(type oracle_loader "
    r"default directory \w+ access parameters \(records delimited by newline characterset \w+ "
    r"(preprocessor \w+:'[\w.]+' )?skip \d+ badfile \w+:'[^']+' logfile \w+:'[^']+' "
    r"fields terminated by '[^']' optionally enclosed by '\"' "
    r"\((?P<fields>[^()]*(\(\d+\)[^()]*)*)\)\) location \('[^']+'(, '[^']+')*\)\) reject limit unlimited"
)
_FIELD = re.compile(r"\w+ char\(\d+\)")
_LOG_ERRORS = re.compile(r"(?P<insert>insert into .*) log errors into [\w$.]+ \('[^']*'\) reject limit unlimited")


def check_oracle_statement(statement: str) -> list[Finding]:
    """Oracle-only clauses (external tables, LOG ERRORS, ALTER SESSION) that sqlglot cannot parse are checked
    against their exact expected form; everything else goes through the general Oracle check."""
    text = _SPACES.sub(" ", statement.strip())
    lowered = text.lower()
    if lowered.startswith("alter session"):
        return [] if _SESSION.fullmatch(text) else [Finding("alter-session", f"unexpected form: {text[:80]}")]
    if " organization external " in lowered:
        match = _EXTERNAL.fullmatch(text)
        if match is None:
            return [Finding("external-table", f"not the expected ORACLE_LOADER form: {text[:120]}")]
        fields = [f.strip() for f in match.group("fields").split(",")]
        if not all(_FIELD.fullmatch(f) for f in fields):
            return [Finding("external-table", "field list must be `NAME char(n), ...`")]
        return check_sql(match.group("create"))
    if " log errors " in lowered:
        match = _LOG_ERRORS.fullmatch(text)
        if match is None:
            return [Finding("log-errors", f"LOG ERRORS clause not in the expected form: {text[-120:]}")]
        return check_sql(match.group("insert"))
    return check_sql(text)


def check_oracle_script(statements: Iterable[str]) -> list[tuple[int, Finding]]:
    return [(i, f) for i, statement in enumerate(statements, start=1) for f in check_oracle_statement(statement)]


def render_script(statements: list[str]) -> str:
    return "".join(f"{statement};\n" for statement in statements)
