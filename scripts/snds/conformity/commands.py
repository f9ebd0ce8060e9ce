"""`snds validate DELIVERY`: the conformity report of a delivery, and the gate of its promotion."""

from __future__ import annotations

import json
from pathlib import Path

import click

from snds import config, engine
from snds.cli_common import (
    EXIT_DATA,
    EXIT_TOOL,
    EXIT_USAGE,
    chosen_engine,
    console,
    database_option,
    fail,
    fail_reporting,
    target_option,
)


@click.command()
@click.argument("delivery_id")
@database_option
@target_option
@click.option("--json", "as_json", is_flag=True, help="Print the report (or the error) as JSON on stdout.")
@click.option(
    "--report-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write the report. Default: data/reports/<DELIVERY_ID>/.",
)
def validate(
    delivery_id: str, database: Path | None, target: str | None, as_json: bool, report_dir: Path | None
) -> None:
    """Run the catalog's conformity checks on an ingested delivery; exit 1 if an error-severity check fails.

    Writes conformity.html (for the data manager) and conformity.json, records every check's result in the
    warehouse (landing.conformity_results) and the delivery as validated or rejected: only validated deliveries
    are promoted into the base by the next dbt build. Exit codes: 0 validated, 1 rejected, 2 wrong identifier or
    unknown delivery, 3 the tool could not work (database missing, locked or without landing, dbt failed).
    """
    from snds.dbt import DbtError
    from snds.identifiers import InvalidIdentifier
    from snds.identifiers import delivery_id as checked_delivery_id
    from snds.warehouse import WarehouseError

    try:  # before anything: the identifier names SQL literals and the report's directory
        delivery = checked_delivery_id(delivery_id)
    except InvalidIdentifier as error:
        fail_reporting(str(error), EXIT_USAGE, as_json, None)

    from snds.catalog.committed import load_tables
    from snds.conformity.checks import RuleError, project_rules
    from snds.conformity.report import write_report
    from snds.conformity.validate import UnknownDelivery, ValidationError, check_delivery, validate_delivery

    engine_name = chosen_engine(target, database)
    path = database or config.database_path()
    out = report_dir or config.REPORTS_DIR / delivery
    try:
        check_delivery(path, delivery, engine_name)  # a clear message before the catalog is loaded and dbt started
        rules = project_rules(load_tables())
        with console.status(f"checking delivery {delivery}") as status:
            report = validate_delivery(
                path,
                delivery,
                rules,
                config.PROJECT_ROOT / "target" / "conformity",
                progress=lambda step: status.update(f"checking delivery {delivery}: {step}"),
                target=engine_name,
            )
    except UnknownDelivery as error:
        fail_reporting(str(error), EXIT_USAGE, as_json, delivery)
    except (ValidationError, WarehouseError, engine.EngineError, RuleError, DbtError) as error:
        fail_reporting(str(error), EXIT_TOOL, as_json, delivery)
    except engine.ENGINE_ERRORS as error:  # the engine's own text may quote a delivered value: only its kind is shown
        fail_reporting(f"the database failed while checking ({type(error).__name__})", EXIT_TOOL, as_json, delivery)
    try:
        json_path, html_path = write_report(report, out)
    except OSError as error:
        message = f"delivery {delivery} is {report['status']} (recorded) but its report was not written: {error}"
        fail_reporting(message, EXIT_TOOL, as_json, delivery)
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    _print_summary(report, html_path, json_path)
    if report["status"] == "rejected":
        fail(f"delivery {delivery} is rejected: it will not be promoted into the base", EXIT_DATA)


def _print_summary(report: dict, html_path: Path, json_path: Path) -> None:
    tables = report["tables"]
    flagged = sum(sum(entry["flags"].values()) for entry in tables.values())
    quarantine = report["quarantine"]
    console.print(
        f"delivery {report['delivery']}: {report['status']}; {report['checks']} checks of {report['check_kinds']} "
        f"kinds on {len(tables)} tables, {report['errors']} errors, {report['warnings']} warnings, "
        f"{report['skipped']} skipped, {quarantine['quarantined']} of {quarantine['rows']} rows quarantined, "
        f"{flagged} rows flagged by cleaning rules; report {html_path} ({json_path.name})",
        highlight=False,
    )
    failures = [("delivery", f) for f in report["delivery_checks"]]
    failures += [(table, f) for table, entry in tables.items() for f in entry["failed"]]
    for where, failed in failures:
        if failed["outcome"] == "error":
            console.print(
                f"  [red]error[/] {where} {failed['check']}: {failed['failing']} of {failed['checked']}",
                highlight=False,
            )
