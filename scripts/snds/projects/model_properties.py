"""Entries of the generated `_<id>__models.yml`: shared by the project's models and its linkage's."""

from __future__ import annotations

from typing import Any


def column(name: str, data_type: str, description: str = "") -> dict[str, Any]:
    """A column of an enforced contract."""
    entry: dict[str, Any] = {"name": name, "data_type": data_type}
    if description:
        entry["description"] = description
    return entry
