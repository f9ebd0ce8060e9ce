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
    store.retire_project(con, "P001")
    assert store.init_project(con, "P001") == "project:P001-v2"


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
