"""The `snds` command: the platform's tooling, thin over dbt and DuckDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import Progress

from snds import config, engine
from snds.access.commands import access
from snds.cli_common import chosen_engine, console, database_option, fail, reference_option, target_option
from snds.conformity.commands import validate
from snds.keys.commands import keys
from snds.keys.commands import scan as scan_keys
from snds.postgres_commands import postgres
from snds.projects.commands import project

if TYPE_CHECKING:
    from snds.catalog.dictionary import DictTable

DEMO_DELIVERY = "DEMO_2019_2020"
REFERENCE_DELIVERY = "REFERENCE_SCHEMA_SNDS"
DEMO_SECRET = config.PROJECT_ROOT / "data" / "secrets" / "platform.secret"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Sovereign copy of the SNDS: catalog, landing, dbt builds and checks."""


main.add_command(keys)
main.add_command(validate)
main.add_command(project)
main.add_command(postgres)
main.add_command(access)


def _read_dictionary(reference: Path | None) -> list[DictTable]:
    from snds.catalog.dictionary import DictionaryError, read_dictionary

    try:
        return read_dictionary(reference or config.reference_dir())
    except DictionaryError as error:
        fail(str(error))


@main.command()
@reference_option
@click.option("--check", is_flag=True, help="Fail if any generated file differs from what would be written now.")
@click.option("--stats", "stats_only", is_flag=True, help="Only print the counts (tables, structures, columns).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
def catalog(reference: Path | None, check: bool, stats_only: bool, as_json: bool) -> None:
    """Generate the catalog (seeds/catalog) and the staging models from the SNDS dictionary."""
    from snds.catalog import files
    from snds.catalog.build import build_catalog
    from snds.catalog.conventions import load_conventions
    from snds.catalog.generate import render_all

    conventions = load_conventions()
    with console.status("reading the SNDS dictionary"):
        built = build_catalog(_read_dictionary(reference), conventions)
    stats = built.stats()
    summary = (
        f"{stats['physical_tables']} physical tables ({stats['nomenclatures']} nomenclatures) "
        f"in {stats['structures']} structures, {stats['columns']} columns, "
        f"from {stats['templates']} dictionary tables and templates"
    )
    if stats_only:
        click.echo(json.dumps(stats) if as_json else summary)
        return
    rendered = render_all(built, conventions)
    if check:
        drift = files.compare(config.PROJECT_ROOT, rendered)
        if drift:
            fail(f"generated files are stale or hand-edited; run `snds catalog`:\n{drift.describe()}")
        console.print(f"catalog up to date: {len(rendered)} files; {summary}")
    else:
        drift = files.write(config.PROJECT_ROOT, rendered)
        console.print(
            f"wrote {len(drift.changed) + len(drift.missing)} files, removed {len(drift.unexpected)}; {summary}"
        )
    if as_json:
        click.echo(json.dumps(stats))


@main.command()
@reference_option
def labels(reference: Path | None) -> None:
    """Install the dictionary's French labels as dbt docs blocks (an ignored file), or neutral text."""
    from snds.catalog.dictionary import DictionaryError, read_dictionary
    from snds.catalog.labels import write_labels

    source = reference or config.reference_dir()
    try:
        dictionary = read_dictionary(source)
    except DictionaryError as error:
        console.print(f"[yellow]warning:[/] {error}; writing neutral labels")
        dictionary = None
    path = write_labels(dictionary)
    console.print(f"labels written to {path.relative_to(config.PROJECT_ROOT)}")


@main.group()
def landing() -> None:
    """The landing schema (typed CNAM deliveries)."""


@landing.command("init")
@database_option
@target_option
def landing_init(database: Path | None, target: str | None) -> None:
    """Create the empty typed landing tables that the catalog declares (idempotent)."""
    from snds.catalog.committed import load_tables
    from snds.cli_common import EXIT_TOOL
    from snds.landing import LandingError, init_landing
    from snds.warehouse import WarehouseError

    tables = load_tables()
    engine_name = chosen_engine(target, database)
    where = engine.where(engine_name, database or config.database_path())
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("landing tables", total=len(tables))
        try:
            report = init_landing(database, tables, lambda n: progress.advance(task, n), engine_name)
        except LandingError as error:
            fail(str(error))
        except (WarehouseError, engine.EngineError) as error:
            fail(str(error), EXIT_TOOL)
        except engine.ENGINE_ERRORS as error:
            fail(f"the database failed while creating the landing tables: {engine.failure(error)}", EXIT_TOOL)
    console.print(
        f"landing ready in {where}: {report.created} created, {report.recreated} recreated, "
        f"{report.unchanged} unchanged"
    )


def _years(text: str) -> tuple[int, ...]:
    first, _, last = text.partition("-")
    try:
        years = tuple(range(int(first), int(last or first) + 1))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected YYYY or YYYY-YYYY") from None
    from snds.catalog.conventions import load_conventions

    span = load_conventions().pmsi_years
    if not years or not span.first <= years[0] <= years[-1] <= span.last:
        raise click.BadParameter(f"{text!r}: years must lie within {span.first}-{span.last}")
    return years


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--patients", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--years", "years_text", default="2019-2020", show_default=True, help="YYYY or YYYY-YYYY.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--faults",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    show_default=True,
    help="Share of bad rows that ingestion must quarantine; above 0, also rows that break conformity checks.",
)
@click.option(
    "--fault-kinds",
    type=click.Choice(["all", "ingestion", "conformity"]),
    default="all",
    show_default=True,
    help="Which faults --faults plants.",
)
@click.option(
    "--linkage",
    "linkage_share",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Also write an external cohort of this share of the persons (plus persons outside the base), for the "
    "direct and indirect linkage protocols, into OUT.linkage/ with its truth; plants twins in the base.",
)
@reference_option
def synth(
    out: Path,
    patients: int,
    years_text: str,
    seed: int,
    faults: float,
    fault_kinds: str,
    linkage_share: float | None,
    reference: Path | None,
) -> None:
    """Write a synthetic CNAM delivery to OUT (MANIFEST.csv + files), and OUT.truth.json beside it."""
    from snds.catalog.committed import load_tables
    from snds.synth import LinkageSpec, SynthSpec, linkage_dir, synthesize, truth_path

    linkage = LinkageSpec(cohort_share=linkage_share) if linkage_share is not None else None
    spec = SynthSpec(patients, _years(years_text), seed, linkage=linkage)
    try:
        with console.status("generating") as status:
            report = synthesize(
                out,
                spec,
                load_tables(),
                reference or config.reference_dir(),
                faults if fault_kinds != "conformity" else 0.0,
                lambda table: status.update(f"writing {table}"),
                conformity_faults=faults > 0 and fault_kinds != "ingestion",
            )
    except FileExistsError as error:
        fail(str(error))
    console.print(
        f"delivery {out}: {len(report.files)} files, {sum(report.files.values())} rows, "
        f"{report.faults} planted faults; truth in {truth_path(out)}"
    )
    if report.linkage:
        shown = ", ".join(f"{name} {rows} rows" for name, rows in report.linkage.items())
        console.print(f"linkage inputs in {linkage_dir(out)}: {shown}")


