"""A research project's definition (`projects/<ID>.yml`), loaded into frozen dataclasses and checked.

`load_definition(path)` reads the YAML, validates it against `projects/project.schema.json`, then checks what a
schema cannot: the id against the file name and `snds.identifiers`, the perimeter against the committed catalog
(tables, templates, columns, years), code sets and their codes, criteria, windows and dates. Every problem of the
file is collected and raised together in one `ProjectDefinitionError`, one line each naming the file, the key path
and what was expected. The types below are the contract with the model generator (`snds project build`): the
perimeter arrives expanded to physical tables, years and columns, every default is filled in.

Dates are `datetime.date`; day offsets of windows are relative to the index date, both bounds included.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from snds import identifiers
from snds.catalog.committed import CatalogTable, committed_tables, find_table
from snds.projects.probabilistic import RULES, TRAINING, blocking_rules, training_blocks
from snds.projects.quasi_identifiers import PERSONS_TABLE, QUASI_IDENTIFIERS, person_column
from snds.projects.schema import PROJECTS_DIR, YamlError, key_path, read_yaml, schema_problems

IDENTIFIER_KINDS = ("birth", "residence", "death", "care_date")
CODE_SYSTEMS = ("icd10", "atc", "cip7", "cip13", "ccam", "ald", "ghm")
POSITIONS = ("principal", "related", "associated")
FOLLOW_UP_ENDS = ("study_end", "death_or_study_end", "days")
DEFAULT_SMALL_CELL_THRESHOLD = 11
EXPORT_FORMATS = ("parquet", "csv", "xpt")
DEFAULT_EXPORT_FORMATS = ("parquet",)
DIRECT, CASCADE, PROBABILISTIC = "direct", "cascade", "probabilistic"  # linkage protocols
DEFAULT_SUBJECT = "NS"
DEFAULT_MIN_CRITERIA = 4
DEFAULT_THRESHOLD = 0.95


@dataclass(frozen=True)
class Domain:
    """A kind of event of the event layer: the code systems it is coded in and the products it comes from."""

    name: str
    systems: tuple[str, ...]
    sources: tuple[str, ...]  # empty: the domain has a single source and no `sources` key applies


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in (
        Domain("diagnosis", ("icd10",), ("MCO", "SSR", "HAD", "RIP")),
        Domain("ald", ("ald", "icd10"), ()),
        Domain("dispensing", ("atc", "cip7", "cip13"), ("DCIR",)),
        Domain("act", ("ccam",), ("DCIR", "MCO")),
        Domain("stay", ("ghm",), ("MCO",)),
        Domain("death", ("icd10",), ()),
    )
}
# The domain a criterion reads when it names none: the code system's own.
DEFAULT_DOMAIN = {
    "icd10": "diagnosis",
    "ald": "ald",
    "atc": "dispensing",
    "cip7": "dispensing",
    "cip13": "dispensing",
    "ccam": "act",
    "ghm": "stay",
}
# How each system's codes are written (upper case, no dot or space), as a whole code and as a prefix.
_CODE_SHAPES: dict[str, tuple[str, str, str]] = {
    "icd10": (
        r"[A-Z][0-9]{2}[0-9A-Z+]{0,3}",
        r"[A-Z]([0-9]{1,2}[0-9A-Z+]{0,3})?",
        "a letter and 2 digits, no dot: E11, E119",
    ),
    "atc": (
        r"[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?",
        r"[A-Z]([0-9]{1,2}([A-Z]{1,2}([0-9]{1,2})?)?)?",
        "an ATC class: A, A10, A10B, A10BA, A10BA02",
    ),
    "cip7": (r"[0-9]{7}", r"[0-9]{1,7}", "7 digits"),
    "cip13": (r"[0-9]{13}", r"[0-9]{1,13}", "13 digits"),
    "ccam": (r"[A-Z]{4}[0-9]{3}", r"[A-Z]{1,3}|[A-Z]{4}[0-9]{0,3}", "4 letters and 3 digits: DDAF001"),
    "ald": (r"[0-9]{1,2}", r"(?!)", "an ALD number (1 to 32, or 99), as codes only"),
    "ghm": (
        r"[0-9]{2}[A-Z][0-9]{2}[A-Z0-9]",
        r"[0-9]{1,2}([A-Z]([0-9]{1,2}[A-Z0-9]?)?)?",
        "a GHM: 05M09T, or a prefix: 05M",
    ),
}


class ProjectDefinitionError(ValueError):
    """A definition that cannot be used: every problem of the file, one per line (file: key path: expected)."""

    def __init__(self, path: Path, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{_shown_path(path)}: {where}: {what}" for where, what in problems))


@dataclass(frozen=True)
class Authorisation:
    """The decision that allows the project (CNIL decision or CESREES opinion); valid from `granted` to `expires`."""

    reference: str
    holder: str
    granted: date
    expires: date  # the last valid day

    def problem_on(self, day: date) -> str | None:
        """Why the authorisation does not allow work on `day`, or None when it does."""
        if day > self.expires:
            return f"authorisation {self.reference} expired on {self.expires.isoformat()}"
        if day < self.granted:
            return f"authorisation {self.reference} is granted from {self.granted.isoformat()} only"
        return None


@dataclass(frozen=True)
class PhysicalTable:
    """One table of the base the project may read, with the authorised columns it has (catalog order)."""

    name: str  # catalog spelling: T_MCO19B, ER_PHA_F, ER_PHA_F_2019, IR_BEN_R
    year: int | None  # the catalog's year; None for a table without year (including DCIR's current table)
    columns: tuple[str, ...]


@dataclass(frozen=True)
class PerimeterTable:
    """One entry of `perimeter.tables`: a physical table or a template, expanded with the catalog.

    A PMSI template (`T_MCOaaB`) expands to the yearly tables of the authorised years. A DCIR fact table
    (`ER_PHA_F`) expands to its current table (year None: the build keeps its rows of the authorised years) and the
    yearly archives of those years the catalog has (`ER_PHA_F_2019`). A table without years is itself.
    """

    name: str  # as written in the definition (the key `outputs.extracts` uses), in catalog spelling
    template: str  # the catalog template: T_MCOaaB, ER_PHA_F, IR_BEN_R
    years: tuple[int, ...]  # authorised years, ascending; () for a table without years
    columns: tuple[str, ...]  # authorised columns, catalog order (`columns: all` expanded to every column)
    all_columns: bool  # written `columns: all`
    tables: tuple[PhysicalTable, ...]  # by year, the current table (year None) first


@dataclass(frozen=True)
class Perimeter:
    """What the project may see: tables, columns, years, and the one potential-identifier kind it may see."""

    identifier_kind: str | None  # one of IDENTIFIER_KINDS, or None: every potential identifier is generalised
    tables: tuple[PerimeterTable, ...]  # in the definition's order

    def table(self, name: str) -> PerimeterTable | None:
        return next((t for t in self.tables if t.name == name), None)

    @property
    def physical_tables(self) -> tuple[PhysicalTable, ...]:
        return tuple(p for t in self.tables for p in t.tables)


@dataclass(frozen=True)
class StudyPeriod:
    start: date
    end: date  # included


@dataclass(frozen=True)
class CodeSet:
    """Codes of one system: `codes` exactly, or any code starting with one of `prefixes`, unless it starts with
    one of `exclude`."""

    name: str
    system: str  # one of CODE_SYSTEMS
    codes: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def matches(self, code: str) -> bool:
        if any(code.startswith(e) for e in self.exclude):
            return False
        return code in self.codes or any(code.startswith(p) for p in self.prefixes)


@dataclass(frozen=True)
class Criterion:
    """Occurrences of a code set's codes among the events of one domain (defaults filled in).

    An occurrence is dated by its event's start (a stay's admission, a dispensing's care date). An event with a
    duration (an ALD) that is active at some point of the study period is dated, for the entry, by the later of
    its start and the study start.
    """

    code_set: str
    domain: str  # one of DOMAINS
    sources: tuple[str, ...]  # the domain's sources kept (all when not written); () for ald and death
    positions: tuple[str, ...]  # diagnosis positions kept (all of POSITIONS when not written); () off diagnosis


@dataclass(frozen=True)
class Entry:
    """The index event: an occurrence of any criterion within the study period.

    `first`: only the person's first such occurrence is a candidate index date. `every`: each occurrence is a
    candidate and the person enters at the earliest one that satisfies every rule (one cohort row per person).
    """

    occurrence: str  # "first" or "every"
    criteria: tuple[Criterion, ...]  # () only for a linked cohort: every linked subject enters at the study start
    starts_in_study: bool = False  # only events starting in the period enter (else: events meeting it)


@dataclass(frozen=True)
class Window:
    """Where a rule counts occurrences: the study period (`study`), or days relative to the index date."""

    study: bool
    from_days: int | None = None  # first day relative to the index date, included (negative: before)
    to_days: int | None = None  # last day, included


@dataclass(frozen=True)
class Rule:
    """An inclusion rule: min_count <= occurrences of the criterion within the window <= max_count.

    `at_least: n` is (n, None), `at_most: n` is (None, n), `exactly: n` is (n, n); an exclusion is max_count 0.
    With `within_days`, the min_count occurrences must lie within that many days of each other.
    """

    name: str
    criterion: Criterion
    min_count: int | None
    max_count: int | None
    window: Window
    within_days: int | None = None

    @property
    def is_exclusion(self) -> bool:
        return self.max_count == 0


@dataclass(frozen=True)
class AgeRange:
    """Age in completed years at the index date (birth = first day of the birth month), bounds included."""

    min: int | None
    max: int | None


@dataclass(frozen=True)
class FollowUp:
    """The end of follow-up: the study end, death or the study end, or `days` after the index date (or death)."""

    end: str  # one of FOLLOW_UP_ENDS
    days: int | None = None  # with end == "days"


@dataclass(frozen=True)
class Cohort:
    code_sets: tuple[CodeSet, ...]  # in the definition's order
    entry: Entry
    inclusion: tuple[Rule, ...]
    age: AgeRange | None
    sex: tuple[int, ...]  # () : every person
    follow_up: FollowUp

    def code_set(self, name: str) -> CodeSet:
        return next(c for c in self.code_sets if c.name == name)


@dataclass(frozen=True)
class ExportRecipient:
    """A recipient of the export package: exactly one of `public_key` (age1...) and `public_key_file` is set."""

    name: str
    public_key: str | None
    public_key_file: str | None  # a plain file name in data/recipients/ (read by the export, not here)


@dataclass(frozen=True)
class ExportSpec:
    """`outputs.export`: the formats of each extract and the recipients the package is encrypted to."""

    formats: tuple[str, ...] = DEFAULT_EXPORT_FORMATS
    recipients: tuple[ExportRecipient, ...] = ()


@dataclass(frozen=True)
class Outputs:
    extracts: tuple[str, ...]  # names of perimeter tables (PerimeterTable.name)
    small_cell_threshold: int
    export: ExportSpec = field(default_factory=ExportSpec)


@dataclass(frozen=True)
class LinkageCriterion:
    name: str  # a key of snds.projects.quasi_identifiers.QUASI_IDENTIFIERS
    column: str  # the import's column holding it, as written in the definition


@dataclass(frozen=True)
class Linkage:
    """`linkage`: the project's population is an external cohort, linked to the base by `protocol`."""

    protocol: str  # DIRECT, CASCADE or PROBABILISTIC
    import_name: str  # lower case: the import `project_<id>.import_<name>`
    subject: str  # the import's subject-number column, which every extract carries
    criteria: tuple[LinkageCriterion, ...]  # the definition's order; () for the direct protocol
    min_criteria: int  # cascade: what the last pass compares
    threshold: float  # probabilistic: the match probability from which a pair matches

    @property
    def passes(self) -> int:
        """The cascade's passes: all the criteria, then one fewer each time, down to `min_criteria`."""
        return len(self.criteria) - self.min_criteria + 1 if self.protocol == CASCADE else 1


