"""Key material, the key store's life cycle, and the leak scan (no dbt: these run in a second)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import subprocess
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from snds import config, identifiers
from snds.cli import main
from snds.keys import leaks, store
from snds.keys.material import (
    KeyRefused,
    derive_platform_key,
    fingerprint,
    pads,
    pseudonym,
    random_key,
    read_secret,
    write_new_secret,
)

SECRET_A = b"a" * 40
SECRET_B = b"b" * 40


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "store.duckdb"))
    store.create_key_store(connection)
    return connection


def _events(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    return con.execute("select ACTION, OBJECT, OUTCOME from audit.events order by EVENT_AT").fetchall()


def test_pads_reproduce_hmac_in_plain_sha256() -> None:
    key = random_key()
    material = pads(key)
    value = "BEN_NIR_PSA é 0123".encode()
    inner = hashlib.sha256(material.ipad + value).digest()
    assert hashlib.sha256(material.opad + inner).hexdigest() == hmac.new(key, value, hashlib.sha256).hexdigest()
    assert material.key == key


def test_domains_get_different_keys_and_pseudonyms() -> None:
    person, professional = derive_platform_key(SECRET_A, "person"), derive_platform_key(SECRET_A, "professional")
    assert person != professional and person == derive_platform_key(SECRET_A, "person")
    assert pseudonym(person, "12345678", 17) != pseudonym(professional, "12345678", 17)
    assert len(pseudonym(person, "x", 17)) == 17 and pseudonym(person, "x", 17).isupper()
    assert fingerprint(person) not in person.hex()


def test_secrets_are_read_with_clear_refusals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"too short\n")
    with pytest.raises(KeyRefused, match="at least 32"):
        read_secret(short, None)
    with pytest.raises(KeyRefused, match="does not exist"):
        read_secret(tmp_path / "absent", None)
    monkeypatch.delenv("SNDS_TEST_SECRET", raising=False)
    with pytest.raises(KeyRefused, match="not set"):
        read_secret(None, "SNDS_TEST_SECRET")
    with pytest.raises(KeyRefused, match="either"):
        read_secret(short, "SNDS_TEST_SECRET")
    monkeypatch.setenv("SNDS_TEST_SECRET", SECRET_A.decode())
    assert read_secret(None, "SNDS_TEST_SECRET") == SECRET_A
    generated = tmp_path / "sub" / "platform.secret"
    write_new_secret(generated)
    assert stat.S_IMODE(generated.stat().st_mode) == 0o600 and len(read_secret(generated, None)) == 64
    with pytest.raises(FileExistsError):
        write_new_secret(generated)


def test_platform_key_life_cycle_is_guarded_and_audited(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(KeyRefused, match="no platform key"):
        store.rotate_platform(con, SECRET_B)
    assert store.init_platform(con, SECRET_A) == "platform-v1"
    with pytest.raises(KeyRefused, match="already loaded"):
        store.init_platform(con, SECRET_B)
    with pytest.raises(KeyRefused, match="already used"):
        store.rotate_platform(con, SECRET_A)
    assert store.rotate_platform(con, SECRET_B) == "platform-v2"
    with pytest.raises(KeyRefused, match="still kept"):
        store.rotate_platform(con, b"c" * 40)
    con.execute("update keys.key_material set KEY_STATUS = 'retired' where KEY_ID = 'platform-v1'")
    with pytest.raises(KeyRefused, match="already used"):  # an earlier secret would revive retired pseudonyms
        store.rotate_platform(con, SECRET_A)
    con.execute("update keys.key_material set KEY_STATUS = 'previous' where KEY_ID = 'platform-v1'")
    with pytest.raises(KeyRefused, match="not yet rebuilt"):
        store.retire_previous_platform_key(con)  # the correspondences were never built under platform-v2
    statuses = {(k.key_id, k.domain): k.status for k in store.list_keys(con)}
    assert statuses == {
        ("platform-v1", "person"): "previous",
        ("platform-v1", "professional"): "previous",
        ("platform-v2", "person"): "active",
        ("platform-v2", "professional"): "active",
    }
    assert [e for e in _events(con) if e[2] == "done"] == [
        ("keys.init", "platform", "done"),
        ("keys.rotate", "platform", "done"),
    ]
    assert sum(e[2] == "refused" for e in _events(con)) == 6


def test_retire_destroys_the_material(con: duckdb.DuckDBPyConnection) -> None:
    store.init_platform(con, SECRET_A)
    store.rotate_platform(con, SECRET_B)
    for table in store.CORRESPONDENCES:  # as `dbt build` leaves them under the new key
        con.execute(f"create table keys.{table} as select 'x' as delivered_identifier, 'platform-v2' as key_id")
    assert store.retire_previous_platform_key(con) == "platform-v1"
    rows = con.execute("select KEY_STATUS, IPAD, OPAD, RETIRED_AT from keys.key_material where KEY_ID = 'platform-v1'")
    assert all(
        status == "retired" and ipad is None and opad is None and at for status, ipad, opad, at in rows.fetchall()
    )
    with pytest.raises(KeyRefused, match="no previous"):
        store.retire_previous_platform_key(con)


def test_project_keys_are_random_and_closable(con: duckdb.DuckDBPyConnection) -> None:
    assert store.init_project(con, "P001") == "project:P001-v1"
    store.init_project(con, "P002")
    with pytest.raises(KeyRefused, match="already has"):
        store.init_project(con, "P001")
    with pytest.raises(KeyRefused, match="letters, digits"):
        store.init_project(con, "P001'; drop table keys.key_material; --")
    prints = {k.fingerprint for k in store.list_keys(con)}
    assert len(prints) == 2
    store.retire_project(con, "P001")  # the project is closed: its pseudonyms can never be made again
    with pytest.raises(KeyRefused, match="was closed"):
        store.init_project(con, "P001")


def _planted(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "artifacts"
    folder.mkdir(exist_ok=True)
    (folder / "clean.sql").write_text("select 1 from dual\n")
    (folder / "run.log").write_text(f"noise {text} noise\n")
    return folder


@pytest.mark.parametrize(
    "encode",
    [
        lambda raw: raw.hex(),
        lambda raw: raw.hex().upper(),
        lambda raw: base64.b64encode(raw).decode(),
        lambda raw: base64.urlsafe_b64encode(raw).decode(),
    ],
    ids=["hex", "HEX", "base64", "base64url"],
)
def test_leak_scan_finds_a_key_in_any_encoding(con: duckdb.DuckDBPyConnection, tmp_path: Path, encode) -> None:
    store.init_platform(con, SECRET_A)
    key = derive_platform_key(SECRET_A, "professional")
    found = leaks.scan_paths([_planted(tmp_path, encode(key))], leaks.key_store_needles(con))
    assert [(Path(f.where).name, f.label.split(" (")[0]) for f in found] == [
        ("run.log", "platform-v1 professional key")
    ]
    assert key.hex() not in " ".join(f.label for f in found)


def test_leak_scan_finds_a_pad_and_the_secret(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    store.init_platform(con, SECRET_A)
    opad = pads(derive_platform_key(SECRET_A, "person")).opad
    needles = leaks.key_store_needles(con) + leaks.secret_needles(SECRET_A)
    assert leaks.scan_paths([_planted(tmp_path, opad.hex())], needles)[0].label == "platform-v1 person opad (hex)"
    labels = {f.label for f in leaks.scan_paths([_planted(tmp_path, SECRET_A.decode())], needles)}
    assert "operator secret (raw bytes)" in labels
    assert not leaks.scan_paths([_planted(tmp_path, "nothing here")], needles)


def test_leak_scan_finds_key_material_as_duckdb_and_python_print_it(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    store.init_platform(con, SECRET_A)
    printed_by_duckdb = con.execute(
        "select cast(IPAD as varchar) from keys.key_material where KEY_DOMAIN = 'person'"
    ).fetchone()[0]
    ipad = pads(derive_platform_key(SECRET_A, "person")).ipad
    needles = leaks.key_store_needles(con)
    found = {f.label for f in leaks.scan_paths([_planted(tmp_path, printed_by_duckdb)], needles)}
    assert "platform-v1 person ipad (as DuckDB prints a blob)" in found
    found = {f.label for f in leaks.scan_paths([_planted(tmp_path, repr(ipad))], needles)}
    assert "platform-v1 person ipad (as Python prints bytes)" in found


def test_the_embedded_servers_files_are_not_read_but_the_rest_of_data_is(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    store.init_platform(con, SECRET_A)
    needles = leaks.key_store_needles(con)
    ipad = pads(derive_platform_key(SECRET_A, "person")).ipad
    for folder in ("data/postgres/base/16384", "data/exports"):  # the server's table files; anything else
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "2619").write_bytes(b"page " + ipad + b" page")
    found = leaks.scan_paths([tmp_path / "data"], needles, leaks.not_read(tmp_path, None))
    assert {f.where for f in found} == {str(tmp_path / "data/exports/2619")}


def test_leak_scan_finds_a_key_cut_across_two_chunks() -> None:
    needle = leaks.Needle("k", b"0123456789abcdef")
    chunks = [b"x" * 100 + b"012345", b"6789abcdef" + b"y" * 100]
    assert leaks._contains(iter(chunks), [needle]) == {"k"}
    assert not leaks._contains(iter([b"0123456", b"x789abcdef"]), [needle])


def test_leak_scan_reads_every_git_object(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    store.init_platform(con, SECRET_A)
    repository = tmp_path / "repo"
    repository.mkdir()
    key = derive_platform_key(SECRET_A, "person")
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repository / "profiles.yml").write_text(f"key: {key.hex()}\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "oops"], check=True)
    (repository / "profiles.yml").write_text("key: env\n")
    subprocess.run([*git, "commit", "-qam", "remove the key"], check=True)
    needles = leaks.key_store_needles(con)
    assert not leaks.scan_paths([repository / "profiles.yml"], needles)
    assert [f.label for f in leaks.scan_git(repository, needles)] == ["platform-v1 person key (hex)"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git work tree laid out as the project's (data/ ignored, its key store and demo secret in data/)."""
    root = tmp_path.resolve() / "project"
    root.mkdir()
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (root / ".gitignore").write_text("target/\nlogs/\ndbt_packages/\n.venv/\ndata/*\n!data/.gitkeep\n")
    (root / "README.txt").write_text("no key here\n")
    (root / "data").mkdir()
    (root / "data" / ".gitkeep").write_text("")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    write_new_secret(root / "data" / "secrets" / "platform.secret")
    with duckdb.connect(str(root / "data" / "warehouse.duckdb")) as con:
        store.create_key_store(con)
        store.init_platform(con, read_secret(root / "data" / "secrets" / "platform.secret", None))
    monkeypatch.setattr(config, "PROJECT_ROOT", root)
    return root


