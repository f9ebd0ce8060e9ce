"""Access declarations (`access/<login>.yml`) and the rights they give: checked before any database is touched."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from snds.access.declarations import ACCESS_DIR, AccessDeclarationError, load_declarations
from snds.access.plan import Change, changes_from_any_state
from snds.access.rights import (
    KEYS_SCHEMA,
    OPERATOR_ROLE,
    OPERATOR_SCHEMAS,
    PSEUDONYMISATION_ROLE,
    USERS_ROLE,
    declared_rights,
)

DAY = date(2026, 12, 1)
PROJECTS = ("P_MI", "P_T2D")


def _declare(folder: Path, login: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{login}.yml"
    path.write_text(f"login: {login}\nname: Test Person\norganisation: Test unit\n{body}", encoding="utf-8")
    return path


def _right(role: str, until: str = "2027-01-14", project: str | None = "P_T2D", start: str = "2026-01-15") -> str:
    named = f"    project: {project}\n" if project else ""
    return f"  - role: {role}\n{named}    from: {start}\n    until: {until}\n"


def test_the_demo_declarations_are_accepted() -> None:
    people = load_declarations(ACCESS_DIR)
    assert {p.login for p in people} == {"amartin", "bdupont", "cleroy", "dmoreau"}
    active = {p.login: [r.role for r in p.active_rights(DAY)] for p in people}
    assert active == {
        "amartin": ["researcher"],
        "bdupont": ["data_manager"],
        "cleroy": ["platform_operator"],
        "dmoreau": [],
    }


@pytest.mark.parametrize(
    ("login", "body", "expected"),
    [
        ("postgres", "rights:\n" + _right("researcher"), "login: a name the platform keeps"),
        ("snds_admin", "rights:\n" + _right("researcher"), "login: a name the platform keeps"),
        ("Robert", "rights:\n" + _right("researcher"), "login: expected the database account"),
        ("emma", "rights:\n" + _right("researcher", project="P_NOPE"), "no valid definition projects/P_NOPE.yml"),
        ("emma", "rights:\n" + _right("researcher", project="../x"), "is not accepted"),
        ("emma", "identifier_kind: care_date\nrights:\n" + _right("researcher", until="2029-06-30"), "expiry"),
        ("emma", "identifier_kind: death\nrights:\n" + _right("researcher"), "identifier care_date"),
        ("emma", "rights:\n" + _right("researcher"), "this profile sees none"),
        ("emma", "rights:\n" + _right("platform_operator"), "a platform operator's right names no project"),
        ("emma", "rights:\n" + _right("researcher", project=None), "a researcher right names its project"),
        ("emma", "rights:\n" + _right("researcher", until="2025-01-01"), "expected a day on or after"),
        ("emma", "rights:\n  - role: researcher\n    project: P_T2D\n    from: 2026-01-15\n", "until: required"),
        ("emma", "rights:\n  - role: owner\n    from: 2026-01-15\n    until: 2026-02-01\n", "role:"),
        ("emma", "rights: []\n", "rights:"),
    ],
)
def test_a_declaration_that_breaks_a_rule_is_refused_with_its_file_and_key(
    tmp_path: Path, login: str, body: str, expected: str
) -> None:
    _declare(tmp_path, login, body)
    with pytest.raises(AccessDeclarationError) as refused:
        load_declarations(tmp_path)
    assert f"{login}.yml: " in str(refused.value)
    assert expected in str(refused.value)


def test_every_problem_of_every_file_is_reported_together(tmp_path: Path) -> None:
    _declare(tmp_path, "anna", "rights:\n" + _right("researcher", project="P_NOPE"))
    _declare(tmp_path, "bob", "rights:\n" + _right("platform_operator") + _right("researcher", until="2025-01-01"))
    with pytest.raises(AccessDeclarationError) as refused:
        load_declarations(tmp_path)
    assert len(refused.value.problems) == 4  # anna's project; bob's operator project, P_T2D profile, dates


def test_rights_follow_the_days_and_researchers_never_reach_the_platform_schemas() -> None:
    people = load_declarations(ACCESS_DIR)
    rights = declared_rights(people, PROJECTS, DAY, "platform")
    researcher_roles = {"snds_p_t2d_reader", "snds_p_mi_reader", "snds_p_t2d_manager", "snds_p_mi_manager"}
    assert ("snds_p_t2d_reader", "amartin") in rights.memberships
    assert ("snds_p_mi_manager", "bdupont") in rights.memberships
    assert ("snds_p_mi_reader", "snds_p_mi_manager") in rights.memberships  # a data manager reads too
    assert (OPERATOR_ROLE, "cleroy") in rights.memberships
    assert rights.logins == {"amartin": True, "bdupont": True, "cleroy": True, "dmoreau": False}
    assert not any(member == "dmoreau" for role, member in rights.memberships if role != USERS_ROLE)
    platform = {*OPERATOR_SCHEMAS, KEYS_SCHEMA}
    assert not {(s, r) for s, r in rights.table_reads if r in researcher_roles and s in platform}
    assert {r for s, r in rights.table_reads if s == KEYS_SCHEMA} == {PSEUDONYMISATION_ROLE}
    assert {r for p, s, r in rights.schema_grants if s == KEYS_SCHEMA} == {PSEUDONYMISATION_ROLE}
    later = declared_rights(people, PROJECTS, date(2027, 1, 15), "platform")
    assert later.logins["amartin"] is False and ("snds_p_t2d_reader", "amartin") not in later.memberships


def test_the_script_for_any_state_revokes_what_has_ended() -> None:
    people = load_declarations(ACCESS_DIR)
    changes = changes_from_any_state(declared_rights(people, PROJECTS, DAY, "snds"), people, "snds")
    assert Change("revoke_role", ("snds_p_t2d_reader", "dmoreau")) in changes
    assert Change("create_login", ("dmoreau", "denied")) in changes
    assert Change("grant_role", ("snds_p_t2d_reader", "amartin")) in changes
    assert [c.action for c in changes][:1] == ["create_schema"] and changes[-1].action == "revoke_role"
