"""Reading a project definition file and checking it against `projects/project.schema.json`.

YAML is read with dates kept as text (the schema checks them as `YYYY-MM-DD`) and a key written twice is refused
(PyYAML would silently keep the last one). Schema errors are turned into one line each: the key path
(`cohort.inclusion[0].window.from_days`) and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from snds.config import PROJECT_ROOT

PROJECTS_DIR = PROJECT_ROOT / "projects"
SCHEMA_PATH = PROJECTS_DIR / "project.schema.json"

# Validators whose failure at the level of a `oneOf` branch means that the branch is not the one the author meant
# (another type), and those that mean it is probably meant but incomplete.
_OTHER_SHAPE = frozenset({"type", "const", "enum"})
_INCOMPLETE = frozenset({"required", "additionalProperties"})


class YamlError(ValueError):
    """The file is not readable YAML: the message gives the line and column."""


class _Loader(yaml.CSafeLoader):
    """The C SafeLoader that keeps dates as strings and refuses a key written twice in one mapping."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise YamlError(f"line {mark.line + 1}, column {mark.column + 1}: key {key!r} is written twice")
        seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_yaml(text: str) -> Any:
    """The YAML document in `text`, or YamlError naming the line and column of the problem."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlError(f"{where}{error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise YamlError(str(error)) from None


@cache
def project_schema() -> dict[str, Any]:
    """The JSON Schema of a project definition (projects/project.schema.json)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def key_path(parts: Iterable[str | int]) -> str:
    """`cohort.inclusion[0].window.from_days` from its parts; `(top)` for the document itself."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def schema_problems(document: Any, schema: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Every error of `document` against `schema` (a project definition's by default) as (key path, what was
    expected), in document order."""
    validator = jsonschema.Draft202012Validator(
        project_schema() if schema is None else schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    problems = [problem for error in validator.iter_errors(document) for problem in _describe(error)]
    return sorted(set(problems), key=lambda p: (_order(document, p[0]), p))


def _order(document: Any, path: str) -> tuple[int, ...]:
    """Sort key following the document: top-level keys in the order they were written."""
    head = path.split(".", 1)[0].split("[", 1)[0]
    keys = list(document) if isinstance(document, dict) else []
    return (keys.index(head) if head in keys else len(keys),)


def _describe(error: ValidationError, prefix: Sequence[str | int] = ()) -> Iterator[tuple[str, str]]:
    parts = [*prefix, *error.path]
    where = key_path(parts)
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        for name in value:
            if isinstance(instance, dict) and name not in instance:
                yield key_path([*parts, name]), "required key missing"
    elif kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        known = set(allowed)
        for name in instance if isinstance(instance, dict) else ():
            if name not in known:
                expected = f"expected one of {', '.join(allowed)}" if allowed else "no key expected here"
                yield key_path([*parts, str(name)]), f"unknown key ({expected})"
    elif kind in ("oneOf", "anyOf"):
        yield from _describe_alternatives(error, parts)
    elif "propertyNames" in error.relative_schema_path:  # the failing name itself; its path is the mapping's
        yield key_path([*parts, str(instance)]), f"not an accepted name ({_name_rule(error)})"
    else:
        yield where, _expected(error)


def _describe_alternatives(error: ValidationError, parts: list[str | int]) -> Iterator[tuple[str, str]]:
    branches: list[Any] = error.validator_value
    if all(set(branch) == {"required"} for branch in branches):
        names = ", ".join(name for branch in branches for name in branch["required"])
        how_many = "exactly one" if error.validator == "oneOf" else "at least one"
        yield key_path(parts), f"expected {how_many} of {names}"
        return
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or ():
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)

    def rank(errors: list[ValidationError]) -> int:
        shallow = {e.validator for e in errors if not e.path}
        return 2 if shallow & _OTHER_SHAPE else 1 if shallow & _INCOMPLETE else 0

    ranked = sorted((rank(errors), index) for index, errors in by_branch.items())
    if by_branch and (len(ranked) == 1 or ranked[0][0] < ranked[1][0]) and ranked[0][0] < 2:
        for sub in by_branch[ranked[0][1]]:
            yield from _describe(sub, parts)
        return
    description = error.schema.get("description") or "a value of another shape"
    yield key_path(parts), f"expected {_lower_first(description)}"


def _name_rule(error: ValidationError) -> str:
    if str(error.schema.get("pattern", "")).startswith("^[a-z]"):
        return "expected lower-case letters, digits and _, starting with a letter"
    return "expected letters, digits and _, starting with a letter"


_TYPES = {"string": "a string", "integer": "an integer", "object": "a mapping", "array": "a list", "number": "a number"}


def _expected(error: ValidationError) -> str:
    kind, value, instance = error.validator, error.validator_value, error.instance
    found = f", found {_shown(instance)}"
    if kind == "type":
        hint = " (quote codes written as numbers)" if value == "string" and isinstance(instance, int) else ""
        return f"expected {_TYPES.get(value, value)}{found}{hint}"
    if kind == "enum":
        return f"expected one of {', '.join(str(v) for v in value)}{found}"
    if kind == "const":
        return f"expected {value}{found}"
    if kind in ("pattern", "format"):
        description = error.schema.get("description", "")
        if "YYYY-MM-DD" in description or value == "date" or "[0-9]{4}-" in str(value):
            return f"expected a date written YYYY-MM-DD{found}"
        return f"expected {_lower_first(description) or 'another spelling'}{found}"
    if kind == "minimum":
        return f"expected at least {value}{found}"
    if kind == "maximum":
        return f"expected at most {value}{found}"
    if kind == "minItems":
        return f"expected at least {value} item{'s' if value > 1 else ''}"
    if kind == "uniqueItems":
        return "expected no item written twice"
    if kind == "minProperties":
        return f"expected at least {value} entr{'ies' if value > 1 else 'y'}"
    if kind == "minLength":
        return "expected a non-empty text"
    if kind == "maxLength":
        return f"expected at most {value} characters"
    return error.message


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