def _platform_key(root: Path, domain: str = "person") -> bytes:
    return derive_platform_key(read_secret(root / "data" / "secrets" / "platform.secret", None), domain)


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"noise {text} noise\n")


def _scan(root: Path, *args: str) -> set[tuple[str, str]]:
    """`snds keys scan --json` on `root`: (file relative to root, form) of each finding."""
    result = CliRunner().invoke(
        main, ["keys", "scan", "--json", "--database", str(root / "data" / "warehouse.duckdb"), *args]
    )
    assert result.exit_code in (0, 1), result.output
    found = {(Path(f["where"]).relative_to(root).as_posix(), f["what"]) for f in json.loads(result.stdout or "[]")}
    assert (result.exit_code == 1) == bool(found)
    return found


@pytest.mark.parametrize(
    "place",
    ["notes.txt", "README.txt", "data/reports/DEMO_2019_2020/conformity.html", "data/anything/deep/x.csv"],
    ids=["untracked", "tracked-modified", "data-reports", "data-anywhere"],
)
def test_leak_scan_reads_the_work_tree_and_all_of_data(project: Path, place: str) -> None:
    key = _platform_key(project)
    _write(project, place, key.hex())
    for ignored in ("dbt_packages/pkg/macros.sql", ".venv/lib/site.py", "data/mirror/.git/objects/ab"):
        _write(project, ignored, key.hex())  # ignored by git and not written by the platform, or never walked
    assert _scan(project, "--no-git") == {(place, "platform-v1 person key (hex)")}
    assert project / place in leaks.work_tree_files(project)  # the scan root is a parameter


