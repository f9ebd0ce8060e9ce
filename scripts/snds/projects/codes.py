"""Codes of a definition's code sets that the code lists do not know: warnings, never errors.

Read from the dictionary's nomenclature files (`$SNDS_REFERENCE_DIR/nomenclatures`), without a database. A code
is known when a list holds it; a prefix (or an excluded prefix) when some listed code starts with it. The
dictionary has no list for some systems (cip13, ghm): their codes are not checked, and the report says so. The
dictionary's ATC classes (IR_CIP_V.PHA_ATC_CLA) are 3 characters long: an ATC code is checked on its first 3.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from snds.projects.definition import ProjectDefinition

# system -> (file under nomenclatures/ (glob), code column); several files are merged.
CODE_LISTS: dict[str, tuple[tuple[str, str], ...]] = {
    "icd10": (("ORAVAL/IR_CIM_V.csv", "CIM_COD"), ("ORAVAL/MS_CIM_V.csv", "CIM_COD")),
    "ald": (("ORAVAL/IR_ALD_V.csv", "ALD_030_COD"),),
    "ccam": (("ATIH/IR_CCAM_V*.csv", "CAM_PRS_IDE_COD"),),
    "cip7": (("ORAVAL/IR_CIP_V.csv", "PHA_PRS_IDE"),),
    "atc": (("ORAVAL/IR_CIP_V.csv", "PHA_ATC_CLA"),),
}
ATC_CHECKED_LENGTH = 3


@dataclass(frozen=True)
class CodeReport:
    unknown: tuple[str, ...]  # one line each: key path, system, code, the lists looked in
    unchecked_systems: tuple[str, ...]  # systems used by the definition that no list covers (or missing files)


def unknown_codes(definition: ProjectDefinition, reference: Path) -> CodeReport:
    """The codes, prefixes and excluded prefixes of `definition` that no code list of `reference` knows."""
    unknown: list[str] = []
    unchecked: list[str] = []
    for code_set in definition.cohort.code_sets:
        known = _codes(reference, code_set.system)
        if known is None:
            if code_set.system not in unchecked:
                unchecked.append(code_set.system)
            continue
        lists = ", ".join(Path(pattern).stem for pattern, _ in CODE_LISTS[code_set.system])
        for key, values in (("codes", code_set.codes), ("prefixes", code_set.prefixes), ("exclude", code_set.exclude)):
            for index, value in enumerate(values):
                if code_set.system == "atc":  # the lists hold 3-character classes: A10BA02 is checked as A10
                    found = any(code.startswith(value[:ATC_CHECKED_LENGTH]) for code in known)
                elif key == "codes":
                    found = value in known
                else:
                    found = any(code.startswith(value) for code in known)
                if not found:
                    unknown.append(
                        f"cohort.code_sets.{code_set.name}.{key}[{index}]: {code_set.system} {value} "
                        f"matches no code of {lists}"
                    )
    return CodeReport(tuple(unknown), tuple(unchecked))


@cache
def _codes(reference: Path, system: str) -> frozenset[str] | None:
    """Every code of the system's lists, or None when the system has no list or its files are missing."""
    sources = CODE_LISTS.get(system)
    if sources is None:
        return None
    codes: set[str] = set()
    for pattern, column in sources:
        files = sorted((reference / "nomenclatures").glob(pattern))
        if not files:
            return None
        for path in files:
            with path.open(encoding="utf-8", errors="replace", newline="") as handle:
                rows = csv.reader(handle, delimiter=";")
                header = next(rows, [])
                if column not in header:
                    continue
                at = header.index(column)  # plain rows, not DictReader: a third of the time on 47,000 codes
                codes.update(value for row in rows if len(row) > at and (value := row[at].strip()))
    return frozenset(codes)