@dataclass(frozen=True)
class ProjectDefinition:
    id: str
    title: str
    path: Path
    sha256: str  # of the file's bytes, to stamp on what the build writes
    authorisation: Authorisation
    perimeter: Perimeter
    study: StudyPeriod
    cohort: Cohort
    outputs: Outputs
    warnings: tuple[str, ...] = field(default=())  # harmless oddities: unused code sets, columns missing some years
    linkage: Linkage | None = None

    @property
    def extract_tables(self) -> tuple[PerimeterTable, ...]:
        return tuple(t for name in self.outputs.extracts if (t := self.perimeter.table(name)) is not None)


def definition_path(project_id: str, projects_dir: Path = PROJECTS_DIR) -> Path:
    """`projects/<ID>.yml` for a checked project id (InvalidIdentifier otherwise)."""
    return projects_dir / f"{identifiers.project_id(project_id)}.yml"


class DefinitionNotFound(ValueError):
    """A safe project id whose definition file does not exist."""


def existing_definition_path(project_id: str, projects_dir: Path = PROJECTS_DIR) -> Path:
    """`definition_path`, which must be a file (InvalidIdentifier or DefinitionNotFound otherwise)."""
    path = definition_path(project_id, projects_dir)
    if not path.is_file():
        raise DefinitionNotFound(f"project {project_id} has no definition: {path} is missing")
    return path


