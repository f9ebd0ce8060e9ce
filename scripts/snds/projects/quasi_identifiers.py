"""The quasi-identifiers a linkage compares (`linkage.criteria` of a project definition), and where the base holds
each: defined once, read by the definition's checks and by the linkage's SQL.

A criterion's values are compared as text in the SNDS's own writing (`text`: the column cast to varchar, so a birth
month is `01` to `12` and a department `075`), or as dates (`date`: `YYYY-MM-DD`). The base side of the person
criteria is the beneficiary referential; a stay's criteria come from the MCO stays' linking table of each year.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT, DATE = "text", "date"
PERSONS_TABLE, PERSONS_PERSON = "IR_BEN_R", "BEN_NIR_PSA"
STAYS_TEMPLATE, STAYS_PERSON = "T_MCOaaC", "NIR_ANO_17"


@dataclass(frozen=True)
class QuasiIdentifier:
    name: str
    table: str  # PERSONS_TABLE or STAYS_TEMPLATE
    column: str  # the base's column
    kind: str  # TEXT or DATE
    length: int  # of its text

    @property
    def of_stay(self) -> bool:
        return self.table == STAYS_TEMPLATE


QUASI_IDENTIFIERS = {
    q.name: q
    for q in (
        QuasiIdentifier("sex", PERSONS_TABLE, "BEN_SEX_COD", TEXT, 1),
        QuasiIdentifier("birth_year", PERSONS_TABLE, "BEN_NAI_ANN", TEXT, 4),
        QuasiIdentifier("birth_month", PERSONS_TABLE, "BEN_NAI_MOI", TEXT, 2),
        QuasiIdentifier("department", PERSONS_TABLE, "BEN_RES_DPT", TEXT, 3),
        QuasiIdentifier("commune", PERSONS_TABLE, "BEN_RES_COM", TEXT, 3),
        QuasiIdentifier("admission_date", STAYS_TEMPLATE, "EXE_SOI_DTD", DATE, 10),
        QuasiIdentifier("discharge_date", STAYS_TEMPLATE, "EXE_SOI_DTF", DATE, 10),
        QuasiIdentifier("finess", STAYS_TEMPLATE, "ETA_NUM", TEXT, 9),
    )
}


def person_column(table: str) -> str:
    return PERSONS_PERSON if table == PERSONS_TABLE else STAYS_PERSON
