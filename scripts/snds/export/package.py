"""`snds project export ID`: the package a research project receives in its own secure environment.

What leaves: each extract of the project's last build (`project_<id>.<TABLE>`, SNDS names kept) and its cohort, as
Parquet and, when `outputs.export.formats` asks, CSV and SAS transport; the project page (already small-cell
suppressed) as the package's only aggregate; `MANIFEST.csv` (the delivery contract: file;table;rows;sha256, the
digests of the plaintext files); `export.json` (provenance and schema) and a `README.md`.

How it leaves (docs/export.md):
1. before anything is written: the authorisation allows work today, the project key is active, the recipients'
   public keys parse, the last build comes from this definition;
2. the plaintext files are written only inside a private temporary directory (mode 0700), removed in a `finally`
   whatever happens (exception, Ctrl-C, SIGTERM);
3. checks on the written files themselves: every column within the perimeter (plus NUM_ENQ), no value equal to a
   platform or CNAM pseudonym (`scan`), no count of the page in [1, threshold);
4. every file but README.md and export.json is encrypted with age to every recipient, into a hidden staging
   directory beside the destination, renamed into place at the end: the destination gets a whole package or
   nothing;
5. `audit.events` gets a `project.export` event, `exported` or `refused` with the reasons.

Same data, same bytes: rows are ordered by all their columns, Parquet is written with fixed settings, no file
carries the time of the export (export.json does, and says so), XPT header stamps are fixed.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from snds import audit, config, warehouse
from snds.export import scan
from snds.export.recipients import RECIPIENTS_DIR, RecipientError, ResolvedRecipient, resolve
from snds.export.xpt import write_xpt
from snds.ingest.manifest import MANIFEST_NAME, REQUIRED_COLUMNS
from snds.projects import generate, linkage_models
from snds.projects.definition import ProjectDefinition

ACTION = "project.export"
PACKAGE_FORMAT = "snds-project-export/1"
EXPORTS_DIR = config.PROJECT_ROOT / "data" / "exports"
COHORT = "cohort"
COHORT_COLUMNS = ("NUM_ENQ", "index_date", "end_of_followup")
# The build record's outputs that are not extracts (a linkage's report stays on the platform, as the attrition does)
SUMMARIES = (*generate.SUMMARIES, linkage_models.REPORT)
PSEUDONYM_COLUMN = "NUM_ENQ"
SUFFIXES = {"parquet": ".parquet", "csv": ".csv", "xpt": ".xpt"}
ENCRYPTED_SUFFIX = ".age"
PLAIN_FILES = ("README.md", "export.json", "SHA256SUMS")  # what the destination holds unencrypted
SUMS_NAME = "SHA256SUMS"
# Fixed writer settings: the same rows give the same bytes (DuckDB writes no time into a Parquet file).
PARQUET_OPTIONS = "format parquet, compression zstd, compression_level 3, row_group_size 122880"
CSV_OPTIONS = "format csv, header true, delimiter ';', quote '\"', escape '\"', dateformat '%Y-%m-%d'"
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")
_PAGE_SECTIONS = ("attrition", "profile", "extracts")
_NOT_COUNTS = frozenset({"step", "year"})
COLUMN_LABELS = {
    "NUM_ENQ": "Numéro d'enquête: the person's pseudonym in this project only",
    "index_date": "Index date: the person's entry into the cohort",
    "end_of_followup": "End of follow-up",
}


class ExportRefused(Exception):
    """A check failed: nothing left the platform. `reasons` name the project, file, column and counts, no value."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("\n".join(reasons))


class DestinationError(ValueError):
    """The destination cannot take a package (exists and is not an earlier one, or --replace was not given)."""


@dataclass(frozen=True)
class Extract:
    relation: str  # the table of project_<id>
    table: str  # SNDS table name, or `cohort`
    template: str  # catalog template (labels), or `cohort`
    allowed: tuple[str, ...]  # the columns the perimeter allows in it (upper case), NUM_ENQ included
    columns: tuple[tuple[str, str], ...]  # (name, SQL type) as the table holds them


@dataclass(frozen=True)
class PackageFile:
    file: str  # the plaintext name (the encrypted one adds .age)
    table: str
    format: str  # parquet, csv, xpt or json (the page)
    rows: int
    sha256: str  # of the plaintext file
    size: int  # plaintext bytes


