"""Static report pages: a JSON file for machines and a self-contained HTML page rendered from a Jinja template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


def render_html(package: str, template: str, **context: Any) -> str:
    """Render `template` of `<package>/templates` with HTML autoescaping (delivered text is never markup)."""
    environment = Environment(loader=PackageLoader(package, "templates"), autoescape=select_autoescape(["html", "j2"]))
    return environment.get_template(template).render(**context)


def write_pages(report: dict, html: str, json_path: Path, html_path: Path) -> tuple[Path, Path]:
    """Both files of a report (their folder created)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    return json_path, html_path
