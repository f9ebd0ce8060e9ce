"""Small SQL text helpers shared by the generators of DuckDB and Oracle statements."""


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal (quotes doubled), valid on DuckDB and Oracle."""
    return "'" + value.replace("'", "''") + "'"