@dataclass
class ExportResult:
    project: str
    destination: Path
    files: list[PackageFile]
    recipients: list[ResolvedRecipient]
    encrypted_bytes: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "status": "exported",
            "destination": str(self.destination),
            "files": [f.__dict__ for f in self.files],
            "recipients": [{"name": r.name, "public_key": r.public_key, "sha256": r.sha256} for r in self.recipients],
            "encrypted_bytes": self.encrypted_bytes,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


class Progress:
    """What a long export reports: rows and files done. The command shows it with rich; the default is silent."""

    def start(self, files: int, rows: int) -> None:
        pass

    def done(self, name: str, rows: int) -> None:
        pass

    def phase(self, text: str) -> None:
        pass


# --- the destination ------------------------------------------------------------------------------------------


def check_destination(destination: Path, replace: bool) -> Path:
    """The destination as an absolute path; DestinationError when it cannot receive a package."""
    destination = Path(os.path.abspath(destination))
    if destination.is_symlink():
        raise DestinationError(f"{destination} is a symbolic link: give the directory itself")
    if destination.exists():
        if not destination.is_dir():
            raise DestinationError(f"{destination} exists and is not a directory")
        if any(destination.iterdir()):
            if not replace:
                raise DestinationError(f"{destination} is not empty: give another --to, or --replace an earlier export")
            if not (destination / "export.json").is_file():
                raise DestinationError(f"{destination} is not an earlier export (no export.json): it is not replaced")
    return destination


@contextmanager
def _private_directory() -> Iterator[Path]:
    """A directory only this user can enter (mkdtemp: 0700) for the plaintext files, removed whatever happens."""
    path = Path(tempfile.mkdtemp(prefix="snds-export-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM ends the export like Ctrl-C (KeyboardInterrupt), so the `finally` blocks remove every file."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- reading the project ----------------------------------------------------------------------------------------


def _extracts(
    con: duckdb.DuckDBPyConnection, definition: ProjectDefinition, outputs: list[str], models_dir: Path
) -> list[Extract]:
    """The cohort and the extracts of the last build: outputs of the build record that are not summaries, whose
    model is marked `meta: {snds_extract: TABLE}` and whose table is a physical table the definition extracts."""
    from snds.projects.generate import folder, schema

    relation_schema = schema(definition)
    marked = _marked_extracts(models_dir / folder(definition))
    physical = {p.name: (t, p) for t in definition.extract_tables for p in t.tables}
    present = {
        row[0]: row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [relation_schema]
        ).fetchall()
    }
    found: list[Extract] = []
    problems: list[str] = []
    names = [COHORT, *(o for o in outputs if o not in SUMMARIES)]
    for name in names:
        if not _TABLE_NAME.fullmatch(name) or name not in present:
            problems.append(f"project {definition.id}: the build record lists {name!r}, absent from {relation_schema}")
            continue
        subject = (definition.linkage.subject,) if definition.linkage is not None else ()  # a linked cohort's NS
        if name == COHORT:
            template, allowed = COHORT, (*COHORT_COLUMNS, *subject)
        elif name not in physical or name not in marked:
            problems.append(
                f"project {definition.id}: {relation_schema}.{name} is not an extract of the definition "
                "(no `snds_extract` model for it, or not an extracted physical table)"
            )
            continue
        else:
            template = physical[name][0].template
            allowed = (PSEUDONYM_COLUMN, *subject, *physical[name][1].columns)
        columns = tuple((str(c), str(t)) for c, t, *_ in con.execute(f'describe {relation_schema}."{name}"').fetchall())
        found.append(Extract(name, name, template, tuple(a.upper() for a in allowed), columns))
    if problems:
        raise ExportRefused(problems)
    return found


_META = re.compile(r"""['"]?snds_extract['"]?\s*[:=]\s*['"]?([A-Za-z][A-Za-z0-9_]*)""")


def _marked_extracts(folder: Path) -> set[str]:
    """Tables named by `meta: {snds_extract: TABLE}` in the project's models (SQL config or YAML)."""
    marked: set[str] = set()
    for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
        if path.suffix in (".sql", ".yml", ".yaml") and path.is_file():
            marked |= set(_META.findall(path.read_text(encoding="utf-8")))
    return marked


def dictionary_labels(templates: set[str], reference: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """Each template's label and column labels from the SNDS dictionary (empty when it is not there)."""
    from snds.catalog.dictionary import DictionaryError, read_schema_table, schema_table_paths

    if not (reference / "schemas").is_dir():
        return {}
    paths = schema_table_paths(reference)
    labels: dict[str, tuple[str, dict[str, str]]] = {}
    for template in sorted(templates):
        if template in paths:
            try:
                table = read_schema_table(paths[template], reference)
            except (DictionaryError, KeyError, ValueError):
                continue
            labels[template] = (table.label.strip(), {c.name.upper(): c.label.strip() for c in table.columns})
    return labels


# --- checks -----------------------------------------------------------------------------------------------------


def small_cells(page: dict[str, Any], threshold: int) -> list[str]:
    """Key paths of the page's counts in [1, threshold): what the package's aggregate may not show."""
    found: list[str] = []

    def walk(value: Any, where: str, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}", k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]", key)
        elif isinstance(value, int) and not isinstance(value, bool) and key not in _NOT_COUNTS:
            if 1 <= value < threshold:
                found.append(where)

    for section in _PAGE_SECTIONS:
        walk(page.get(section), section, section)
    return found


def _column_problems(project: str, file: str, extract: Extract, names: list[str]) -> list[str]:
    outside = [n for n in names if n.upper() not in extract.allowed]
    return [f"project {project}: file {file}: column {n} is outside the perimeter of {extract.table}" for n in outside]


# --- writing ----------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write(
    con: duckdb.DuckDBPyConnection,
    extract: Extract,
    file_format: str,
    path: Path,
    relation_schema: str,
    labels: dict[str, str],
) -> int:
    query = f'select * from {relation_schema}."{extract.relation}" order by all'
    target = "'" + str(path).replace("'", "''") + "'"
    if file_format == "xpt":
        write_xpt(con, query, path, extract.table, labels)
        found = con.execute(f'select count(*) from {relation_schema}."{extract.relation}"').fetchall()[0]
        return int(found[0]) if found else 0
    options = PARQUET_OPTIONS if file_format == "parquet" else CSV_OPTIONS
    written = con.execute(f"copy ({query}) to {target} ({options})").fetchall()[0]
    return int(written[0]) if written else 0