def test_leak_scan_finds_the_upper_case_hex_of_a_pad(project: Path) -> None:
    _write(project, "data/reports/pads.txt", pads(_platform_key(project, "professional")).ipad.hex().upper())
    assert _scan(project, "--no-git") == {("data/reports/pads.txt", "platform-v1 professional ipad (HEX)")}


def test_leak_scan_does_not_read_database_files_under_data(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = _platform_key(project).hex()
    for name in ("data/exports/old.duckdb", "data/warehouse.duckdb.wal", "data/exports/x.wal", "copy.duckdb"):
        _write(project, name, key)
    opened: list[Path] = []
    chunks = leaks._file_chunks
    monkeypatch.setattr(leaks, "_file_chunks", lambda path: opened.append(path.relative_to(project)) or chunks(path))
    assert _scan(project, "--no-git") == {("copy.duckdb", "platform-v1 person key (hex)")}  # git would take it
    assert Path("README.txt") in opened
    assert not [p for p in opened if p.parts[0] == "data" and p.name.endswith((".duckdb", ".wal"))]


def test_leak_scan_skips_the_secret_file_but_finds_its_copies(project: Path) -> None:
    secret_file = project / "data" / "secrets" / "platform.secret"
    text = secret_file.read_text().strip()
    _write(project, "data/secrets/platform.secret.bak", text)
    _write(project, "platform.secret", text)
    _write(project, "logs/dbt.log", base64.b64encode(bytes.fromhex(text)).decode())
    _write(project, "data/exports/secret.txt", text.upper())
    found = _scan(project, "--secret-file", str(secret_file))  # as the demo runs it, git objects included
    assert found == {
        ("data/secrets/platform.secret.bak", "operator secret (raw bytes)"),
        ("platform.secret", "operator secret (raw bytes)"),
        ("logs/dbt.log", "operator secret decoded from hex (base64)"),
        ("data/exports/secret.txt", "operator secret decoded from hex (HEX)"),
    }
    assert text not in json.dumps(sorted(found))


def test_leak_scan_never_follows_a_symlink(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, "key.txt", _platform_key(project).hex())
    for name, target in (
        ("target/compiled.sql", outside / "key.txt"),
        ("data/exports", outside),
        ("logs", outside),
        ("link.txt", outside / "key.txt"),
        ("data/reports/linked", outside),
    ):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).symlink_to(target)
    assert not _scan(project, "--no-git")
    assert not _scan(project, "--no-git", str(project / "target"))
    refused = CliRunner().invoke(
        main, ["keys", "scan", "--database", str(project / "data" / "warehouse.duckdb"), str(project / "link.txt")]
    )
    assert refused.exit_code == 1 and "symbolic link" in refused.output


