"""Read the public SNDS dictionary (schema-snds, MPL-2.0) into typed records.

Only this module knows the dictionary's file layout: Table Schema JSON files under `schemas/<product>/`
(one per table or PMSI template) and nomenclatures under `nomenclatures/<source>/<NAME>.json|csv`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

NOMENCLATURE_PRODUCT = "NOMENCLATURES"


class DictionaryError(Exception):
    """The dictionary is missing or not in the expected layout."""


@dataclass(frozen=True)
class YearSpan:
    """The years in which a table or a column exists, from the dictionary's history fields.

    `created` is the first year present and `deleted` the first year absent; the dictionary writes
    `created == deleted` for something that existed in that single year only.
    """

    created: int | None = None
    deleted: int | None = None
    missing: frozenset[int] = frozenset()

    def contains(self, year: int) -> bool:
        if self.created is not None and year < self.created:
            return False
        if self.deleted is not None:
            last = self.created if self.deleted == self.created else self.deleted - 1
            if year > last:
                return False
        return year not in self.missing

    @property
    def is_current(self) -> bool:
        """True when the dictionary records no deletion."""
        return self.deleted is None

    @classmethod
    def parse(cls, created: str, deleted: str, missing: Iterable[str]) -> YearSpan:
        return cls(_year(created), _year(deleted), frozenset(int(y) for y in missing if y.strip()))


def _year(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text else None


@dataclass(frozen=True)
class DictColumn:
    name: str
    logical_type: str  # the dictionary's `type`: string, integer, number, date, datetime, year, ...
    storage: str  # the dictionary's `type_oracle`: string, number, integer, date, datetime
    length: str | None  # declared length: "13", "10,2" or None
    format: str
    nomenclature: str | None
    years: YearSpan
    label: str = field(default="", compare=False)  # French text: never committed


@dataclass(frozen=True)
class ForeignKey:
    """A declared link: `columns` of this table reference `parent_columns` of `parent` (a table or template)."""

    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]


@dataclass(frozen=True)
class DictTable:
    name: str  # table name, or PMSI template name such as T_MCOaaB
    product: str
    columns: tuple[DictColumn, ...]
    primary_key: tuple[str, ...]
    years: YearSpan
    source: str  # dictionary folder, e.g. "PMSI/PMSI MCO" or "ORAVAL"
    label: str = field(default="", compare=False)
    notes: str = field(default="", compare=False)
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def is_nomenclature(self) -> bool:
        return self.product == NOMENCLATURE_PRODUCT


def read_dictionary(reference_dir: Path) -> list[DictTable]:
    """All tables, templates and nomenclatures of the dictionary, sorted by name."""
    schemas = reference_dir / "schemas"
    nomenclatures = reference_dir / "nomenclatures"
    if not schemas.is_dir() or not nomenclatures.is_dir():
        raise DictionaryError(
            f"{reference_dir} does not look like schema-snds (expected schemas/ and nomenclatures/); "
            "set SNDS_REFERENCE_DIR or pass --reference"
        )
    tables = [_read_table(path, schemas) for path in sorted(schemas.rglob("*.json"))]
    tables += [_read_nomenclature(path) for path in sorted(nomenclatures.rglob("*.json"))]
    names = [t.name for t in tables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DictionaryError(f"tables defined twice in the dictionary: {', '.join(duplicates)}")
    by_name = {t.name: t for t in tables}
    return sorted((_with_parent_spelling(t, by_name) for t in tables), key=lambda t: t.name)


def schema_table_paths(reference_dir: Path) -> dict[str, Path]:
    """Each table or template file of schemas/, by name: to read a few of them alone (`read_schema_table`)."""
    return {path.stem: path for path in (reference_dir / "schemas").rglob("*.json")}


def read_schema_table(path: Path, reference_dir: Path) -> DictTable:
    """One table or template of schemas/ (its links keep the dictionary's spelling of parent columns)."""
    return _read_table(path, reference_dir / "schemas")


def _load_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DictionaryError(f"{path}: cannot read dictionary file ({error})") from error


def _keys(raw: str | list[str] | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _spelling(name: str, names: Collection[str]) -> str | None:
    """`name` as `names` spell it: itself, else its only case-insensitive match (the dictionary's links mix cases:
    `ETA_NUM_ePMSI`, `ben_nir_psa` -> `BEN_NIR_PSA`)."""
    if name in names:
        return name
    matches = [n for n in names if n.casefold() == name.casefold()]
    return matches[0] if len(matches) == 1 else None


def _foreign_keys(raw: list[dict] | None, columns: tuple[DictColumn, ...]) -> tuple[ForeignKey, ...]:
    """The declared foreign keys whose columns exist in the table, spelt as the table spells them."""
    names = [c.name for c in columns]
    links = []
    for entry in raw or []:
        fields = tuple(_spelling(k, names) for k in _keys(entry["fields"]))
        reference = entry["reference"]
        parent_fields = _keys(reference["fields"])
        if len(fields) == len(parent_fields) and all(fields):
            links.append(ForeignKey(tuple(f for f in fields if f), reference["resource"], parent_fields))
    return tuple(dict.fromkeys(links))


def _with_parent_spelling(table: DictTable, tables: dict[str, DictTable]) -> DictTable:
    """The table with its links' parent columns spelt as the parent table spells them (when it has them)."""
    links = []
    for link in table.foreign_keys:
        parent = tables.get(link.parent)
        names = [c.name for c in parent.columns] if parent else []
        spelt = tuple(_spelling(k, names) or k for k in link.parent_columns)
        links.append(replace(link, parent_columns=spelt))
    return replace(table, foreign_keys=tuple(dict.fromkeys(links)))


def _nomenclature_link(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return None if raw in ("", "-") else raw


def _read_table(path: Path, schemas: Path) -> DictTable:
    data = _load_json(path)
    history = data.get("history") or {}
    columns = tuple(
        DictColumn(
            name=f["name"],
            logical_type=f["type"],
            storage=f.get("type_oracle") or f["type"],
            length=(f.get("length") or None),
            format=f.get("format") or "default",
            nomenclature=_nomenclature_link(f.get("nomenclature")),
            years=YearSpan.parse(f.get("dateCreated", ""), f.get("dateDeleted", ""), f.get("dateMissing", [])),
            label=f.get("description", ""),
        )
        for f in data["fields"]
    )
    return DictTable(
        name=data["name"],
        product=data["produit"],
        columns=columns,
        primary_key=_keys(data.get("primaryKey")),
        years=YearSpan.parse(
            history.get("dateCreated", ""), history.get("dateDeleted", ""), history.get("dateMissing", [])
        ),
        source=path.parent.relative_to(schemas).as_posix(),
        label=data.get("title", ""),
        notes=data.get("observation", ""),
        foreign_keys=_foreign_keys(data.get("foreignKeys"), columns),
    )


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclass
class _Observed:
    """What a nomenclature's data says about one column: widths and whether numbers fit it."""

    max_chars: int = 0
    integer_digits: int = 0
    scale: int = 0
    all_integer: bool = True
    all_decimal: bool = True

    def add(self, value: str) -> None:
        if value == "":
            return
        self.max_chars = max(self.max_chars, len(value))
        if self.all_integer and not _INTEGER.fullmatch(value):
            self.all_integer = False
        if self.all_decimal and _DECIMAL.fullmatch(value):
            whole, _, fraction = value.lstrip("-").partition(".")
            self.integer_digits = max(self.integer_digits, len(whole.lstrip("0")) or 1)
            self.scale = max(self.scale, len(fraction))
        else:
            self.all_decimal = False


def _observe(csv_path: Path, names: list[str]) -> dict[str, _Observed] | None:
    if not csv_path.exists():
        return None
    observed = {name: _Observed() for name in names}
    with csv_path.open(encoding="utf-8", newline="") as handle:
        rows: Iterator[list[str]] = csv.reader(handle, delimiter=";")
        header = next(rows, [])
        positions = [(i, observed[n]) for i, n in enumerate(header) if n in observed]
        for row in rows:
            for i, obs in positions:
                if i < len(row):
                    obs.add(row[i])
    return observed


def _nomenclature_column(f: dict, obs: _Observed | None) -> DictColumn:
    """A nomenclature column typed from its schema, sized from its data.

    The data wins over the schema where they disagree: a declared integer holding codes with leading
    zeros or letters ("030", "2A") is stored as a string, so that the codes survive unchanged.
    """
    logical = f["type"]
    storage, length = "string", None
    if obs is not None and obs.max_chars:
        if logical == "integer" and obs.all_integer:
            storage, length = "number", str(obs.integer_digits)
        elif logical == "number" and obs.all_decimal:
            storage = "number"
            length = f"{obs.integer_digits + obs.scale},{obs.scale}" if obs.scale else str(obs.integer_digits)
        else:
            length = str(obs.max_chars)
    elif logical in ("integer", "number"):
        storage = "number"
    return DictColumn(
        name=f["name"],
        logical_type=logical if storage != "string" else "string",
        storage=storage,
        length=length,
        format=f.get("format") or "default",
        nomenclature=None,
        years=YearSpan(),
        label=f.get("description", f.get("role", "")),
    )


def _read_nomenclature(path: Path) -> DictTable:
    data = _load_json(path)
    names = [f["name"] for f in data["fields"]]
    observed = _observe(path.with_suffix(".csv"), names)
    return DictTable(
        name=data["name"],
        product=NOMENCLATURE_PRODUCT,
        columns=tuple(_nomenclature_column(f, observed[f["name"]] if observed else None) for f in data["fields"]),
        primary_key=_keys(data.get("primaryKey")),
        years=YearSpan(),
        source=path.parent.name,
        label=data.get("title", ""),
        notes=data.get("description", ""),
    )