@main.command()
@click.argument("delivery", type=click.Path(path_type=Path, file_okay=False))
@database_option
@target_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-table counts (or the refusal) as JSON on stdout.")
@click.option(
    "--max-quarantined-lines",
    type=click.IntRange(min=0),
    default=None,
    help="Refuse a file with more lines that cannot be loaded. Default: seeds/conformity/ingestion_limits.csv.",
)
@click.option(
    "--max-quarantined-share",
    type=click.FloatRange(0, 1),
    default=None,
    help="Refuse a file whose share of such lines is higher. Default: seeds/conformity/ingestion_limits.csv.",
)
def ingest(
    delivery: Path,
    database: Path | None,
    target: str | None,
    as_json: bool,
    max_quarantined_lines: int | None,
    max_quarantined_share: float | None,
) -> None:
    """Verify a CNAM delivery (manifest, names, links, digests, rows, headers) and load it into `landing`, atomically.

    Every problem of the delivery is reported in one run before it is refused; each attempt is in audit.events.
    Values land exactly or their line goes to the quarantine with its reasons (see `snds quarantine`).
    Exit codes: 0 loaded or unchanged, 1 refused (the data), 2 bad command line, 3 the tool failed.
    """
    from snds.catalog.committed import load_tables
    from snds.cli_common import EXIT_TOOL, fail_reporting
    from snds.ingest import DeliveryRefused, ingest_delivery
    from snds.ingest.limits import load_limits
    from snds.warehouse import WarehouseError

    limits = load_limits().overridden(max_quarantined_lines, max_quarantined_share)
    engine_name = chosen_engine(target, database)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ingest", total=None)
        try:
            report = ingest_delivery(
                delivery,
                database or config.database_path(),
                load_tables(),
                lambda n: progress.advance(task, n),
                lambda n: progress.update(task, total=n),
                limits,
                engine_name,
            )
        except DeliveryRefused as refusal:
            if as_json:
                click.echo(json.dumps({"delivery": delivery.name, "status": "refused", **refusal.as_json()}))
            fail(f"delivery refused, nothing loaded: {refusal.describe()}")
        except (WarehouseError, engine.EngineError) as error:
            fail_reporting(str(error), EXIT_TOOL, as_json, delivery.name)
        except engine.ENGINE_ERRORS as error:  # the engine's own text may quote a delivered value
            fail_reporting(
                f"the database failed while loading ({type(error).__name__})", EXIT_TOOL, as_json, delivery.name
            )
    tables = report.tables()
    quarantined = sum(t["quarantined"] for t in tables.values())
    console.print(
        f"delivery {report.delivery}: {report.status}; {len(report.files)} files, "
        f"{sum(t['loaded'] for t in tables.values())} rows loaded, {quarantined} quarantined"
        + (f" (see `snds quarantine {report.delivery}`)" if quarantined else "")
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))


