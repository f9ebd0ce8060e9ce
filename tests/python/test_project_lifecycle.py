"""A project's own data in, and its end (issue 12, items 5-7): `snds project import`, `project close`, `audit`.

On this module's copy of `project_warehouse` (both examples built), P_T2D imports a list of persons: some of its
cohort, some of the base outside the cohort, some nobody knows, and bad lines. The identifiers are the CNAM's
(`BEN_NIR_PSA` as delivered): the stored column must be the project's `NUM_ENQ`, equal to what the project key gives
(computed here in Python from the key store's pads) and joining the cohort, and no clear value may be stored anywhere.
A copy of the dbt project (parsed once, partially, from the session's parse) holds hand-written models: P_T2D's reads
the import through `project_import`, and is built; P_MI's and two models outside the projects read it and are refused
by the build's guard. Then P_T2D is closed: its schema and restricted tables are gone, its key retired, its history
in `snds audit --project`, and every later build (`snds project build`, a plain `dbt build`), import and key is
refused with the day it was closed. Nothing is written into the repository's folders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest

from project_warehouse import Warehouse
from pruned_project import copy_pruned
from snds.cli import main
from snds.dbt import dbt_database
from snds.keys.material import Pads, pseudonym
from snds.projects.lifecycle import closed_on
from test_project_guard import GUARD_FAILED, _failure

pytestmark = pytest.mark.slow

TODAY = date.today().isoformat()
SCHEMA = """\
description: persons of the cohort who consented to a follow-up questionnaire
identifier: BEN_NIR_PSA
columns:
  - {name: BEN_NIR_PSA, type: varchar(17)}
  - {name: consent_date, type: date}
  - {name: weight, type: "numeric(5,1)"}
"""
# Nobody in the base: these must be found nowhere in the database, whatever line they were on.
UNKNOWN = ("QA0000000000000A1", "QA0000000000000A2")
BAD = ("QB0000000000000B1", "QB0000000000000B2", "QB0000000000000B3QQQ")  # on lines that are quarantined

# Hand-written models of the dbt project's copy: folder -> files.
CONSENTED = """\
{{ config(schema='project_p_t2d', materialized='table') }}
select
    cohort.NUM_ENQ,
    cohort.index_date,
    consented.consent_date
from {{ ref('p_t2d__cohort') }} as cohort
inner join {{ project_import('consented') }} as consented
    on cohort.NUM_ENQ = consented.NUM_ENQ
