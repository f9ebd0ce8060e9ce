"""Access declarations (`access/<login>.yml`): nominal accounts, their profile's potential identifier, dated rights.

`load_declarations(folder)` reads every declaration, checks it against `access/access.schema.json`, then what a
schema cannot: the login against the file name and the platform's own names, each right's project against its
definition (`projects/<ID>.yml`): it exists, the right ends at the latest when the authorisation expires, and the
project's potential identifier is the one of the person's profile (a profile sees at most one). Every problem of
every file is collected and raised together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from snds import identifiers
from snds.config import PROJECT_ROOT
from snds.projects.definition import ProjectDefinition, ProjectDefinitionError, load_definition
from snds.projects.schema import PROJECTS_DIR, YamlError, key_path, read_yaml, schema_problems

ACCESS_DIR = PROJECT_ROOT / "access"
SCHEMA_PATH = ACCESS_DIR / "access.schema.json"
RESEARCHER, DATA_MANAGER, PLATFORM_OPERATOR = "researcher", "data_manager", "platform_operator"
PROJECT_ROLES = (RESEARCHER, DATA_MANAGER)
# Logins that would collide with the platform's own roles, schemas or the engines' accounts.
RESERVED_LOGIN_PREFIXES = ("snds", "project_", "pg_")
RESERVED_LOGINS = frozenset({"postgres", "landing", "int", "marts", "audit", "keys", "public", "sys", "system"})


class AccessDeclarationError(ValueError):
    """Declarations that cannot be used: one line per problem, naming the file and the key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Right:
    role: str  # RESEARCHER, DATA_MANAGER or PLATFORM_OPERATOR
    project: str | None  # the project id for a project role
    start: date
    end: date  # the last valid day

    def active_on(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Person:
    login: str
    name: str
    organisation: str
    identifier_kind: str | None
    rights: tuple[Right, ...]
    path: Path

    def active_rights(self, day: date) -> tuple[Right, ...]:
        return tuple(r for r in self.rights if r.active_on(day))


@cache
def access_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_declarations(folder: Path = ACCESS_DIR, projects_dir: Path = PROJECTS_DIR) -> list[Person]:
    """Every person declared in `folder` (`*.yml`), by login; AccessDeclarationError with every problem."""
    problems: list[str] = []
    people: list[Person] = []
    definitions: dict[str, ProjectDefinition | None] = {}
    for path in sorted(folder.glob("*.yml")) if folder.is_dir() else ():
        person = _person(path, problems, lambda pid: _definition(pid, projects_dir, definitions, problems))
        if person is not None:
            people.append(person)
    if not folder.is_dir():
        problems.append(f"{folder}: no access declarations folder")
    if problems:
        raise AccessDeclarationError(problems)
    return people


def _definition(
    project_id: str, projects_dir: Path, known: dict[str, ProjectDefinition | None], problems: list[str]
) -> ProjectDefinition | None:
    if project_id not in known:
        try:
            known[project_id] = load_definition(projects_dir / f"{identifiers.project_id(project_id)}.yml")
        except identifiers.InvalidIdentifier as error:
            known[project_id] = None
            problems.append(str(error))
        except ProjectDefinitionError:
            known[project_id] = None  # a missing or broken definition: said once, by the right that names it
    return known[project_id]


def _person(path: Path, problems: list[str], definition: Any) -> Person | None:
    def problem(parts: tuple[str | int, ...], message: str) -> None:
        problems.append(f"{path.name}: {key_path(parts)}: {message}")

    try:
        document = read_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        problem((), f"cannot be read ({error})")
        return None
    except YamlError as error:
        problem(("(yaml)",), f"malformed YAML: {error}")
        return None
    found = schema_problems(document, access_schema())
    for where, message in found:
        problems.append(f"{path.name}: {where}: {message}")
    if found:
        return None
    login = document["login"]
    if login != path.stem:
        problem(("login",), f"expected the file name {path.stem!r}, found {login!r}")
    if login in RESERVED_LOGINS or login.startswith(RESERVED_LOGIN_PREFIXES):
        problem(("login",), "a name the platform keeps for its own roles and schemas")
    kind = document.get("identifier_kind")
    rights = []
    for index, raw in enumerate(document["rights"]):
        right = Right(
            raw["role"], raw.get("project"), date.fromisoformat(raw["from"]), date.fromisoformat(raw["until"])
        )
        where = ("rights", index)
        if right.end < right.start:
            problem((*where, "until"), f"expected a day on or after {right.start}, found {right.end}")
        if right.role == PLATFORM_OPERATOR:
            if right.project is not None:
                problem((*where, "project"), "a platform operator's right names no project")
        elif right.project is None:
            problem((*where, "project"), f"a {right.role} right names its project")
        else:
            project = definition(right.project)
            if project is None:
                problem((*where, "project"), f"no valid definition projects/{right.project}.yml")
            else:
                expires = project.authorisation.expires
                if right.end > expires:
                    problem((*where, "until"), f"after the authorisation's expiry ({expires}) of {right.project}")
                needed = project.perimeter.identifier_kind
                if needed is not None and needed != kind:
                    seen = f"sees {kind}" if kind else "sees none"
                    problem(
                        (*where, "project"),
                        f"{right.project} shows the potential identifier {needed}; this profile {seen}",
                    )
        rights.append(right)
    return Person(login, document["name"], document["organisation"], kind, tuple(rights), path)
