"""`snds project export`: the package decrypts, verifies and reads back with the project's rows; it is the same
twice; every refusal of the checks leaves nothing behind; every export and refusal is audited.

Each test works on its own copy of the built warehouse (`project_warehouse`), with a recipient made here (the
identity stays in memory); nothing is written into the repository's data/.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyrage
import pyreadstat
import pytest
from click.testing import CliRunner, Result
from pyrage import x25519

from project_warehouse import Warehouse
from snds.cli import main
from snds.export.package import PLAIN_FILES, small_cells
from snds.projects.definition import ProjectDefinitionError, load_definition
from snds.projects.schema import PROJECTS_DIR

pytestmark = pytest.mark.slow

PROJECT = "P_T2D"
SCHEMA = "project_p_t2d"
KEY_FILE = "demo-recipient.pub"  # the file projects/P_T2D.yml names


@pytest.fixture(scope="module")
def base(projects_warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return projects_warehouse.copy(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


@pytest.fixture(scope="module")
def recipients(identity: x25519.Identity, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recipients")
    (folder / KEY_FILE).write_text(f"# a test recipient\n{identity.to_public()}\n", encoding="ascii")
    return folder


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own temporary directory (where the export makes its private one), so `leftovers` sees only
    what this test's export left."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def warehouse(base: Warehouse, tmp_path: Path) -> Warehouse:
    """A copy for one test, which may plant what a check must catch."""
    return base.copy(tmp_path / "warehouse")


def export(warehouse: Warehouse, recipients: Path, to: Path, *options: str) -> tuple[Result, dict]:
    arguments = ["project", "export", PROJECT, "--database", str(warehouse.database), "--to", str(to)]
    result = CliRunner().invoke(main, [*arguments, "--recipients-dir", str(recipients), "--json", *options])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.startswith("{")), None)
    return result, json.loads("\n".join(lines[start:])) if start is not None else {}


def decrypt(package: Path, identity: x25519.Identity, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(package.glob("*.age")):
        (out / path.name.removesuffix(".age")).write_bytes(pyrage.decrypt(path.read_bytes(), [identity]))
    return out


def manifest_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "MANIFEST.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


def leftovers(to: Path) -> list[str]:
    """What a refused or interrupted export could have left: the destination, its staging, plaintext temp dirs."""
    near = to.parent.iterdir() if to.parent.exists() else ()  # a parent made for the export is removed too
    found = [str(p) for p in near if p.name == to.name or p.name.startswith(f".{to.name}.")]
    return found + [str(p) for p in Path(tempfile.gettempdir()).glob("snds-export-*")]


def audit_events(warehouse: Warehouse) -> list[tuple[str, dict]]:
    rows = warehouse.query(
        "select OUTCOME, DETAIL from audit.events where ACTION = 'project.export' and OBJECT = 'P_T2D' "
        "order by EVENT_AT"
    )
    return [(outcome, json.loads(detail)) for outcome, detail in rows]


def assert_refused(result: Result, payload: dict, to: Path, warehouse: Warehouse, *reasons: str) -> None:
    assert result.exit_code == 1, result.output
    assert payload["status"] == "refused"
    for reason in reasons:
        assert reason in payload["message"], payload["message"]
    assert leftovers(to) == []
    outcome, detail = audit_events(warehouse)[-1]
    assert outcome == "refused"
    assert any(reasons[0] in r for r in detail["reasons"])


# --- the package ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(base: Warehouse, recipients: Path, identity: x25519.Identity, tmp_path_factory: pytest.TempPathFactory):
    """One export of the module's warehouse, and its decrypted content."""
    folder = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(folder))
        result, payload = export(base, recipients, folder / "package")
        assert not list(folder.glob("snds-export-*"))
    assert result.exit_code == 0, result.output
    return folder / "package", decrypt(folder / "package", identity, folder / "decrypted"), payload