def test_cli_lists_keys_without_material(tmp_path: Path) -> None:
    database = tmp_path / "cli.duckdb"
    secret = tmp_path / "platform.secret"
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "generate", str(secret)]).exit_code == 0
    assert runner.invoke(main, ["keys", "generate", str(secret)]).exit_code == 1
    assert runner.invoke(main, ["keys", "init", "--from-file", str(secret), "--database", str(database)]).exit_code == 0
    result = runner.invoke(main, ["keys", "init", "--project", "P9", "--database", str(database)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(main, ["keys", "list", "--json", "--database", str(database)])
    keys = json.loads(listed.stdout)
    assert {(k["scope"], k["domain"], k["status"]) for k in keys} == {
        ("platform", "person", "active"),
        ("platform", "professional", "active"),
        ("project:P9", "person", "active"),
    }
    key = derive_platform_key(read_secret(secret, None), "person")
    assert key.hex() not in listed.output and pads(key).ipad.hex() not in listed.output
    refused = runner.invoke(main, ["keys", "rotate", "--from-file", str(secret), "--database", str(database)])
    assert refused.exit_code == 1 and "already used" in refused.output
    env_missing = runner.invoke(main, ["keys", "rotate", "--database", str(database)], env={"SNDS_PLATFORM_SECRET": ""})
    assert env_missing.exit_code == 1 and "SNDS_PLATFORM_SECRET" in env_missing.output


def test_one_project_identifier_pattern_for_keys_and_the_pseudonyms_macro() -> None:
    """The key store and `project_pseudonyms` refuse exactly what `snds.identifiers` refuses."""
    macro = (config.PROJECT_ROOT / "macros" / "pseudonymisation" / "project_pseudonyms.sql").read_text("utf-8")
    assert f"modules.re.fullmatch('{identifiers.PROJECT_ID.pattern}'" in macro
    for refused in ("_P1", "-P1", "P-1", "P" * 49, "P1'"):
        with pytest.raises(KeyRefused, match="starting with a letter or digit"):
            store.project_scope(refused)
    assert store.project_scope("P_T2D") == "project:P_T2D"
