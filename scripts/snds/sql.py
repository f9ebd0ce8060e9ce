"""Small SQL text helpers shared by the generators of DuckDB and Oracle statements."""


def sql_literal(value: str) -> str:
    """A single-quoted SQL string literal (quotes doubled), valid on DuckDB and Oracle."""
    return "'" + value.replace("'", "''") + "'"


def quoted_name(name: str) -> str:
    """A catalog name (table, column) as a double-quoted SQL identifier. Catalog names are letters, digits and `_`;
    anything else is refused rather than escaped."""
    if not name or not all(c.isascii() and (c.isalnum() or c == "_") for c in name):
        raise ValueError(f"not a catalog name: {name!r}")
    return f'"{name}"'