@main.command()
@click.argument("delivery_ids", nargs=-1, required=True, metavar="DELIVERY_ID...")
@database_option
@target_option
def promote(delivery_ids: tuple[str, ...], database: Path | None, target: str | None) -> None:
    """Apply validated deliveries to the base: dbt builds only the staging models of the tables they delivered and
    what descends from them (event layer, marts), each applying just the deliveries it has not applied yet.

    Research projects are built on request (`snds project build`). Exit codes: 0 promoted, 1 a delivery is not
    validated, 2 a wrong identifier, 3 the tool failed (database, dbt).
    """
    import time

    from snds import identifiers, warehouse
    from snds.cli_common import EXIT_TOOL, EXIT_USAGE
    from snds.dbt import DbtError
    from snds.promotion import PromotionRefused
    from snds.promotion import promote as promote_deliveries

    try:
        checked = [identifiers.delivery_id(d) for d in delivery_ids]
    except identifiers.InvalidIdentifier as error:
        fail(str(error), EXIT_USAGE)
    engine_name = chosen_engine(target, database)
    started = time.monotonic()
    try:
        with console.status(f"promoting {', '.join(checked)}"):
            done = promote_deliveries(database or config.database_path(), checked, target=engine_name)
    except PromotionRefused as refusal:
        fail(f"nothing promoted: {refusal}")
    except (warehouse.WarehouseError, engine.EngineError, DbtError) as error:
        fail(str(error), EXIT_TOOL)
    except engine.ENGINE_ERRORS as error:
        fail(f"the database failed while reading the deliveries: {engine.failure(error)}", EXIT_TOOL)
    console.print(
        f"promoted {', '.join(done.deliveries)}: {len(done.tables)} tables built, {len(done.nodes)} dbt nodes run "
        f"in {time.monotonic() - started:.1f} s"
    )
    if done.resumed:
        console.print(f"also finished what an earlier build left half-applied: {', '.join(done.resumed)}")


