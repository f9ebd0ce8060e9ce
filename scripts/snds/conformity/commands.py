"""`snds validate DELIVERY`: the conformity report of a delivery, and the gate of its promotion."""

from __future__ import annotations

import json
from pathlib import Path

import click

from snds import config
from snds.cli_common import console, database_option, fail
from snds.dbt import DbtError

REPORTS_DIR = config.PROJECT_ROOT / "data" / "reports"


@click.command()
@click.argument("delivery_id")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write the report. Default: data/reports/<DELIVERY_ID>/.",
)
def validate(delivery_id: str, database: Path | None, as_json: bool, report_dir: Path | None) -> None:
    """Run the catalog's conformity checks on an ingested delivery; exit 1 if an error-severity check fails.

    Writes conformity.html (for the data manager) and conformity.json, and records the delivery as validated
    or rejected: only validated deliveries are promoted into the base by the next dbt build.
    """
    from snds.catalog.committed import load_tables
    from snds.conformity.checks import RuleError, project_rules
    from snds.conformity.report import write_report
    from snds.conformity.validate import ValidationError, validate_delivery

    target = database or config.database_path()
    out = report_dir or REPORTS_DIR / delivery_id
    try:
        rules = project_rules(load_tables())
        with console.status(f"checking delivery {delivery_id}") as status:
            report = validate_delivery(
                target,
                delivery_id,
                rules,
                config.PROJECT_ROOT / "target" / "conformity",
                progress=lambda step: status.update(f"checking delivery {delivery_id}: {step}"),
            )
    except (ValidationError, RuleError, DbtError) as error:
        fail(str(error))
    json_path, html_path = write_report(report, out)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    flagged = sum(sum(entry["flags"].values()) for entry in report["tables"].values())
    console.print(
        f"delivery {delivery_id}: {report['status']}; {report['checks']} checks of {report['check_kinds']} kinds "
        f"on {len(report['tables'])} tables, {report['errors']} errors, {report['warnings']} warnings, "
        f"{report['skipped']} skipped, {flagged} rows flagged by cleaning rules; report {html_path} ({json_path.name})",
        highlight=False,
    )
    for table, entry in report["tables"].items():
        for failed in entry["failed"]:
            if failed["severity"] == "error":
                console.print(
                    f"  [red]error[/] {table} {failed['check']}: {failed['failing']} of {failed['checked']}",
                    highlight=False,
                )
    if report["status"] == "rejected":
        fail(f"delivery {delivery_id} is rejected: it will not be promoted into the base")