def _manifest(path: Path, files: list[PackageFile]) -> None:
    """MANIFEST.csv in the delivery contract (snds.ingest.manifest): `;`, UTF-8, header file;table;rows;sha256."""
    lines = [";".join(REQUIRED_COLUMNS)] + [f"{f.file};{f.table};{f.rows};{f.sha256}" for f in files]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _encrypt(source: Path, target: Path, recipients: list[ResolvedRecipient]) -> None:
    import pyrage

    pyrage.encrypt_file(str(source), str(target), [r.parsed() for r in recipients])


# --- the export -------------------------------------------------------------------------------------------------


def export_project(
    definition: ProjectDefinition,
    database: Path,
    destination: Path,
    *,
    recipients_dir: Path = RECIPIENTS_DIR,
    replace: bool = False,
    today: date | None = None,
    reference: Path | None = None,
    models_dir: Path | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export the project's last build to `destination` (see the module's docstring); ExportRefused with the
    reasons when a check fails (audited, nothing left behind), DestinationError, WarehouseError."""
    from snds.projects.check import KEY_MISSING, KEY_PRESENT, check_project, summary_lines
    from snds.projects.page import ProjectPageError, page_report, read_built

    today = today or date.today()
    reference = reference or config.reference_dir()
    progress = progress or Progress()
    destination = check_destination(destination, replace)
    warehouse.check_path(database)
    if not database.is_file():
        raise warehouse.WarehouseError(f"no database at {database}")
    progress.phase("checking the definition, the key, the recipients and the build")
    reasons: list[str] = []
    # the check and the build's reading open the database again while `con` holds it: DuckDB shares the
    # instance within a process, so the file is opened once
    with warehouse.connect(database) as con:
        checked = check_project(definition, today, database, reference)
        reasons += [f"project {definition.id}: {e}" for e in checked.errors]
        if checked.project_key == KEY_MISSING:
            reasons.append(f"project {definition.id}: no active project key (retired, or never made)")
        elif checked.project_key != KEY_PRESENT:
            raise warehouse.WarehouseError(f"project {definition.id}: its key cannot be checked now ({database})")
        recipients: list[ResolvedRecipient] = []
        try:
            recipients = resolve(definition.outputs.export.recipients, recipients_dir)
        except RecipientError as error:
            reasons += [f"project {definition.id}: {line}" for line in str(error).splitlines()]
        built = None
        if not reasons:
            try:
                built = read_built(database, definition)
            except ProjectPageError as error:
                reasons.append(str(error))
        audit.create_audit_trail(con)
        who = getpass.getuser()
        try:
            if reasons or built is None:
                raise ExportRefused(reasons)
            page = page_report(definition, built, summary_lines(checked), list(checked.warnings))
            page.pop("written_at", None)  # the package carries no time but export.json's
            result = _package(
                con, definition, built, page, destination, recipients, reference, models_dir, replace, progress
            )
        except ExportRefused as refusal:
            detail = {"who": who, "destination": str(destination), "reasons": list(refusal.reasons)}
            audit.record(con, ACTION, definition.id, "refused", detail)
            raise
        audit.record(
            con,
            ACTION,
            definition.id,
            "exported",
            {
                "who": who,
                "destination": str(result.destination),
                "definition_sha256": definition.sha256,
                "dbt_invocation_id": built.dbt_invocation_id,
                "formats": list(definition.outputs.export.formats),
                "files": [{"file": f.file, "table": f.table, "rows": f.rows, "sha256": f.sha256} for f in result.files],
                "recipients": [{"name": r.name, "public_key": r.public_key, "sha256": r.sha256} for r in recipients],
            },
        )
    return result


def _package(
    con: duckdb.DuckDBPyConnection,
    definition: ProjectDefinition,
    built: Any,
    page: dict[str, Any],
    destination: Path,
    recipients: list[ResolvedRecipient],
    reference: Path,
    models_dir: Path | None,
    replace: bool,
    progress: Progress,
) -> ExportResult:
    from snds.projects.build import git_commit
    from snds.projects.generate import MODELS_ROOT, schema

    relation_schema = schema(definition)
    formats = definition.outputs.export.formats
    threshold = definition.outputs.small_cell_threshold
    models = models_dir or config.PROJECT_ROOT / MODELS_ROOT
    extracts = _extracts(con, definition, [name for name, _ in built.outputs], models)
    labels = dictionary_labels({e.template for e in extracts}, reference)
    rows_of = dict(built.outputs)
    seconds = {"write": 0.0, "checks": 0.0, "encrypt": 0.0}
    con.execute("set preserve_insertion_order = true")
    with _interruptible(), _private_directory() as plain:
        # 1. the plaintext files, inside the private directory only
        progress.start(len(extracts) * len(formats) + 1, sum(int(rows_of.get(e.relation, 0)) for e in extracts))
        files: list[PackageFile] = []
        by_file: dict[str, tuple[Extract, str]] = {}
        for extract in extracts:
            column_labels = _column_labels(extract, labels)
            for file_format in formats:
                name = extract.table + SUFFIXES[file_format]
                path = plain / name
                begun = time.monotonic()
                rows = _write(con, extract, file_format, path, relation_schema, column_labels)
                seconds["write"] += time.monotonic() - begun
                files.append(PackageFile(name, extract.table, file_format, rows, _sha256(path), path.stat().st_size))
                by_file[name] = (extract, file_format)
                progress.done(name, rows if file_format == formats[0] else 0)
        page_name = f"{definition.id}.project.json"
        page_path = plain / page_name
        page_path.write_text(json.dumps(page, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        files.append(PackageFile(page_name, "project_page", "json", 1, _sha256(page_path), page_path.stat().st_size))
        progress.done(page_name, 0)
        # 2. the checks, on the files themselves
        progress.phase("checking the files: perimeter, pseudonyms, small cells")
        begun = time.monotonic()
        problems: list[str] = []
        for name, (extract, file_format) in by_file.items():
            problems += _column_problems(
                definition.id, name, extract, scan.file_columns(con, plain / name, file_format)
            )
        try:
            hits = scan.scan_files(con, [(plain / name, file_format) for name, (_, file_format) in by_file.items()])
        except scan.ScanUnavailable as error:
            raise ExportRefused([f"project {definition.id}: {error}"]) from None
        problems += [
            f"project {definition.id}: file {hit.file}: column {hit.column}: {hit.count} value"
            f"{'s are' if hit.count > 1 else ' is'} a platform or CNAM pseudonym"
            for hit in hits
        ]
        problems += [
            f"project {definition.id}: file {page_name}: {where}: a count under {threshold} is shown"
            for where in small_cells(page, threshold)
        ]
        seconds["checks"] = time.monotonic() - begun
        if problems:
            raise ExportRefused(problems)
        # 3. what describes the package
        _manifest(plain / MANIFEST_NAME, files)
        exported_at = datetime.now(UTC).isoformat(timespec="seconds")
        description = _description(
            definition, built, files, extracts, labels, recipients, exported_at, git_commit(config.PROJECT_ROOT)
        )
        # 4. encryption into a staging directory beside the destination, renamed into place at the end
        progress.phase("encrypting")
        begun = time.monotonic()
        result = ExportResult(definition.id, destination, files, recipients, seconds=seconds)
        _deliver(plain, [*(f.file for f in files), MANIFEST_NAME], description, destination, recipients, replace)
        seconds["encrypt"] = time.monotonic() - begun
        result.encrypted_bytes = sum(p.stat().st_size for p in destination.iterdir() if p.suffix == ENCRYPTED_SUFFIX)
    return result


def _column_labels(extract: Extract, labels: dict[str, tuple[str, dict[str, str]]]) -> dict[str, str]:
    by_column = labels.get(extract.template, ("", {}))[1]
    return {name: COLUMN_LABELS.get(name) or by_column.get(name.upper(), "") for name, _ in extract.columns}


def _deliver(
    plain: Path,
    names: list[str],
    description: dict[str, Any],
    destination: Path,
    recipients: list[ResolvedRecipient],
    replace: bool,
) -> None:
    created = [p for p in (destination.parent, *destination.parent.parents) if not p.exists()]
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent))
    previous: Path | None = None
    try:
        sums = []
        for name in names:
            target = staging / (name + ENCRYPTED_SUFFIX)
            _encrypt(plain / name, target, recipients)
            sums.append(f"{_sha256(target)}  {target.name}")
        (staging / SUMS_NAME).write_text("\n".join(sums) + "\n", encoding="ascii")
        (staging / "export.json").write_text(
            json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (staging / "README.md").write_text(_readme(description), encoding="utf-8")
        os.chmod(staging, 0o755)
        if destination.exists():
            if any(destination.iterdir()):
                previous = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old-", dir=destination.parent))
                os.rename(destination, previous / "package")
            else:
                destination.rmdir()
        os.rename(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if previous is not None and not destination.exists():
            with suppress(OSError):
                os.rename(previous / "package", destination)
        for folder in created:
            with suppress(OSError):
                folder.rmdir()
        raise
    finally:
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)


# --- export.json and README.md ----------------------------------------------------------------------------------


def _description(
    definition: ProjectDefinition,
    built: Any,
    files: list[PackageFile],
    extracts: list[Extract],
    labels: dict[str, tuple[str, dict[str, str]]],
    recipients: list[ResolvedRecipient],
    exported_at: str,
    exporter_commit: str,
) -> dict[str, Any]:
    by_table = {e.table: e for e in extracts}
    threshold = definition.outputs.small_cell_threshold
    described = []
    for f in files:
        entry: dict[str, Any] = {
            "file": f.file,
            "encrypted_file": f.file + ENCRYPTED_SUFFIX,
            "table": f.table,
            "format": f.format,
        }
        extract = by_table.get(f.table)
        if extract is not None:
            column_labels = _column_labels(extract, labels)
            cohort_label = "The cohort: one row per person"
            entry["label"] = cohort_label if f.table == COHORT else labels.get(extract.template, ("",))[0]
            entry["columns"] = [
                {"name": name, "type": data_type, "label": column_labels.get(name, "")}
                for name, data_type in extract.columns
            ]
        else:
            entry["label"] = "The project page: attrition, cohort by year, sex and age band, extract rows (suppressed)"
        described.append(entry)
    authorisation = definition.authorisation
    return {
        "format": PACKAGE_FORMAT,
        "project": definition.id,
        "title": definition.title,
        "authorisation": {
            "reference": authorisation.reference,
            "holder": authorisation.holder,
            "granted": authorisation.granted.isoformat(),
            "expires": authorisation.expires.isoformat(),
        },
        "definition_sha256": definition.sha256,
        "build": {
            "git_commit": built.git_commit,
            "dbt_invocation_id": built.dbt_invocation_id,
            "deliveries": list(built.deliveries),
        },
        "exporter_git_commit": exporter_commit,
        "exported_at": exported_at,
        "exported_at_note": "the time of this export: written here only, in no data file, so that two exports of "
        "unchanged data give the same data files and the same MANIFEST.csv",
        "small_cell_rule": {
            "threshold": threshold,
            "rule": f"counts from 1 to {threshold - 1} are suppressed, with secondary suppression, in the package's "
            f"only aggregate, {definition.id}.project.json; the extracts are person-level rows for the project",
        },
        "encryption": {
            "format": "age v1 (https://age-encryption.org/v1), X25519 recipients",
            "recipients": [{"name": r.name, "public_key": r.public_key, "sha256": r.sha256} for r in recipients],
            "encrypted": [f.file + ENCRYPTED_SUFFIX for f in files] + [MANIFEST_NAME + ENCRYPTED_SUFFIX],
            "plaintext": list(PLAIN_FILES),
            "note": "MANIFEST.csv is encrypted too: its rows are exact counts (the cohort's size among them). Its "
            "sha256 digests are of the plaintext (decrypted) files; SHA256SUMS lists the encrypted files'.",
        },
        "files": described,
        "labels": "the SNDS dictionary's (schema-snds, MPL-2.0)"
        if labels
        else "not installed: no SNDS dictionary at export time",
    }


def _readme(description: dict[str, Any]) -> str:
    project = description["project"]
    authorisation = description["authorisation"]
    lines = [
        f"# Export of research project {project}",
        "",
        f"{description['title']}. Authorisation {authorisation['reference']} ({authorisation['holder']}), valid "
        f"from {authorisation['granted']} to {authorisation['expires']}. Exported {description['exported_at']} "
        f"from the build {description['build']['dbt_invocation_id']} (definition sha256 "
        f"{description['definition_sha256'][:12]}, deliveries {', '.join(description['build']['deliveries'])}).",
        "",
        "## What is here",
        "",
        "Every file is encrypted with age (`.age`) to the recipients of the project definition, but this README,",
        "`export.json` (provenance, columns, types and labels of each file) and `SHA256SUMS` (digests of the",
        "encrypted files). Decrypted, the directory is like a delivery: `MANIFEST.csv` (`file;table;rows;sha256`,",
        "`;`-separated, the digests of the decrypted files) and the files it lists. Tables and columns keep their",
        "SNDS names; the person is `NUM_ENQ`, this project's own pseudonym. Rows are ordered by all their columns.",
        f"`{project}.project.json` is the project page, the only aggregate: counts under "
        f"{description['small_cell_rule']['threshold']} are suppressed.",
        "",
        "## Verify and decrypt",
        "",
        "```sh",
        "sha256sum -c SHA256SUMS                    # the encrypted files arrived whole (no key needed)",
        'for f in *.age; do age -d -i key.txt -o "${f%.age}" "$f"; done   # key.txt: your age identity',
        "awk -F';' 'NR > 1 {print $4 \"  \" $1}' MANIFEST.csv | sha256sum -c   # every decrypted file",
        "```",
        "",
        "Then delete the decrypted files when the work ends, as the project's authorisation requires.",
        "Parquet reads in DuckDB (`select * from 'ER_PHA_F.parquet'`), pandas or R (arrow). CSV is `;`-separated",
        "UTF-8 with a header, `.` as decimal mark, dates `YYYY-MM-DD`, an empty field for a missing value. XPT is SAS",
        "transport version 8 (SAS: `%xpt2loc(libref=work, filespec='ER_PHA_F.xpt')`; Python: pyreadstat; R: haven):",
        "numbers are doubles, dates keep the DATE format, a missing text is blank.",
        "",
        "## Tables and columns",
    ]
    seen: set[str] = set()
    for entry in description["files"]:
        if "columns" not in entry or entry["table"] in seen:
            continue
        seen.add(entry["table"])
        names = [e["file"] for e in description["files"] if e["table"] == entry["table"]]
        lines += ["", f"### {entry['table']}", "", entry["label"] or "(no label)", "", f"Files: {', '.join(names)}."]
        lines += ["", "| column | type | label |", "|---|---|---|"]
        lines += [
            f"| `{c['name']}` | {c['type']} | {(c['label'] or '').replace('|', '/').replace(chr(10), ' ')} |"
            for c in entry["columns"]
        ]
    lines += ["", f"Labels: {description['labels']}.", ""]
    return "\n".join(lines)