@main.command()
@click.argument("delivery_id")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def quarantine(delivery_id: str, database: Path | None, as_json: bool) -> None:
    """Summarise a delivery's quarantine per file, column and reason: line count and first line numbers.

    Never prints the delivered values: they stay in landing.quarantine (RAW_TEXT), inside the database.
    """
    from rich.table import Table

    from snds import identifiers, warehouse
    from snds.cli_common import EXIT_TOOL, EXIT_USAGE, fail_reporting
    from snds.ingest.quarantine import quarantine_summary

    try:
        identifiers.delivery_id(delivery_id)
    except identifiers.InvalidIdentifier as error:
        fail_reporting(str(error), EXIT_USAGE, as_json)
    target = database or config.database_path()
    try:
        with warehouse.connect(target) as con:
            warehouse.require_landing(con, target)
            known = con.execute("select count(*) from landing.deliveries where DELIVERY_ID = ?", [delivery_id])
            if not (known.fetchone() or (0,))[0]:
                fail_reporting(f"delivery {delivery_id} was never ingested", EXIT_USAGE, as_json, delivery_id)
            groups = quarantine_summary(con, delivery_id)
    except warehouse.WarehouseError as error:
        fail_reporting(str(error), EXIT_TOOL, as_json, delivery_id)
    if as_json:
        click.echo(json.dumps({"delivery": delivery_id, "groups": [g.as_json() for g in groups]}, indent=2))
        return
    if not groups:
        console.print(f"delivery {delivery_id}: nothing quarantined")
        return
    table = Table("file", "column", "reason", "expected", "lines", "first lines", title=f"quarantine of {delivery_id}")
    for g in groups:
        first = ", ".join(str(n) for n in g.first_lines) + (" ..." if g.lines > len(g.first_lines) else "")
        table.add_row(g.file, g.column or "(line)", g.reason, g.expected or "", str(g.lines), first)
    console.print(table)


@main.command("audit")
@click.option("--project", "project_id", default=None, metavar="ID", help="Only this project's life.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the latest N events.")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON on stdout.")
def audit_trail(project_id: str | None, limit: int | None, database: Path | None, as_json: bool) -> None:
    """The audit trail (audit.events): time, action, outcome, who and what, oldest first.

    With --project, a project's whole life: its key, builds, imports, exports and closure (kept after it closed).
    """
    from rich.table import Table

    from snds import audit, identifiers, warehouse
    from snds.cli_common import EXIT_TOOL, EXIT_USAGE

    try:
        if project_id is not None:
            identifiers.project_id(project_id)
        with warehouse.connect(database or config.database_path()) as con:
            found = audit.events(con, project_id, limit)
    except identifiers.InvalidIdentifier as error:
        fail(str(error), EXIT_USAGE)
    except warehouse.WarehouseError as error:
        fail(str(error), EXIT_TOOL)
    if as_json:
        click.echo(json.dumps({"project": project_id, "events": [e.as_json() for e in found]}, indent=2))
        return
    title = f"life of project {project_id}" if project_id else "audit trail"
    if not found:
        console.print(f"{title}: no event")
        return
    table = Table("time", "action", "outcome", "who", "what", title=f"{title} (audit.events)")
    for event in found:
        table.add_row(f"{event.at:%Y-%m-%d %H:%M:%S}", event.action, event.outcome, event.actor, event.summary)
    console.print(table)


