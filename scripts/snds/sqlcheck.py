"""Check SQL compiled for Oracle: it must parse under an Oracle grammar and use nothing Oracle rejects.

sqlglot's Oracle dialect is permissive (it reads `LIMIT`, `::` and `ILIKE` and would rewrite them), so a
parse alone proves little. The rules below name the constructs Oracle rejects that a dbt project
written against DuckDB first tends to produce; each rule has a test that proves it fires.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

ORACLE = sqlglot.Dialect.get_or_raise("oracle")
MAX_IDENTIFIER_BYTES = 128

# Functions DuckDB (or other engines) offer and Oracle does not.
NON_ORACLE_FUNCTIONS = frozenset(
    """
    strftime strptime date_trunc date_diff datediff date_part date_add date_sub epoch epoch_ms make_date
    today now current_localtimestamp regexp_matches regexp_full_match regexp_split_to_array string_split
    split_part string_agg array_agg list_value list_aggregate list_contains struct_pack unnest
    generate_series range md5 sha256 sha1 hash unhex hex ifnull iff try_cast strlen len contains
    starts_with ends_with count_if bool_and bool_or any_value arg_max arg_min read_csv read_csv_auto
    read_parquet printf format concat_ws left right isnan epoch_us
    """.split()
)

# Type tokens Oracle does not know (DOUBLE alone is DuckDB's; DOUBLE PRECISION is ANSI and accepted).
NON_ORACLE_TYPES = {
    TokenType.BOOLEAN: "BOOLEAN (use NUMBER(1) or VARCHAR2(1))",
    TokenType.TEXT: "TEXT (use VARCHAR2(n) or CLOB)",
    TokenType.BIGINT: "BIGINT (use NUMBER(19))",
    TokenType.TINYINT: "TINYINT (use NUMBER(3))",
    TokenType.INT128: "HUGEINT (use NUMBER(38))",
    TokenType.UBIGINT: "UBIGINT",
    TokenType.UINT: "UINTEGER",
    TokenType.USMALLINT: "USMALLINT",
    TokenType.UTINYINT: "UTINYINT",
    TokenType.UUID: "UUID",
    TokenType.LIST: "LIST",
    TokenType.STRUCT: "STRUCT",
    TokenType.MAP: "MAP",
}

_FROM_CLAUSE_END = {
    TokenType.WHERE,
    TokenType.GROUP_BY,
    TokenType.ORDER_BY,
    TokenType.HAVING,
    TokenType.UNION,
    TokenType.EXCEPT,
    TokenType.INTERSECT,
    TokenType.ON,
    TokenType.USING,
    TokenType.R_PAREN,
    TokenType.SEMICOLON,
    TokenType.START_WITH,
    TokenType.CONNECT_BY,
    TokenType.FETCH,
    TokenType.WINDOW,
}


@dataclass(frozen=True)
class Finding:
    rule: str
    detail: str
    line: int = 0

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}[{self.rule}] {self.detail}"


def check_sql(sql: str) -> list[Finding]:
    """Every reason Oracle would refuse this SQL that we know how to detect; empty when it passes."""
    try:
        tokens = ORACLE.tokenize(sql)
    except TokenError as error:
        return [Finding("grammar", f"cannot tokenize: {error}")]
    findings = list(_token_rules(tokens))
    try:
        statements = sqlglot.parse(sql, read="oracle", error_level=sqlglot.ErrorLevel.RAISE)
    except ParseError as error:
        findings.append(Finding("grammar", f"does not parse as Oracle SQL: {str(error).splitlines()[0]}"))
        return findings
    for statement in statements:
        if statement is not None:
            findings.extend(_tree_rules(statement))
    return findings


def _at(tokens: list[Token], i: int) -> Token | None:
    return tokens[i] if 0 <= i < len(tokens) else None


def _token_rules(tokens: list[Token]) -> Iterator[Finding]:
    for i, token in enumerate(tokens):
        kind, text, following = token.token_type, token.text, _at(tokens, i + 1)
        if kind == TokenType.LIMIT:
            yield Finding("limit", "LIMIT is not Oracle: use FETCH FIRST n ROWS ONLY", token.line)
        elif kind == TokenType.DCOLON:
            yield Finding("double-colon-cast", ":: casts are not Oracle: use CAST(x AS type)", token.line)
        elif kind == TokenType.ILIKE:
            yield Finding("ilike", "ILIKE is not Oracle: use UPPER(x) LIKE UPPER(y)", token.line)
        elif kind in (TokenType.TRUE, TokenType.FALSE):
            yield Finding("boolean-literal", f"{text.upper()} is not an Oracle literal: use 1/0", token.line)
        elif kind == TokenType.QUALIFY:
            yield Finding("qualify", "QUALIFY is not Oracle: filter a window in a subquery", token.line)
        elif kind == TokenType.DOUBLE and text.upper() == "DOUBLE":
            yield Finding("type", "DOUBLE is not Oracle: use DOUBLE PRECISION or NUMBER", token.line)
        elif kind in NON_ORACLE_TYPES:
            yield Finding("type", f"{NON_ORACLE_TYPES[kind]} is not an Oracle type", token.line)
        elif kind in (TokenType.VARCHAR, TokenType.NVARCHAR, TokenType.CHAR) and not _is(following, "L_PAREN"):
            if _is_type_position(tokens, i):
                yield Finding("type", f"{text.upper()} needs a length in Oracle: {text.upper()}(n)", token.line)
        elif following is not None and following.token_type == TokenType.L_PAREN:
            if text.lower() in NON_ORACLE_FUNCTIONS and kind != TokenType.STRING:
                yield Finding("function", f"{text}() is not an Oracle function", token.line)
        if kind in (TokenType.VAR, TokenType.IDENTIFIER) and len(text.encode()) > MAX_IDENTIFIER_BYTES:
            yield Finding(
                "identifier-length",
                f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes: {text[:40]}...",
                token.line,
            )
        if kind == TokenType.CREATE and _is(following, "OR") and _is(_at(tokens, i + 2), "REPLACE"):
            if _is(_at(tokens, i + 3), "TABLE"):
                yield Finding("create-or-replace-table", "CREATE OR REPLACE TABLE is not Oracle", token.line)
        if kind == TokenType.VAR and text.lower() == "if" and _is(following, "NOT"):
            if _is(_at(tokens, i + 2), "EXISTS") and _is(_at(tokens, i - 1), "TABLE"):
                yield Finding("if-not-exists", "CREATE TABLE IF NOT EXISTS is not Oracle (before 23ai)", token.line)
        if kind in (TokenType.UNION, TokenType.EXCEPT, TokenType.INTERSECT) and _is(following, "DISTINCT"):
            yield Finding("set-distinct", f"{text.upper()} DISTINCT is not Oracle: write {text.upper()}", token.line)
        if kind == TokenType.STAR and following is not None and following.text.lower() in ("exclude", "replace"):
            yield Finding("star-modifier", f"SELECT * {following.text.upper()} is not Oracle", token.line)
    yield from _table_aliases_with_as(tokens)


def _is(token: Token | None, type_name: str) -> bool:
    return token is not None and token.token_type.name == type_name


def _is_type_position(tokens: list[Token], i: int) -> bool:
    """A VARCHAR token used as a type: after CAST's AS, or after a column name in DDL."""
    previous = _at(tokens, i - 1)
    return previous is not None and previous.token_type in (TokenType.ALIAS, TokenType.VAR, TokenType.IDENTIFIER)