def test_the_package_decrypts_and_verifies_against_its_manifest(exported, base: Warehouse, recipients: Path) -> None:
    package, plain, payload = exported
    assert {p.name for p in package.iterdir() if p.suffix != ".age"} == set(PLAIN_FILES)
    rows = manifest_rows(plain)
    assert list(rows[0]) == ["file", "table", "rows", "sha256"]
    assert {p.name for p in plain.iterdir()} == {r["file"] for r in rows} | {"MANIFEST.csv"}
    for row in rows:
        assert hashlib.sha256((plain / row["file"]).read_bytes()).hexdigest() == row["sha256"], row["file"]
    sums = dict(line.split("  ")[::-1] for line in (package / "SHA256SUMS").read_text().splitlines())
    assert sums == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in package.glob("*.age")}
    # what the build wrote, and nothing of the exact summaries
    built = dict(base.query(f"select item_name, row_count from {SCHEMA}.build where item_kind = 'output'"))
    tables = {r["table"] for r in rows}
    assert tables == (set(built) - {"attrition", "profile"}) | {"project_page"}
    for row in rows:
        if row["table"] != "project_page":
            assert int(row["rows"]) == built[row["table"]], row["file"]
    assert {r["file"] for r in rows if r["table"] == "ER_PHA_F"} == {"ER_PHA_F.parquet", "ER_PHA_F.csv", "ER_PHA_F.xpt"}
    assert not [p for p in plain.iterdir() if "attrition" in p.name or "profile" in p.name]
    # export.json: provenance and schema
    description = json.loads((package / "export.json").read_text(encoding="utf-8"))
    definition = load_definition(PROJECTS_DIR / f"{PROJECT}.yml")
    record = base.query(f"select distinct definition_sha256, git_commit, dbt_invocation_id from {SCHEMA}.build")
    assert description["project"] == PROJECT
    assert description["authorisation"]["reference"] == definition.authorisation.reference
    assert description["authorisation"]["expires"] == definition.authorisation.expires.isoformat()
    assert description["definition_sha256"] == definition.sha256 == record[0][0]
    assert description["build"]["dbt_invocation_id"] == record[0][2]
    deliveries = base.query(f"select item_name from {SCHEMA}.build where item_kind = 'delivery'")
    assert sorted(description["build"]["deliveries"]) == sorted(d for (d,) in deliveries)
    assert description["small_cell_rule"]["threshold"] == definition.outputs.small_cell_threshold
    public = (recipients / KEY_FILE).read_text().splitlines()[-1]
    assert description["encryption"]["recipients"] == [
        {"name": "Example research unit", "public_key": public, "sha256": hashlib.sha256(public.encode()).hexdigest()}
    ]
    pha = next(f for f in description["files"] if f["file"] == "ER_PHA_F.parquet")
    columns = base.query(f"describe {SCHEMA}.ER_PHA_F")
    assert [(c["name"], c["type"]) for c in pha["columns"]] == [(c[0], c[1]) for c in columns]
    assert all("label" in c for c in pha["columns"])
    readme = (package / "README.md").read_text(encoding="utf-8")
    assert "age -d -i key.txt" in readme and "sha256sum -c" in readme and "### ER_PHA_F" in readme
    # the page: the only aggregate, suppressed, without a time
    page = json.loads((plain / f"{PROJECT}.project.json").read_text(encoding="utf-8"))
    assert "written_at" not in page and small_cells(page, 11) == []
    assert payload["status"] == "exported" and leftovers(package) == [str(package)]


