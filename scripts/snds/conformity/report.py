"""Write a delivery's conformity report: JSON for machines, a static HTML page for the data manager."""

from __future__ import annotations

from pathlib import Path

from snds.pages import render_html as render_page
from snds.pages import write_pages


def render_html(report: dict) -> str:
    return render_page("snds.conformity", "report.html.j2", report=report)


def write_report(report: dict, directory: Path) -> tuple[Path, Path]:
    """conformity.json and conformity.html in `directory` (created)."""
    return write_pages(report, render_html(report), directory / "conformity.json", directory / "conformity.html")