def _table_aliases_with_as(tokens: list[Token]) -> Iterator[Finding]:
    """Oracle rejects `FROM t AS x` (AS is for column aliases only)."""
    i = 0
    while i < len(tokens):
        if tokens[i].token_type not in (TokenType.FROM, TokenType.JOIN):
            i += 1
            continue
        i += 1
        while i < len(tokens):
            if tokens[i].token_type == TokenType.L_PAREN:
                i = _matching_paren(tokens, i) + 1
            else:
                while i < len(tokens) and tokens[i].token_type in (TokenType.VAR, TokenType.IDENTIFIER, TokenType.DOT):
                    i += 1
            if i < len(tokens) and tokens[i].token_type == TokenType.ALIAS:
                yield Finding(
                    "table-alias-as", "Oracle rejects AS before a table alias: write `from t x`", tokens[i].line
                )
                i += 1
            while i < len(tokens) and tokens[i].token_type in (TokenType.VAR, TokenType.IDENTIFIER):
                i += 1
            if i < len(tokens) and tokens[i].token_type == TokenType.COMMA:
                i += 1  # another table of a comma-separated FROM list
                continue
            break


def _matching_paren(tokens: list[Token], start: int) -> int:
    depth = 0
    for j in range(start, len(tokens)):
        if tokens[j].token_type == TokenType.L_PAREN:
            depth += 1
        elif tokens[j].token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens) - 1


def _tree_rules(statement: exp.Expression) -> Iterator[Finding]:
    for select in statement.find_all(exp.Select):
        if not select.args.get("from") and not select.args.get("from_"):
            yield Finding("select-without-from", "Oracle (before 23ai) needs FROM: use `from dual`")
    for in_list in statement.find_all(exp.In):
        if not in_list.expressions and not in_list.args.get("query") and not in_list.args.get("unnest"):
            yield Finding("empty-in-list", "IN () is not valid SQL")


@dataclass(frozen=True)
class FileFindings:
    path: Path
    findings: list[Finding]


def check_files(paths: Iterable[Path]) -> list[FileFindings]:
    """Findings per file, for the files that have any."""
    failed = []
    for path in paths:
        findings = check_sql(path.read_text(encoding="utf-8"))
        if findings:
            failed.append(FileFindings(path, findings))
    return failed


_SQL_FILE = re.compile(r"\.sql$")


def sql_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and _SQL_FILE.search(p.name))


def check_oracle_script(sql: str) -> list[Finding]:
    """A script of PL/SQL blocks and DDL (the access plan for the DBA): it must parse under sqlfluff's Oracle
    grammar, which reads PL/SQL blocks, GRANT and REVOKE (sqlglot reads none of them). The text inside an
    `execute immediate` string is not parsed."""
    from sqlfluff.core import FluffConfig, Linter

    linter = Linter(config=FluffConfig(overrides={"dialect": "oracle"}))
    try:
        parsed = linter.parse_string(sql)
    except RuntimeError as error:  # sqlfluff stops on a keyword its Oracle grammar lacks
        return [Finding("grammar", f"does not parse as Oracle SQL or PL/SQL: {str(error).splitlines()[0]}")]
    return [
        Finding("grammar", f"does not parse as Oracle SQL or PL/SQL: {v.desc()}", v.line_no) for v in parsed.violations
    ]
