"""Write a delivery's conformity report: JSON for machines, a static HTML page for the data manager."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape


def render_html(report: dict) -> str:
    environment = Environment(
        loader=PackageLoader("snds.conformity", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    return environment.get_template("report.html.j2").render(report=report)


def write_report(report: dict, directory: Path) -> tuple[Path, Path]:
    """conformity.json and conformity.html in `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "conformity.json", directory / "conformity.html"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path