def load_definition(path: Path, catalog: dict[str, CatalogTable] | None = None) -> ProjectDefinition:
    """The definition in `path`, checked; ProjectDefinitionError with every problem of the file otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as error:
        raise ProjectDefinitionError(path, [("(file)", f"cannot be read ({error.strerror})")]) from None
    except UnicodeDecodeError:
        raise ProjectDefinitionError(path, [("(file)", "expected UTF-8 text")]) from None
    try:
        document = read_yaml(text)
    except YamlError as error:
        raise ProjectDefinitionError(path, [("(yaml)", f"malformed YAML: {error}")]) from None
    problems = schema_problems(document)
    if problems:
        raise ProjectDefinitionError(path, problems)
    builder = _Builder(path, document, committed_tables() if catalog is None else catalog)
    definition = builder.build(hashlib.sha256(raw).hexdigest())
    if builder.problems:
        raise ProjectDefinitionError(path, builder.problems)
    return definition


# --- semantic checks ----------------------------------------------------------------------------------------


class _Builder:
    """Builds the dataclasses from a schema-valid document, collecting every semantic problem on the way."""

    def __init__(self, path: Path, document: dict[str, Any], catalog: dict[str, CatalogTable]) -> None:
        self.path, self.doc, self.catalog = path, document, catalog
        self.problems: list[tuple[str, str]] = []
        self.warnings: list[str] = []
        self.templates: dict[str, list[CatalogTable]] = {}
        for table in catalog.values():
            self.templates.setdefault(table.template, []).append(table)

    def problem(self, parts: tuple[str | int, ...], message: str) -> None:
        self.problems.append((key_path(parts), message))

    def build(self, sha256: str) -> ProjectDefinition:
        doc = self.doc
        project_id = doc["id"]
        if project_id != self.path.stem:
            self.problem(("id",), f"expected the file name {self.path.stem!r}, found {project_id!r}")
        try:
            identifiers.project_id(project_id)
        except identifiers.InvalidIdentifier as error:
            self.problem(("id",), str(error))
        authorisation = self._authorisation(doc["authorisation"])
        perimeter = self._perimeter(doc["perimeter"])
        study = StudyPeriod(date.fromisoformat(doc["study"]["start"]), date.fromisoformat(doc["study"]["end"]))
        if study.end < study.start:
            self.problem(("study", "end"), f"expected a day on or after the start {study.start}, found {study.end}")
        linkage = self._linkage(doc["linkage"], perimeter) if "linkage" in doc else None
        cohort = self._cohort(doc["cohort"], linked=linkage is not None)
        outputs = self._outputs(doc["outputs"], perimeter)
        return ProjectDefinition(
            project_id,
            doc["title"],
            self.path,
            sha256,
            authorisation,
            perimeter,
            study,
            cohort,
            outputs,
            tuple(self.warnings),
            linkage,
        )

    def _authorisation(self, raw: dict[str, Any]) -> Authorisation:
        granted, expires = date.fromisoformat(raw["granted"]), date.fromisoformat(raw["expires"])
        if expires < granted:
            self.problem(
                ("authorisation", "expires"), f"expected a day on or after the grant {granted}, found {expires}"
            )
        return Authorisation(raw["reference"], raw["holder"], granted, expires)

    # perimeter ------------------------------------------------------------------------------------------------

    def _perimeter(self, raw: dict[str, Any]) -> Perimeter:
        tables: list[PerimeterTable] = []
        seen: dict[str, str] = {}  # physical table -> the perimeter entry that authorises it
        for name, spec in raw["tables"].items():
            entry = self._perimeter_table(name, spec)
            if entry is None:
                continue
            for physical in entry.tables:
                if physical.name in seen:
                    self.problem(
                        ("perimeter", "tables", name),
                        f"{physical.name} is already in the perimeter through {seen[physical.name]}: write it once",
                    )
                    break
                seen[physical.name] = name
            tables.append(entry)
        return Perimeter(raw.get("identifier_kind"), tuple(tables))

    def _perimeter_table(self, name: str, spec: dict[str, Any]) -> PerimeterTable | None:
        where = ("perimeter", "tables", name)
        template = self._template(name)
        if template is not None:
            candidates = self.templates[template]
        else:
            table = find_table(self.catalog, name)
            if table is None:
                kind = "template" if re.search(r"aa|xx", name) else "table or template"
                self.problem(where, f"unknown {kind} {name!r}: expected an SNDS table of the catalog")
                return None
            candidates = [table]
        spelt = template or candidates[0].name
        if spelt != name:
            self.problem(where, f"expected the catalog spelling {spelt!r}")
        selected, years = self._years(where, spelt, candidates, spec.get("years"))
        if not selected:
            return None
        all_columns = spec["columns"] == "all"
        known = list(dict.fromkeys(c.name for t in selected for c in t.columns))
        if all_columns:
            columns = known
        else:
            columns = []
            for index, column in enumerate(spec["columns"]):
                found = _find_column(known, column)
                if found is None:
                    during = f" in {', '.join(map(str, years))}" if years else ""
                    self.problem((*where, "columns", index), f"unknown column {column!r} for {spelt}{during}")
                elif found != column:
                    self.problem((*where, "columns", index), f"expected the catalog spelling {found!r}")
                else:
                    columns.append(found)
            order = {c: i for i, c in enumerate(known)}
            columns.sort(key=order.__getitem__)
        physical = []
        for table in selected:
            own = {c.name for c in table.columns}
            kept = tuple(c for c in columns if c in own)
            missing = [c for c in columns if c not in own]
            if missing and not all_columns:
                self.warnings.append(f"{table.name} has no column {', '.join(missing)} (authorised for {spelt})")
            physical.append(PhysicalTable(table.name, table.year, kept))
        return PerimeterTable(spelt, selected[0].template, years, tuple(columns), all_columns, tuple(physical))

    def _template(self, name: str) -> str | None:
        if name in self.templates:
            return name
        folded = [t for t in self.templates if t.casefold() == name.casefold()]
        return folded[0] if len(folded) == 1 else None

    def _years(
        self, where: tuple[str, ...], name: str, candidates: list[CatalogTable], written: list[int] | None
    ) -> tuple[list[CatalogTable], tuple[int, ...]]:
        """The physical tables of the authorised years (current table first), and those years."""
        by_year = {t.year: t for t in candidates}
        yearly = sorted(y for y in by_year if y is not None)
        current = by_year.get(None)
        if not yearly:
            if written is not None:
                self.problem((*where, "years"), f"{name} has no years: expected no `years` key")
            return candidates, ()
        span = f"{yearly[0]}-{yearly[-1]}"
        if written is None:
            self.problem((*where, "years"), f"required: {name} is yearly (the catalog has {span})")
            return [], ()
        # DCIR: years after the last archive are in the current table only, up to this year.
        accepted = set(yearly) | (set(range(yearly[-1] + 1, date.today().year + 1)) if current else set())
        years = tuple(sorted(written))
        for index, year in enumerate(written):
            if year not in accepted:
                self.problem((*where, "years", index), f"{name} has no table for {year} (the catalog has {span})")
        kept = [by_year[y] for y in years if y in by_year]
        return ([current] if current else []) + kept, years

    # linkage --------------------------------------------------------------------------------------------------

    def _linkage(self, raw: dict[str, Any], perimeter: Perimeter) -> Linkage:
        protocol = raw["protocol"]
        criteria = tuple(LinkageCriterion(name, column) for name, column in raw.get("criteria", {}).items())
        min_criteria = raw.get("min_criteria", DEFAULT_MIN_CRITERIA)
        if protocol == DIRECT:
            for key in ("criteria", "min_criteria", "threshold"):
                if key in raw:
                    self.problem(("linkage", key), "not for the direct protocol (the CNAM matched the persons)")
            return Linkage(protocol, raw["import"].lower(), raw.get("subject", DEFAULT_SUBJECT), (), 0, 0.0)
        if not criteria:
            self.problem(("linkage", "criteria"), f"required for the {protocol} protocol")
        if protocol == CASCADE and not 1 <= min_criteria <= max(len(criteria), 1):
            self.problem(
                ("linkage", "min_criteria"), f"expected 1 to the {len(criteria)} criteria, found {min_criteria}"
            )
        names = [c.name for c in criteria]
        if protocol == PROBABILISTIC and criteria and not blocking_rules(names):
            blocks = "; ".join(", ".join(rule) for rule in RULES)
            self.problem(
                ("linkage", "criteria"), f"Splink compares pairs within blocks: give the criteria of one of {blocks}"
            )
        elif protocol == PROBABILISTIC and criteria and not training_blocks(names):
            blocks = "; ".join(", ".join(rule) for rule in TRAINING)
            self.problem(
                ("linkage", "criteria"),
                f"Splink learns its weights in blocks that leave criteria out: give more criteria than one of {blocks}",
            )
        for key in ("threshold",) if protocol == CASCADE else ("min_criteria",):
            if key in raw:
                self.problem(("linkage", key), f"not for the {protocol} protocol")
        columns = [c.column.upper() for c in criteria]
        for index, column in enumerate(columns):
            if column in columns[:index] or column == raw.get("subject", DEFAULT_SUBJECT).upper():
                self.problem(("linkage", "criteria", criteria[index].name), f"column {column} is used twice")
        self._linkage_perimeter(criteria, perimeter)
        return Linkage(
            protocol,
            raw["import"].lower(),
            raw.get("subject", DEFAULT_SUBJECT),
            criteria,
            min_criteria,
            raw.get("threshold", DEFAULT_THRESHOLD),
        )

    def _linkage_perimeter(self, criteria: tuple[LinkageCriterion, ...], perimeter: Perimeter) -> None:
        """The base side of each criterion is read from the perimeter, which must list its table and columns."""
        needed: dict[str, list[str]] = {}
        for criterion in criteria:
            quasi = QUASI_IDENTIFIERS[criterion.name]
            needed.setdefault(quasi.table, [person_column(quasi.table)]).append(quasi.column)
        for table, columns in needed.items():
            entry = next((t for t in perimeter.tables if t.template == table), None)
            if entry is None:
                what = "the persons' criteria" if table == PERSONS_TABLE else "the stays' criteria"
                self.problem(("linkage", "criteria"), f"{what} are read from {table}: add it to perimeter.tables")
                continue
            missing = [c for c in columns if c not in {x.upper() for x in entry.columns}]
            if missing:
                self.problem(
                    ("perimeter", "tables", entry.name, "columns"),
                    f"the linkage reads {', '.join(missing)} of {table}: add them",
                )

    # cohort ---------------------------------------------------------------------------------------------------

    def _cohort(self, raw: dict[str, Any], linked: bool) -> Cohort:
        code_sets = tuple(self._code_set(name, spec) for name, spec in raw.get("code_sets", {}).items())
        systems = {c.name: c.system for c in code_sets}
        used: set[str] = set()

        def criterion(where: tuple[str | int, ...], spec: dict[str, Any]) -> Criterion:
            used.add(spec["code_set"])
            return self._criterion(where, spec, systems)

        if "entry" not in raw and not linked:
            self.problem(("cohort", "entry"), "required, unless the project links an external cohort (linkage)")
        entry_raw = raw.get("entry", {"criteria": []})
        entry = Entry(
            entry_raw.get("occurrence", "first"),
            tuple(criterion(("cohort", "entry", "criteria", i), c) for i, c in enumerate(entry_raw["criteria"])),
            entry_raw.get("starts_in_study", False),
        )
        rules = []
        for index, spec in enumerate(raw.get("inclusion", ())):
            where = ("cohort", "inclusion", index)
            rule = self._rule(where, spec, criterion((*where, "criterion"), spec["criterion"]))
            if rule.is_exclusion and _holds_index_event(rule, entry):
                self.problem(
                    (*where, "window"),
                    "the window includes day 0, where the entry event itself is counted: the rule can never hold "
                    "(end it at to_days: -1, or start it at from_days: 1)",
                )
            rules.append(rule)
        names = [spec["name"] for spec in raw.get("inclusion", ())]
        for index, name in enumerate(names):
            if name in names[:index]:
                self.problem(("cohort", "inclusion", index, "name"), f"expected a name used once, {name!r} is repeated")
        for code_set in code_sets:
            if code_set.name not in used:
                self.warnings.append(f"code set {code_set.name} is used by no criterion")
        age = None
        if "age" in raw:
            age = AgeRange(raw["age"].get("min"), raw["age"].get("max"))
            if age.min is not None and age.max is not None and age.max < age.min:
                self.problem(("cohort", "age", "max"), f"expected at least the minimum {age.min}, found {age.max}")
        follow = raw.get("follow_up", {"until": "study_end"})
        follow_up = FollowUp("days", follow["days"]) if "days" in follow else FollowUp(follow["until"])
        return Cohort(code_sets, entry, tuple(rules), age, tuple(sorted(raw.get("sex", ()))), follow_up)

    def _code_set(self, name: str, spec: dict[str, Any]) -> CodeSet:
        system = spec["system"]
        full, prefix, shape = _CODE_SHAPES[system]
        where = ("cohort", "code_sets", name)
        for key, pattern in (("codes", full), ("prefixes", prefix), ("exclude", prefix)):
            for index, code in enumerate(spec.get(key, ())):
                if not re.fullmatch(pattern, code):
                    self.problem((*where, key, index), f"expected {system} {_what(key)}: {shape}, found {code!r}")
        return CodeSet(
            name, system, tuple(spec.get("codes", ())), tuple(spec.get("prefixes", ())), tuple(spec.get("exclude", ()))
        )

    def _criterion(self, where: tuple[str | int, ...], spec: dict[str, Any], systems: dict[str, str]) -> Criterion:
        name = spec["code_set"]
        system = systems.get(name)
        if system is None:
            known = ", ".join(systems)
            self.problem((*where, "code_set"), f"unknown code set {name!r}: expected one of {known}")
        domain = DOMAINS[spec.get("domain") or DEFAULT_DOMAIN.get(system or "", "diagnosis")]
        if system is not None and system not in domain.systems:
            self.problem(
                (*where, "domain"),
                f"code set {name} is {system}, which domain {domain.name} does not use "
                f"(expected a code set of {', '.join(domain.systems)})",
            )
        sources = tuple(spec.get("sources", domain.sources))
        for index, source in enumerate(sources):
            if source not in domain.sources:
                offered = ", ".join(domain.sources) if domain.sources else "no `sources` key (a single source)"
                self.problem((*where, "sources", index), f"domain {domain.name} takes {offered}, found {source!r}")
        positions = tuple(spec.get("positions", POSITIONS if domain.name == "diagnosis" else ()))
        if positions and domain.name != "diagnosis":
            self.problem((*where, "positions"), f"only for domain diagnosis, not {domain.name}")
        return Criterion(name, domain.name, sources, positions)

    def _rule(self, where: tuple[str | int, ...], spec: dict[str, Any], criterion: Criterion) -> Rule:
        if "exactly" in spec:
            low, high = spec["exactly"], spec["exactly"]
        else:
            low, high = spec.get("at_least"), spec.get("at_most")
        raw_window = spec["window"]
        if raw_window == "study":
            window = Window(True)
        else:
            window = Window(False, raw_window["from_days"], raw_window["to_days"])
            if window.from_days > window.to_days:
                self.problem(
                    (*where, "window", "from_days"),
                    f"empty window: from_days ({window.from_days}) is after to_days ({window.to_days})",
                )
        within = spec.get("within_days")
        if within is not None and (low is None or low < 2 or high is not None):
            self.problem((*where, "within_days"), "expected only with at_least of 2 or more")
        return Rule(spec["name"], criterion, low, high, window, within)

    def _outputs(self, raw: dict[str, Any], perimeter: Perimeter) -> Outputs:
        names = [t.name for t in perimeter.tables]
        for index, name in enumerate(raw["extracts"]):
            if name not in names and name in self.doc["perimeter"]["tables"]:
                continue  # the perimeter entry itself is wrong, already reported
            if name not in names:
                self.problem(
                    ("outputs", "extracts", index),
                    f"{name!r} is outside the perimeter: expected one of {', '.join(names)}",
                )
        return Outputs(
            tuple(raw["extracts"]),
            raw.get("small_cell_threshold", DEFAULT_SMALL_CELL_THRESHOLD),
            self._export(raw.get("export")),
        )

    def _export(self, raw: dict[str, Any] | None) -> ExportSpec:
        """`outputs.export`; an inline public key is parsed here (a key file is read by the export itself)."""
        if raw is None:
            return ExportSpec()
        from snds.export.recipients import public_key_problem

        recipients = []
        seen: set[str] = set()
        for index, spec in enumerate(raw["recipients"]):
            where = ("outputs", "export", "recipients", index)
            if spec["name"] in seen:
                self.problem((*where, "name"), f"recipient {spec['name']!r} is named twice")
            seen.add(spec["name"])
            key = spec.get("public_key")
            problem = public_key_problem(key) if key is not None else None
            if problem:
                self.problem((*where, "public_key"), problem)
            recipients.append(ExportRecipient(spec["name"], key, spec.get("public_key_file")))
        formats = tuple(f for f in EXPORT_FORMATS if f in raw.get("formats", DEFAULT_EXPORT_FORMATS))
        return ExportSpec(formats, tuple(recipients))


def _holds_index_event(rule: Rule, entry: Entry) -> bool:
    """An exclusion counting the entry criterion itself in a window that contains the index date."""
    window = rule.window
    contains_day_0 = window.study or (window.from_days or 0) <= 0 <= (window.to_days or 0)
    return contains_day_0 and rule.criterion in entry.criteria and len(entry.criteria) == 1


def _find_column(known: list[str], column: str) -> str | None:
    if column in known:
        return column
    matches = [c for c in known if c.casefold() == column.casefold()]
    return matches[0] if len(matches) == 1 else None


def _what(key: str) -> str:
    return {"codes": "code", "prefixes": "prefix", "exclude": "excluded prefix"}[key]


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def iter_criteria(definition: ProjectDefinition) -> Iterator[tuple[str, Criterion]]:
    """Every criterion with its key path: the entry's, then each rule's."""
    for index, criterion in enumerate(definition.cohort.entry.criteria):
        yield key_path(("cohort", "entry", "criteria", index)), criterion
    for index, rule in enumerate(definition.cohort.inclusion):
        yield key_path(("cohort", "inclusion", index, "criterion")), rule.criterion


def as_json(definition: ProjectDefinition) -> dict[str, Any]:
    """The definition as JSON-ready data (dates as YYYY-MM-DD, the path relative to the working directory)."""

    def plain(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Path):
            return _shown_path(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(asdict(definition))