@main.command("reference-delivery")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@reference_option
def reference_delivery(out: Path, reference: Path | None) -> None:
    """Package the dictionary's code lists as a delivery in OUT, to load the nomenclatures with `snds ingest`."""
    from snds.catalog.committed import load_tables
    from snds.reference_delivery import build_reference_delivery

    try:
        with console.status("packaging the nomenclatures"):
            built = build_reference_delivery(reference or config.reference_dir(), out, load_tables())
    except FileExistsError as error:
        fail(str(error))
    console.print(f"reference delivery {out}: {built.files} code lists, {built.rows} rows")
    if built.missing:
        console.print(f"[yellow]not in the dictionary, left empty:[/] {', '.join(built.missing)}")


def _demo_platform_key() -> None:
    """The demo's platform key: a random secret in data/secrets (ignored by git), loaded once."""
    import duckdb

    from snds.keys import store
    from snds.keys.material import read_secret, write_new_secret

    with duckdb.connect(str(config.database_path())) as con:
        active = [k for k in store.list_keys(con) if k.scope == store.PLATFORM and k.status == "active"]
        if active:
            console.print(f"platform key {active[0].key_id} already loaded")
            return
        secret_file = DEMO_SECRET
        if not secret_file.exists():
            write_new_secret(secret_file)
        key_id = store.init_platform(con, read_secret(secret_file, None))
    console.print(f"platform key {key_id} loaded from {secret_file} (a demo secret, mode 0600, not in git)")


def _demo_project_keys() -> None:
    """A key for each research project of projects/ that has none: `dbt build` then builds the projects too."""
    import duckdb

    from snds.keys import store
    from snds.projects.build import definitions_in

    with duckdb.connect(str(config.database_path())) as con:
        keyed = {k.scope for k in store.list_keys(con) if k.status == "active"}
        for path in definitions_in():
            if store.project_scope(path.stem) in keyed:
                console.print(f"project {path.stem}: key already loaded")
            else:
                console.print(f"project {path.stem}: key {store.init_project(con, path.stem)} created")


def _demo_linkage_imports(delivery: Path) -> None:
    """The external cohort of each linked project (projects/P_LINK_*.yml), from the files `snds synth --linkage`
    wrote beside the demo's delivery, imported once as `snds project import` would."""
    from snds.projects.build import definitions_in
    from snds.projects.definition import load_definition
    from snds.synth import linkage_dir
    from snds.synth.linkage import import_for_projects

    directory = linkage_dir(delivery)
    if not directory.is_dir():
        fail(f"no linkage inputs in {directory}: remove {delivery} and run `make demo` again to generate them")
    for done in import_for_projects(config.database_path(), directory, [load_definition(p) for p in definitions_in()]):
        console.print(f"imported {done}")


def _demo_projects(ctx: click.Context) -> None:
    """Each example project built as `snds project build ID` builds it (its authorisation checked, its page
    published, small counts suppressed)."""
    from snds.projects.build import definitions_in
    from snds.projects.commands import project_build

    for path in definitions_in():
        ctx.invoke(project_build, project_id=path.stem, database=None, report_dir=None)


def _demo_docs() -> None:
    """The documentation site, from the parse kept for the checkout (dbt's own would parse the whole project again:
    the database's path is part of its profile). Every node is compiled but the 2,477 generated staging models and
    their tests, whose SQL the site shows as written (compiled, it only adds the relations' quoted names): compiling
    them took 60 to 80 of the step's 83 to 113 s. `dbt docs generate --static` by hand compiles everything."""
    from snds.catalog.generate import STAGING_ROOT
    from snds.dbt import dbt_database, parse_project, run_dbt

    with dbt_database(config.database_path()):
        manifest = parse_project("--quiet")
        run_dbt("compile", "--quiet", "--exclude", f"path:{STAGING_ROOT}", manifest=manifest)  # writes manifest.json
        run_dbt("docs", "generate", "--static", "--no-compile", manifest=manifest)


DEMO_RECIPIENT_KEY = config.PROJECT_ROOT / "data" / "secrets" / "demo-recipient.key"
DEMO_RECIPIENT_PUB = "demo-recipient.pub"  # the file projects/P_T2D.yml names, in data/recipients/
DEMO_EXPORT = "P_T2D"