def test_parquet_and_csv_read_in_duckdb_with_the_rows_of_the_project_tables(exported, base: Warehouse) -> None:
    _, plain, _ = exported
    with duckdb.connect(str(base.database), read_only=True) as con:
        for row in manifest_rows(plain):
            if row["table"] == "project_page" or row["file"].endswith(".xpt"):
                continue
            path = str(plain / row["file"]).replace("'", "''")
            table = f'{SCHEMA}."{row["table"]}"'
            if row["file"].endswith(".parquet"):
                read = f"read_parquet('{path}')"
            else:
                types = {name: kind for name, kind, *_ in con.execute(f"describe {table}").fetchall()}
                read = f"read_csv('{path}', delim=';', header=true, columns={types!r})"
            names = [c[0] for c in con.execute(f"describe select * from {read}").fetchall()]
            assert names == [c[0] for c in con.execute(f"describe {table}").fetchall()], row["file"]
            assert con.execute(f"select count(*) from {read}").fetchall()[0][0] == int(row["rows"])
            for first, second in ((read, table), (table, read)):
                missing = con.execute(f"select count(*) from (from {first} except all from {second})").fetchall()
                assert missing[0][0] == 0, row["file"]


def _plain(value: object) -> object:
    """A value as both pandas (XPT) and DuckDB give it: missing as None, numbers as floats, dates as dates."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, (Decimal, int, float)):
        return float(value)
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        return value.to_pydatetime().date()
    return value


def test_xpt_reads_in_pyreadstat_with_the_same_rows(exported, base: Warehouse) -> None:
    _, plain, _ = exported
    xpt_files = [r for r in manifest_rows(plain) if r["file"].endswith(".xpt")]
    assert xpt_files
    with duckdb.connect(str(base.database), read_only=True) as con:
        for row in xpt_files:
            frame, meta = pyreadstat.read_xport(str(plain / row["file"]))
            table = f'{SCHEMA}."{row["table"]}"'
            names = [c[0] for c in con.execute(f"describe {table}").fetchall()]
            assert list(frame.columns) == names and meta.table_name == row["table"]
            expected = [
                tuple(_plain(v) for v in r) for r in con.execute(f"select * from {table} order by all").fetchall()
            ]
            found = [tuple(_plain(v) for v in r) for r in frame.itertuples(index=False, name=None)]
            assert found == expected, row["file"]
            dates = [n for n, kind, *_ in con.execute(f"describe {table}").fetchall() if kind == "DATE"]
            assert all(meta.original_variable_types[n].startswith("DATE") for n in dates)


def test_two_exports_of_unchanged_data_are_byte_identical_before_encryption(
    exported, base: Warehouse, recipients: Path, identity: x25519.Identity, tmp_path: Path
) -> None:
    first_package, first, _ = exported
    result, _ = export(base, recipients, tmp_path / "again")
    assert result.exit_code == 0, result.output
    second = decrypt(tmp_path / "again", identity, tmp_path / "decrypted")
    assert (second / "MANIFEST.csv").read_bytes() == (first / "MANIFEST.csv").read_bytes()
    for row in manifest_rows(first):
        assert (second / row["file"]).read_bytes() == (first / row["file"]).read_bytes(), row["file"]
    # the encryption itself is random: same plaintext, other ciphertext
    assert (tmp_path / "again" / "cohort.parquet.age").read_bytes() != (
        first_package / "cohort.parquet.age"
    ).read_bytes()
    # an earlier package is replaced only when asked
    refused, _ = export(base, recipients, tmp_path / "again")
    assert refused.exit_code == 2 and "--replace" in refused.output
    replaced, _ = export(base, recipients, tmp_path / "again", "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".again.")]


def test_each_export_is_audited_with_its_files_hashes_and_recipients(
    exported, base: Warehouse, recipients: Path
) -> None:
    package, plain, _ = exported
    done = [detail for outcome, detail in audit_events(base) if outcome == "exported"]
    detail = next(d for d in done if d["destination"] == str(package))
    assert detail["who"]
    assert {(f["file"], f["sha256"]) for f in detail["files"]} == {
        (r["file"], r["sha256"]) for r in manifest_rows(plain)
    }
    public = (recipients / KEY_FILE).read_text().splitlines()[-1]
    assert detail["recipients"] == [
        {"name": "Example research unit", "public_key": public, "sha256": hashlib.sha256(public.encode()).hexdigest()}
    ]


# --- refusals: each leaves nothing behind ------------------------------------------------------------------------


def test_an_expired_authorisation_is_refused(warehouse: Warehouse, recipients: Path, tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    projects.mkdir()
    text = (PROJECTS_DIR / f"{PROJECT}.yml").read_text(encoding="utf-8")
    text = text.replace("granted: 2026-01-15", "granted: 2025-01-01").replace(
        "expires: 2029-01-14", "expires: 2025-12-31"
    )
    (projects / f"{PROJECT}.yml").write_text(text, encoding="utf-8")
    to = tmp_path / "out" / "package"
    result, payload = export(warehouse, recipients, to, "--projects-dir", str(projects))
    assert_refused(result, payload, to, warehouse, "expired on 2025-12-31")


def test_an_inactive_project_key_is_refused(warehouse: Warehouse, recipients: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute("update keys.key_material set KEY_STATUS = 'retired' where KEY_SCOPE = 'project:P_T2D'")
    to = tmp_path / "package"
    result, payload = export(warehouse, recipients, to)
    assert_refused(result, payload, to, warehouse, "no active project key")


def test_a_column_outside_the_perimeter_is_refused(warehouse: Warehouse, recipients: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(warehouse.database)) as con:
        con.execute(f"alter table {SCHEMA}.ER_PHA_F add column PHA_DEC_TOP varchar")  # a column P_T2D may not see
    to = tmp_path / "package"
    result, payload = export(warehouse, recipients, to)
    assert_refused(
        result, payload, to, warehouse, "file ER_PHA_F.parquet: column PHA_DEC_TOP is outside the perimeter of ER_PHA_F"
    )
    assert "file ER_PHA_F.xpt: column PHA_DEC_TOP" in payload["message"]


def test_a_planted_platform_or_cnam_pseudonym_is_caught(warehouse: Warehouse, recipients: Path, tmp_path: Path) -> None:
    with duckdb.connect(str(warehouse.database)) as con:
        person = con.execute("select min(platform_pseudonym) from keys.person_pseudonyms").fetchall()[0][0]
        professional = con.execute("select min(delivered_identifier) from keys.professional_pseudonyms").fetchall()[0][
            0
        ]
        victim = con.execute(f"select min(NUM_ENQ) from {SCHEMA}.ER_PHA_F").fetchall()[0][0]
        con.execute(f"update {SCHEMA}.ER_PHA_F set NUM_ENQ = ? where NUM_ENQ = ?", [person, victim])
        con.execute(f"update {SCHEMA}.ER_PHA_F set ORG_CLE_NUM = ? where NUM_ENQ = ?", [professional, person])
        planted = con.execute(f"select count(*) from {SCHEMA}.ER_PHA_F where NUM_ENQ = ?", [person]).fetchall()[0][0]
    to = tmp_path / "package"
    result, payload = export(warehouse, recipients, to)
    s = "s are" if planted > 1 else " is"
    assert_refused(
        result,
        payload,
        to,
        warehouse,
        f"file ER_PHA_F.parquet: column NUM_ENQ: {planted} value{s} a platform or CNAM pseudonym",
        f"file ER_PHA_F.parquet: column ORG_CLE_NUM: {planted} value{s}",
        f"file ER_PHA_F.csv: column NUM_ENQ: {planted} value{s}",
        f"file ER_PHA_F.xpt: column NUM_ENQ: {planted} value{s}",
    )
    assert person not in result.output and professional not in result.output
    assert person not in json.dumps(audit_events(warehouse))


def test_a_small_cell_in_the_aggregate_is_refused(
    warehouse: Warehouse, recipients: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("snds.projects.page.suppress", lambda *args, **kwargs: set())  # a page that hides nothing
    to = tmp_path / "package"
    result, payload = export(warehouse, recipients, to)
    assert_refused(
        result, payload, to, warehouse, f"file {PROJECT}.project.json: profile.", "a count under 11 is shown"
    )


def test_a_failure_half_way_leaves_no_plaintext_and_no_package(
    warehouse: Warehouse, recipients: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snds.export.package as package

    encrypted: list[str] = []
    real = package._encrypt

    def encrypt_then_stop(source: Path, target: Path, keys: list) -> None:
        real(source, target, keys)
        encrypted.append(target.name)
        if len(encrypted) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the encryption

    monkeypatch.setattr(package, "_encrypt", encrypt_then_stop)
    to = tmp_path / "package"
    arguments = ["project", "export", PROJECT, "--database", str(warehouse.database), "--to", str(to)]
    result = CliRunner().invoke(main, [*arguments, "--recipients-dir", str(recipients)])
    assert result.exit_code != 0 and len(encrypted) == 3
    assert leftovers(to) == []


def test_an_existing_destination_is_not_overwritten(warehouse: Warehouse, recipients: Path, tmp_path: Path) -> None:
    to = tmp_path / "package"
    to.mkdir()
    (to / "notes.txt").write_text("mine\n")
    result, _ = export(warehouse, recipients, to, "--replace")
    assert result.exit_code == 2 and "not an earlier export" in result.output
    assert [p.name for p in to.iterdir()] == ["notes.txt"]


# --- the definition's recipients ---------------------------------------------------------------------------------


def _definition_with(tmp_path: Path, export_text: str) -> Path:
    text = (PROJECTS_DIR / f"{PROJECT}.yml").read_text(encoding="utf-8")
    head, _ = text.split("  export:", 1)
    path = tmp_path / f"{PROJECT}.yml"
    path.write_text(head + export_text, encoding="utf-8")
    return path


def test_public_keys_are_checked_with_the_key_path(tmp_path: Path, recipients: Path) -> None:
    bad = _definition_with(
        tmp_path,
        "  export:\n    formats: [xpt, parquet]\n    recipients:\n"
        "      - {name: A, public_key: age1notakey}\n"
        "      - {name: B, public_key_file: ../etc/passwd}\n"
        "      - {name: C, public_key: x, public_key_file: k.pub}\n",
    )
    with pytest.raises(ProjectDefinitionError) as error:
        load_definition(bad)
    message = str(error.value)
    assert "outputs.export.recipients[1].public_key_file: expected a plain file name" in message
    assert "outputs.export.recipients[2]: expected exactly one of public_key, public_key_file" in message
    good = _definition_with(
        tmp_path,
        f"  export:\n    formats: [xpt, parquet]\n    recipients:\n"
        f"      - {{name: A, public_key: age1notakey}}\n      - {{name: B, public_key_file: {KEY_FILE}}}\n",
    )
    with pytest.raises(ProjectDefinitionError) as error:
        load_definition(good)
    assert "outputs.export.recipients[0].public_key: not a valid age public key" in str(error.value)
    public = (recipients / KEY_FILE).read_text().splitlines()[-1]
    fine = _definition_with(
        tmp_path,
        f"  export:\n    formats: [xpt, parquet]\n    recipients:\n      - {{name: A, public_key: {public}}}\n",
    )
    definition = load_definition(fine)
    assert definition.outputs.export.formats == ("parquet", "xpt")
    assert definition.outputs.export.recipients[0].public_key == public


def test_a_missing_or_secret_key_file_is_refused_with_its_key_path(
    warehouse: Warehouse, tmp_path: Path, identity: x25519.Identity
) -> None:
    empty = tmp_path / "none"
    empty.mkdir()
    to = tmp_path / "package"
    result, payload = export(warehouse, empty, to)
    assert_refused(result, payload, to, warehouse, "outputs.export.recipients[0].public_key_file: no file")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / KEY_FILE).write_text(f"{identity}\n", encoding="ascii")
    result, payload = export(warehouse, secret, to)
    assert_refused(result, payload, to, warehouse, "holds a secret key")
    assert str(identity) not in result.output
    shutil.rmtree(secret)