"""
MODELS = {
    "projects/p_t2d/imports": {
        "p_t2d__consented.sql": CONSENTED,
        "_p_t2d__consented.yml": "version: 2\nmodels:\n  - name: p_t2d__consented\n    config:\n"
        "      contract: {enforced: true}\n    columns:\n      - {name: NUM_ENQ, data_type: varchar(17)}\n"
        "      - {name: index_date, data_type: date}\n      - {name: consent_date, data_type: date}\n",
    },
    "projects/p_mi/borrowed": {
        "p_mi__borrowed.sql": "{{ config(schema='keys', materialized='table') }}\n"
        'select NUM_ENQ\nfrom "project_p_t2d" . "import_consented"\n',
    },
    "elsewhere/by_macro": {"outside_by_macro.sql": "select NUM_ENQ\nfrom {{ project_import('consented') }}\n"},
    "elsewhere/by_name": {"outside_by_name.sql": "select NUM_ENQ\nfrom project_p_t2d.import_consented\n"},
}


@dataclass(frozen=True)
class Persons:
    in_cohort: dict[str, str]  # clear identifier -> the NUM_ENQ the project key gives
    outside_cohort: dict[str, str]
    file: Path


@dataclass(frozen=True)
class ProjectCopy:
    root: Path
    target: Path
    manifest: Manifest

    def build(self, folder: str, database: Path) -> dbtRunnerResult:
        argv = ["build", "--select", f"path:models/{folder}", "--no-write-json", "--project-dir", str(self.root)]
        argv += ["--profiles-dir", str(self.root / "profiles"), "--target-path", str(self.target)]
        with dbt_database(database):
            return dbtRunner(manifest=self.manifest).invoke(argv)


def snds(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def warehouse(projects_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return projects_warehouse.copy(tmp_path_factory.mktemp("lifecycle"))


def _project_numbers(warehouse: Warehouse, clear: list[str]) -> dict[str, str]:
    """P_T2D's NUM_ENQ of delivered identifiers, from the key store's pads (snds.keys.material, not SQL)."""
    keys = {}
    for scope in ("platform", "project:P_T2D"):
        ((ipad, opad),) = warehouse.query(
            "select IPAD, OPAD from keys.key_material where KEY_DOMAIN = 'person' and KEY_STATUS = 'active' "
            f"and KEY_SCOPE = '{scope}'"
        )
        keys[scope] = Pads(ipad, opad).key
    return {c: pseudonym(keys["project:P_T2D"], pseudonym(keys["platform"], c, 17), 17) for c in clear}


def varchar_hits(database: Path, needles: tuple[str, ...]) -> dict[str, int]:
    """Rows of every table (every schema) with a varchar column holding one of `needles`, even inside a longer text."""
    found = {}
    with duckdb.connect(str(database), read_only=True) as con:
        columns = con.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns c "
            "join duckdb_tables() t on t.schema_name = c.table_schema and t.table_name = c.table_name "
            "where c.data_type = 'VARCHAR' and t.estimated_size > 0"
        ).fetchall()
        tables: dict[str, list[str]] = {}
        for schema, table, column in columns:
            tables.setdefault(f'"{schema}"."{table}"', []).append(column)
        for table, names in tables.items():
            condition = " or ".join(f"contains(\"{c}\", '{n}')" for c in names for n in needles)
            (count,) = con.execute(f"select count(*) from {table} where {condition}").fetchone()
            if count:
                found[table] = count
    return found


@pytest.fixture(scope="module")
def persons(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Persons:
    """A list of persons in the CNAM's identifiers: 3 of the cohort, 2 of the base outside it, 2 nobody knows, and
    5 bad lines (an impossible date, too many decimals, no identifier, an identifier too long, a missing field)."""
    cohort = {row[0] for row in warehouse.query("select NUM_ENQ from project_p_t2d.cohort")}
    delivered = sorted(
        row[0] for row in warehouse.query(f"select distinct BEN_NIR_PSA from {warehouse.csv('IR_BEN_R')}")
    )
    numbers = _project_numbers(warehouse, delivered)
    in_cohort = dict([(c, n) for c, n in numbers.items() if n in cohort][:3])
    outside = dict([(c, n) for c, n in numbers.items() if n not in cohort][:2])
    assert len(in_cohort) == 3 and len(outside) == 2
    lines = ["consent_date;ben_nir_psa;WEIGHT"]  # the header in another order and case
    for day, clear in enumerate([*in_cohort, *outside, *UNKNOWN], start=1):
        lines.append(f"{day:02d}/03/2021;{clear};7{day}.5")
    lines += [
        f"31/02/2021;{BAD[0]};70.5",  # line 9: impossible date
        f"01/04/2021;{BAD[1]};70.25",  # line 10: too many decimals
        "01/04/2021;;80",  # line 11: no identifier
        f"01/04/2021;{BAD[2]};80",  # line 12: 20 characters
        f"01/04/2021;{BAD[0]}",  # line 13: a field missing
    ]
    folder = tmp_path_factory.mktemp("imports")
    (folder / "persons.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "persons.schema.yml").write_text(SCHEMA, encoding="utf-8")
    assert not varchar_hits(warehouse.database, (*UNKNOWN, *BAD))
    return Persons(in_cohort, outside, folder / "persons.csv")


@pytest.fixture(scope="module")
def imported(warehouse: Warehouse, persons: Persons) -> dict:
    """The persons imported as P_T2D's `consented` (the clear values' places in the database noted before)."""
    before = varchar_hits(warehouse.database, (*persons.in_cohort, *persons.outside_cohort))
    result = snds("project", "import", "P_T2D", str(persons.file), "--as", "consented", "--database",
                  str(warehouse.database), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    return {"report": json.loads(result.stdout), "before": before}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Manifest) -> ProjectCopy:
    """The dbt project with the hand-written models, cut to the staging tables something reads (parsed in seconds)."""
    base = tmp_path_factory.mktemp("lifecycle_project")
    root, target = base / "project", base / "target"
    copy_pruned(root, dbt_manifest)
    for folder, files in MODELS.items():
        (root / "models" / folder).mkdir(parents=True)
        for name, text in files.items():
            (root / "models" / folder / name).write_text(text, encoding="utf-8")
    target.mkdir()
    argv = ["parse", "--project-dir", str(root), "--profiles-dir", str(root / "profiles"), "--target-path", str(target)]
    parsed = dbtRunner().invoke(argv)
    assert parsed.success, parsed.exception
    return ProjectCopy(root, target, parsed.result)


def test_an_import_types_exactly_quarantines_bad_lines_and_balances(
    warehouse: Warehouse, persons: Persons, imported: dict
) -> None:
    report = imported["report"]
    assert report["status"] == "imported" and report["table"] == "project_p_t2d.import_consented"
    assert (report["rows_in"], report["rows_loaded"], report["rows_quarantined"]) == (12, 7, 5)
    assert report["sha256"] == hashlib.sha256(persons.file.read_bytes()).hexdigest()
    quarantine = warehouse.query(
        "select LINE_NUMBER, COLUMN_NAME, REASON_CODE from project_p_t2d.imports_quarantine "
        "where IMPORT_NAME = 'consented' order by 1, 2"
    )
    assert quarantine == [
        (9, "consent_date", "impossible_date"),
        (10, "weight", "too_many_decimals"),
        (11, "BEN_NIR_PSA", "missing_identifier"),
        (12, "BEN_NIR_PSA", "too_long"),
        (13, None, "field_count"),
    ]
    rows = warehouse.query("select consent_date, weight from project_p_t2d.import_consented order by 1")
    assert [(d.day, str(w)) for d, w in rows] == [(day, f"7{day}.5") for day in range(1, 8)]
    (book,) = warehouse.query(
        "select FILE_SHA256, ROWS_IN, ROWS_LOADED, ROWS_QUARANTINED, IDENTIFIER_COLUMN from project_p_t2d.imports"
    )
    assert book == (report["sha256"], 12, 7, 5, "BEN_NIR_PSA")
    ((detail,),) = warehouse.query(
        "select DETAIL from audit.events where ACTION = 'project.import' and OUTCOME = 'done' and OBJECT = 'P_T2D'"
    )
    event = json.loads(detail)
    assert (event["sha256"], event["rows_in"], event["rows_loaded"], event["rows_quarantined"]) == (
        report["sha256"],
        12,
        7,
        5,
    )
    assert event["name"] == "consented" and event["who"]


def test_the_identifier_is_stored_only_as_the_projects_pseudonym(
    warehouse: Warehouse, persons: Persons, imported: dict
) -> None:
    """NUM_ENQ is what the project key gives (the cohort's persons join the cohort); no clear value is stored: the
    ones nobody knew are nowhere, those of the base only where they were before (landing, the correspondences)."""
    stored = {row[0] for row in warehouse.query("select NUM_ENQ from project_p_t2d.import_consented")}
    expected = {*persons.in_cohort.values(), *persons.outside_cohort.values()}
    assert expected <= stored and len(stored) == 7
    joined = warehouse.query(
        "select count(*) from project_p_t2d.import_consented join project_p_t2d.cohort using (NUM_ENQ)"
    )
    assert joined == [(3,)]
    assert not varchar_hits(warehouse.database, (*UNKNOWN, *BAD))
    after = varchar_hits(warehouse.database, (*persons.in_cohort, *persons.outside_cohort))
    assert after == imported["before"]
    assert not [t for t in after if t.startswith('"project_') or t.startswith('"audit"')]


def test_import_refusals_are_clear_and_audited(warehouse: Warehouse, persons: Persons, tmp_path: Path) -> None:
    database = str(warehouse.database)
    unknown = snds("project", "import", "P_NOPE", str(persons.file), "--as", "x", "--database", database)
    assert unknown.exit_code == 2 and "project P_NOPE has no definition" in unknown.output
    unsafe = snds("project", "import", "P_T2D", str(persons.file), "--as", "x;drop", "--database", database)
    assert unsafe.exit_code == 2 and "import name 'x;drop' is not accepted" in unsafe.output
    again = snds("project", "import", "P_T2D", str(persons.file), "--as", "consented", "--database", database)
    assert again.exit_code == 1 and "already has an import consented" in again.output and "--replace" in again.output
    # columns: one declared that the file lacks, a field the schema does not declare (named by position only)
    (tmp_path / "codes.csv").write_text("code;label;secret_extra\nA;alpha;x\n", encoding="utf-8")
    (tmp_path / "codes.schema.yml").write_text(
        "columns:\n  - {name: code, type: varchar(4)}\n  - {name: label, type: varchar(40)}\n"
        "  - {name: valid_from, type: date}\n",
        encoding="utf-8",
    )
    columns = snds("project", "import", "P_T2D", str(tmp_path / "codes.csv"), "--as", "codes", "--database", database)
    assert columns.exit_code == 1
    assert "missing columns valid_from" in columns.output and "(fields 3)" in columns.output
    assert "secret_extra" not in columns.output
    (tmp_path / "typo.schema.yml").write_text("columns:\n  - {name: code, type: integer}\n", encoding="utf-8")
    typo = snds("project", "import", "P_T2D", str(tmp_path / "codes.csv"), "--as", "codes", "--schema",
                str(tmp_path / "typo.schema.yml"), "--database", database)  # fmt: skip
    assert typo.exit_code == 1 and "columns[0].type: expected one of the platform's SQL types" in typo.output
    # a person identifier column that is not declared the identifier would be stored as it is: refused
    (tmp_path / "plain.schema.yml").write_text(SCHEMA.replace("identifier: BEN_NIR_PSA\n", ""), encoding="utf-8")
    plain = snds("project", "import", "P_T2D", str(persons.file), "--as", "plain", "--schema",
                 str(tmp_path / "plain.schema.yml"), "--database", database)  # fmt: skip
    assert plain.exit_code == 1 and "column BEN_NIR_PSA is a person identifier" in plain.output
    refused = warehouse.query(
        "select count(*) from audit.events where ACTION = 'project.import' and OUTCOME = 'refused' and OBJECT = 'P_T2D'"
    )
    assert refused == [(4,)]
    tables = warehouse.query("select table_name from information_schema.tables where table_schema = 'project_p_t2d'")
    assert not {"import_codes", "import_plain"} & {t[0] for t in tables}


def test_only_the_projects_own_models_read_its_import(
    warehouse: Warehouse, project_copy: ProjectCopy, imported: dict
) -> None:
    built = project_copy.build("projects/p_t2d/imports", warehouse.database)
    assert built.success, _failure(built)
    assert warehouse.query("select count(*) from project_p_t2d.p_t2d__consented") == [(3,)]
    refusals = {
        "projects/p_mi/borrowed": "project P_MI, model p_mi__borrowed: reads project_p_t2d.import_*, an import of"
        " another project",
        "elsewhere/by_macro": "model outside_by_macro: reads a project's import (project_import) from outside"
        " models/projects/<id>/",
        "elsewhere/by_name": "model outside_by_name: reads project_p_t2d.import_*, a project's import, from outside"
        " models/projects/p_t2d/",
    }
    for folder, expected in refusals.items():
        result = project_copy.build(folder, warehouse.database)
        message = _failure(result)
        assert not result.success and GUARD_FAILED in message and expected in message, message
    relations = {row[0].lower() for row in warehouse.query("select table_name from information_schema.tables")}
    assert not {"p_mi__borrowed", "outside_by_macro", "outside_by_name"} & relations


@pytest.fixture(scope="module")
def closed(warehouse: Warehouse, imported: dict) -> Result:
    p_mi_before = warehouse.query("select count(*) from project_p_mi.cohort")
    result = snds("project", "close", "P_T2D", "--yes", "--database", str(warehouse.database), "--json")
    assert result.exit_code == 0, result.output
    assert warehouse.query("select count(*) from project_p_mi.cohort") == p_mi_before
    return result


def test_close_drops_the_project_and_retires_its_key(warehouse: Warehouse, closed: Result) -> None:
    (closure,) = json.loads(closed.stdout)["closed"]
    assert closure["closed_on"] == TODAY and closure["key_retired"] == "project:P_T2D-v1"
    assert {"project_p_t2d.cohort", "project_p_t2d.import_consented", "keys.p_t2d__pseudonyms"} <= set(
        closure["dropped"]
    )
    assert warehouse.query("select count(*) from information_schema.schemata where schema_name = 'project_p_t2d'") == [
        (0,)
    ]
    assert warehouse.query(
        "select count(*) from information_schema.tables where table_schema = 'keys' and lower(table_name) like 'p_t2d%'"
    ) == [(0,)]
    assert warehouse.query(
        "select KEY_STATUS, IPAD is null and OPAD is null, RETIRED_AT is not null from keys.key_material "
        "where KEY_SCOPE = 'project:P_T2D'"
    ) == [("retired", True, True)]
    assert closed_on(warehouse.database, "P_T2D") == date.today() and closed_on(warehouse.database, "P_MI") is None
    again = snds("project", "close", "P_T2D", "--yes", "--database", str(warehouse.database))
    assert again.exit_code == 1 and f"project P_T2D closed on {TODAY}" in again.output
    key = snds("keys", "init", "--project", "P_T2D", "--database", str(warehouse.database))
    assert key.exit_code == 1 and "a closed project never gets a key again" in key.output
    check = snds("project", "check", "P_T2D", "--database", str(warehouse.database))
    assert check.exit_code == 1 and f"project P_T2D closed on {TODAY}: nothing may be built" in check.output


def test_a_closed_project_is_never_built_imported_or_exported_again(
    warehouse: Warehouse, persons: Persons, project_copy: ProjectCopy, closed: Result, tmp_path: Path
) -> None:
    reason = f"project P_T2D closed on {TODAY}"
    build = snds("project", "build", "P_T2D", "--database", str(warehouse.database))
    assert build.exit_code == 1 and f"{reason}; nothing is built" in build.output
    again = snds("project", "import", "P_T2D", str(persons.file), "--as", "late", "--database",
                 str(warehouse.database))  # fmt: skip
    assert again.exit_code == 1 and reason in again.output
    export = snds("project", "export", "P_T2D", "--database", str(warehouse.database), "--to", str(tmp_path / "out"))
    assert export.exit_code == 1 and reason in export.output and not (tmp_path / "out").exists()
    plain = project_copy.build("projects/p_t2d", warehouse.database)  # a plain `dbt build` of the project's folder
    message = _failure(plain)
    assert not plain.success and GUARD_FAILED in message and reason in message, message
    # dbt makes the selected models' schemas before its on-run-start hooks: an empty project_p_t2d, nothing in it
    assert warehouse.query(
        "select count(*) from information_schema.tables where table_schema = 'project_p_t2d' "
        "or (table_schema = 'keys' and lower(table_name) like 'p_t2d%')"
    ) == [(0,)]


def test_the_audit_shows_the_whole_life_of_the_project(warehouse: Warehouse, closed: Result) -> None:
    result = snds("audit", "--project", "P_T2D", "--database", str(warehouse.database), "--json")
    assert result.exit_code == 0, result.output
    life = [(e["action"], e["outcome"]) for e in json.loads(result.stdout)["events"]]
    assert life[:2] == [("keys.init", "done"), ("project.build", "built")]
    assert ("project.import", "done") in life and ("project.import", "refused") in life
    assert (
        life.index(("project.import", "done"))
        < life.index(("keys.retire", "done"))
        < life.index(("project.close", "done"))
    )
    table = snds("audit", "--project", "P_T2D", "--database", str(warehouse.database))
    assert table.exit_code == 0
    for text in ("keys.init", "project.build", "project.import", "consented:", "keys.retire", "project.close"):
        assert text in table.output, table.output


def test_expired_projects_are_closed_and_the_others_left(warehouse: Warehouse, closed: Result, tmp_path: Path) -> None:
    """`close --expired` closes P_MI once its authorisation has expired (a copy of its definition, expired), and
    leaves P_T2D, closed already."""
    from snds.config import PROJECT_ROOT

    definition = (PROJECT_ROOT / "projects" / "P_MI.yml").read_text(encoding="utf-8")
    (tmp_path / "P_MI.yml").write_text(
        definition.replace("granted: ", "granted: 2020-01-01 #", 1).replace("expires: ", "expires: 2020-12-31 #", 1),
        encoding="utf-8",
    )
    shutil.copy(PROJECT_ROOT / "projects" / "P_T2D.yml", tmp_path / "P_T2D.yml")
    result = snds("project", "close", "--expired", "--yes", "--projects-dir", str(tmp_path), "--database",
                  str(warehouse.database), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    (closure,) = json.loads(result.stdout)["closed"]
    assert closure["project"] == "P_MI" and closure["reason"].endswith("expired on 2020-12-31")
    assert closed_on(warehouse.database, "P_MI") == date.today()
    assert warehouse.query("select count(*) from information_schema.tables where table_schema = 'project_p_mi'") == [
        (0,)
    ]
    nothing = snds("project", "close", "--expired", "--yes", "--projects-dir", str(tmp_path), "--database",
                   str(warehouse.database))  # fmt: skip
    assert nothing.exit_code == 0 and "no project to close" in nothing.output