def _demo_export(ctx: click.Context) -> None:
    """Export P_T2D to data/exports/P_T2D/, encrypted to the demo's recipient, whose age identity (mode 0600, in
    data/secrets, never printed) and public key (data/recipients/demo-recipient.pub) are made once."""
    from snds.export.package import EXPORTS_DIR
    from snds.export.recipients import RECIPIENTS_DIR, make_identity, public_key_of
    from snds.projects.export_commands import export

    public_file = RECIPIENTS_DIR / DEMO_RECIPIENT_PUB
    if not DEMO_RECIPIENT_KEY.exists():
        make_identity(DEMO_RECIPIENT_KEY, public_file)
        console.print(f"demo recipient: identity {DEMO_RECIPIENT_KEY} (mode 0600, not in git), key {public_file}")
    elif not public_file.exists():
        public_file.parent.mkdir(parents=True, exist_ok=True)
        public_file.write_text(public_key_of(DEMO_RECIPIENT_KEY) + "\n", encoding="ascii")
    ctx.invoke(
        export,
        project_id=DEMO_EXPORT,
        destination=EXPORTS_DIR / DEMO_EXPORT,
        replace=True,
        database=None,
        projects_dir=None,
        recipients_dir=None,
        as_json=False,
    )
    console.print(f"decrypt with: age -d -i {DEMO_RECIPIENT_KEY} FILE.age (see {EXPORTS_DIR / DEMO_EXPORT}/README.md)")


@main.command()
@reference_option
@click.pass_context
def demo(ctx: click.Context, reference: Path | None) -> None:
    """The main job on DuckDB: catalog -> deliveries -> ingest -> validate -> promote (the pseudonymised base) ->
    projects -> export -> documentation site."""
    import time

    from snds.dbt import DbtError

    started = time.monotonic()
    steps: list[tuple[str, float]] = []

    def step(name: str, action: Callable[[], object]) -> None:
        console.rule(name)
        begun = time.monotonic()
        action()
        steps.append((name, time.monotonic() - begun))

    try:
        step("catalog", lambda: ctx.invoke(catalog, reference=reference))
        step("labels", lambda: ctx.invoke(labels, reference=reference))
        step("landing", lambda: ctx.invoke(landing_init))
        step("keys", _demo_platform_key)
        step("project keys", _demo_project_keys)
        deliveries = config.PROJECT_ROOT / "data" / "deliveries"
        codes = deliveries / REFERENCE_DELIVERY
        if not codes.exists():
            step("codes", lambda: ctx.invoke(reference_delivery, out=codes, reference=reference))
        step("ingest codes", lambda: ctx.invoke(ingest, delivery=codes))
        step("validate codes", lambda: ctx.invoke(validate, delivery_id=codes.name))
        delivery = deliveries / DEMO_DELIVERY
        if not delivery.exists():
            step(
                "synth",
                lambda: ctx.invoke(
                    synth,
                    out=delivery,
                    patients=2000,
                    years_text="2019-2020",
                    seed=1,
                    faults=0.001,
                    fault_kinds="ingestion",
                    linkage_share=0.1,
                    reference=reference,
                ),
            )
        step("ingest", lambda: ctx.invoke(ingest, delivery=delivery))
        step("validate", lambda: ctx.invoke(validate, delivery_id=delivery.name))
        step("linkage imports", lambda: _demo_linkage_imports(delivery))
        # as the platform runs: the base built from what the deliveries touch, then each project on request (the
        # whole catalog's `dbt build`, 2,477 staging tables mostly empty here, is CI's: test_duckdb_build.py)
        step("promote", lambda: ctx.invoke(promote, delivery_ids=(codes.name, delivery.name), database=None))
        step("projects", lambda: _demo_projects(ctx))
        step("export", lambda: _demo_export(ctx))
        step("dbt docs", _demo_docs)
        step(
            "key scan",
            lambda: ctx.invoke(
                scan_keys,
                paths=(),
                scan_git=True,
                secret_file=DEMO_SECRET if DEMO_SECRET.exists() else None,
                as_json=False,
            ),
        )
    except DbtError as error:
        fail(str(error))
    site = config.PROJECT_ROOT / "target" / "static_index.html"
    console.rule("done")
    for name, seconds in steps:
        console.print(f"  {name:<14} {seconds:7.1f} s")
    console.print(f"  {'total':<14} {time.monotonic() - started:7.1f} s")
    console.print(f"Database: {config.database_path()}")
    console.print(f"Documentation site (one static file, open it in a browser): {site}")


