"""Names a supplier or a user chooses (delivery, project), checked against one strict pattern before any use.

A checked name is safe as a directory name (no `.`, `..`, separator or pattern character), as a SQL string
literal and as part of a Jinja string: it still reaches SQL only as a bound parameter or a checked literal.
"""

from __future__ import annotations

import re

# Letters, digits, `_` and `-`, starting with a letter or digit: no quote, dot, slash, space, newline or glob.
DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,47}")  # no -: project_<id> is a plain schema name


class InvalidIdentifier(ValueError):
    """A name that does not match its pattern; the message shows it escaped, never as raw text."""


def _checked(kind: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidIdentifier(f"{kind} identifier {ascii(value)[:80]} is not accepted: {rule}")
    return value


PROJECT_SCHEMA_PREFIX = "project_"


def project_schema(project_id: str) -> str:
    """The schema of a project's tables, `project_<id>` in lower case, for an id that matched PROJECT_ID."""
    return f"{PROJECT_SCHEMA_PREFIX}{project_id.lower()}"


def delivery_id(value: str) -> str:
    """The delivery identifier (its directory name), or InvalidIdentifier."""
    return _checked("delivery", value, DELIVERY_ID, "1 to 64 letters, digits, _ or -, starting with a letter or digit")


def project_id(value: str) -> str:
    """A research project identifier, or InvalidIdentifier."""
    return _checked("project", value, PROJECT_ID, "1 to 48 letters, digits or _, starting with a letter or digit")
