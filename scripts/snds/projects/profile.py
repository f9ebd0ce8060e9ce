"""The cohort's profile: persons by year of the index date, sex and age band at the index date.

Defined once here for both sides: the SQL of the project's `profile` model (exact counts, inside the platform)
and the layout of the published tables with their sums (what small-cell suppression protects).
"""

from __future__ import annotations

from dataclasses import dataclass

from snds.projects import cohort_sql
from snds.projects.definition import ProjectDefinition
from snds.projects.small_cells import Cell, Sum

# Age bands at the index date, in completed years (the last one open-ended).
AGE_BANDS: tuple[tuple[int, int | None], ...] = ((0, 17), (18, 44), (45, 64), (65, 74), (75, 84), (85, None))
SEXES: tuple[tuple[int, str], ...] = ((1, "male"), (2, "female"))  # BEN_SEX_COD
UNKNOWN = "unknown"
COHORT = ("cohort",)  # the cell of the cohort's size
BAND_TYPE, SEX_TYPE = "varchar(7)", "varchar(7)"


def band_label(low: int, high: int | None) -> str:
    return f"{low}-{high}" if high is not None else f"{low}+"


def profile_sql(definition: ProjectDefinition) -> str:
    """The body of the profile model: cohort persons counted by index year, sex and age band (exact)."""
    name = lambda part: cohort_sql.model_name(definition, part)  # noqa: E731
    sexes = "".join(f"            when {code} then '{label}'\n" for code, label in SEXES)
    bands = "".join(
        f"            when candidates.age_at_index <= {high} then '{band_label(low, high)}'\n"
        for low, high in AGE_BANDS
        if high is not None
    )
    last = band_label(*AGE_BANDS[-1])
    return (
        "with\n\n"
        f"selected as (\n    select * from {{{{ ref('{name('selected')}') }}}}\n),\n\n"
        f"candidates as (\n    select * from {{{{ ref('{name('candidates')}') }}}}\n),\n\n"
        "profiled as (\n"
        "    select\n"
        "        extract(year from selected.index_date) as index_year,\n"
        "        case candidates.sex\n"
        f"{sexes}"
        f"            else '{UNKNOWN}'\n"
        "        end as sex,\n"
        "        case\n"
        f"            when candidates.age_at_index is null then '{UNKNOWN}'\n"
        f"{bands}"
        f"            else '{last}'\n"
        "        end as age_band\n"
        "    from selected\n"
        "    inner join candidates\n"
        "        on selected.person_id = candidates.person_id and selected.index_date = candidates.index_date\n"
        "),\n\n"
        "final as (\n"
        "    select\n"
        "        cast(index_year as numeric(4)) as index_year,\n"
        f"        cast(sex as {SEX_TYPE}) as sex,\n"
        f"        cast(age_band as {BAND_TYPE}) as age_band,\n"
        "        cast(count(*) as numeric(19)) as persons\n"
        "    from profiled\n"
        "    group by index_year, sex, age_band\n"
        ")\n\n"
        "select * from final\n"
    )


@dataclass(frozen=True)
class ProfileLayout:
    """The published profile: persons by index year (one row per study year) and by sex and age band (a table with
    its totals). Cells are keyed ("year", year), ("sex", sex), ("band", band), ("sex_band", sex, band) and COHORT
    (the cohort's size, the total of both tables). The two tables share no other cell: the index year is not
    crossed with the rest, so a small cohort keeps a readable page."""

    years: tuple[int, ...]
    sexes: tuple[str, ...]
    bands: tuple[str, ...]

    def counts(self, rows: list[tuple[int, str, str, int]]) -> dict[Cell, int]:
        """Every cell, totals included, from the model's rows (index_year, sex, age_band, persons)."""

        def total(year: int | None = None, sex: str | None = None, band: str | None = None) -> int:
            return sum(n for y, s, b, n in rows if year in (None, y) and sex in (None, s) and band in (None, b))

        counts: dict[Cell, int] = {COHORT: total()}
        counts |= {("year", y): total(year=y) for y in self.years}
        counts |= {("sex", s): total(sex=s) for s in self.sexes}
        counts |= {("band", b): total(band=b) for b in self.bands}
        counts |= {("sex_band", s, b): total(sex=s, band=b) for s in self.sexes for b in self.bands}
        return counts

    def sums(self) -> list[Sum]:
        """The cohort as the sum of its years, of its sexes and of its bands; each sex and band as the sum of its
        cells."""
        found = [
            Sum(COHORT, tuple(("year", y) for y in self.years)),
            Sum(COHORT, tuple(("sex", s) for s in self.sexes)),
            Sum(COHORT, tuple(("band", b) for b in self.bands)),
        ]
        found += [Sum(("sex", s), tuple(("sex_band", s, b) for b in self.bands)) for s in self.sexes]
        found += [Sum(("band", b), tuple(("sex_band", s, b) for s in self.sexes)) for b in self.bands]
        return found


def layout(definition: ProjectDefinition, rows: list[tuple[int, str, str, int]]) -> ProfileLayout:
    """Every study year and every named sex and band, shown even when 0; `unknown` only when someone is."""
    years = tuple(range(definition.study.start.year, definition.study.end.year + 1))
    present_sexes = {sex for _, sex, _, n in rows if n}
    present_bands = {band for _, _, band, n in rows if n}
    sexes = tuple(label for _, label in SEXES) + ((UNKNOWN,) if UNKNOWN in present_sexes else ())
    bands = tuple(band_label(*b) for b in AGE_BANDS) + ((UNKNOWN,) if UNKNOWN in present_bands else ())
    outside = {y for y, _, _, n in rows if n and y not in years}
    if outside:
        raise ValueError(f"{definition.id}: index dates outside the study years {sorted(outside)}")
    return ProfileLayout(years, sexes, bands)