@main.group()
def oracle() -> None:
    """Oracle, the production engine: offline compile and grammar check."""


@oracle.command("check")
@click.option("--no-compile", is_flag=True, help="Check target/oracle as it is, without compiling again.")
def oracle_check(no_compile: bool) -> None:
    """Compile every model and test for Oracle without a database, then grammar-check all the SQL."""
    from snds.dbt import ORACLE_OFFLINE_TARGET, ORACLE_TARGET_PATH, DbtError, compile_oracle_offline, parse_project
    from snds.oracle_check import check_compiled_project

    if not no_compile:
        try:
            with console.status("compiling the project for Oracle (offline)"):
                parsed = parse_project("--quiet", target_path=ORACLE_TARGET_PATH, dbt_target=ORACLE_OFFLINE_TARGET)
                compile_oracle_offline("--quiet", manifest=parsed)  # the parse kept for the checkout, if any
        except DbtError as error:
            fail(str(error))
    manifest = json.loads((ORACLE_TARGET_PATH / "manifest.json").read_text(encoding="utf-8"))
    with console.status("checking the compiled SQL against the Oracle grammar"):
        report = check_compiled_project(ORACLE_TARGET_PATH, manifest)
    if report.failures:
        fail(f"{len(report.failures)} files Oracle would refuse:\n{report.describe()}")
    console.print(
        f"Oracle check passed: {report.compiled_files} compiled files and "
        f"{report.contract_tables} contracted tables' DDL"
    )


def _write_checked(statements: list[str], out: Path) -> None:
    from snds.oracle_ingest import check_oracle_script, render_script

    findings = check_oracle_script(statements)
    if findings:
        fail("\n".join(f"statement {i}: {finding}" for i, finding in findings[:30]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_script(statements), encoding="utf-8")
    console.print(f"{len(statements)} statements written to {out}, Oracle check passed")


@oracle.command("landing-ddl")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=Path("target/oracle/landing.sql"))
def oracle_landing_ddl(out: Path) -> None:
    """Write the Oracle DDL of every landing table and its DML error log (for the DBA; see the runbook)."""
    from snds.catalog.committed import load_tables
    from snds.oracle_ingest import landing_ddl

    _write_checked(landing_ddl(load_tables().values()), out)


@oracle.command("ingest-sql")
@click.argument("delivery", type=click.Path(path_type=Path, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None)
def oracle_ingest_sql(delivery: Path, out: Path | None) -> None:
    """Verify DELIVERY, then write the Oracle script that loads it (external tables, LOG ERRORS inserts)."""
    from snds.catalog.committed import load_tables
    from snds.ingest import DeliveryRefused
    from snds.ingest.manifest import read_manifest
    from snds.ingest.verify import verify_delivery
    from snds.oracle_ingest import delivery_sql

    try:
        manifest = read_manifest(delivery)
        verified = verify_delivery(manifest, load_tables())
    except DeliveryRefused as error:
        fail(f"delivery {delivery.name} refused: {error}")
    _write_checked(delivery_sql(manifest.delivery_id, verified), out or Path(f"target/oracle/{delivery.name}.sql"))


if __name__ == "__main__":
    main()
