"""The catalog generator: years, archives, nomenclatures, types, identifier classes and structures."""

from __future__ import annotations

import pytest

from snds.catalog.build import Catalog
from snds.catalog.dictionary import DictTable, YearSpan
from snds.catalog.sqltypes import SqlType

REQUIRED_TABLES = [
    "ER_PRS_F",
    "ER_PHA_F",
    "IR_BEN_R",
    "T_MCO06B",
    "T_MCO19B",
    "T_MCO19C",
    "T_SSR19B",
    "KI_CCI_R",
    "IR_SEX_V",
]


def _columns(catalog: Catalog, table: str) -> list[str]:
    return [c.name for c in catalog.table(table).columns]


def _template(dictionary: list[DictTable], name: str) -> DictTable:
    return next(t for t in dictionary if t.name == name)


def test_year_span_reads_the_dictionary_history() -> None:
    span = YearSpan.parse("2009", "2011", [])
    assert [y for y in range(2006, 2015) if span.contains(y)] == [2009, 2010]
    assert [y for y in range(2015, 2020) if YearSpan.parse("2017", "2017", []).contains(y)] == [2017]
    assert not YearSpan.parse("2010", "", ["2012", "2013"]).contains(2012)
    assert YearSpan.parse("", "", []).contains(1990)


def test_catalog_has_the_whole_base(catalog: Catalog) -> None:
    names = {t.name for t in catalog.tables}
    assert len(names) >= 2000
    assert set(REQUIRED_TABLES) <= names
    stats = catalog.stats()
    assert stats["physical_tables"] == len(names)
    assert 0 < stats["structures"] < stats["physical_tables"]


def test_pmsi_year_has_that_years_columns(catalog: Catalog, dictionary: list[DictTable]) -> None:
    template = _template(dictionary, "T_MCOaaB")
    expected_2019 = [c.name for c in template.columns if c.years.contains(2019)]
    assert _columns(catalog, "T_MCO19B") == expected_2019
    assert "TOP_AVASTIN" in _columns(catalog, "T_MCO19B")  # created 2016
    assert "TOP_AVASTIN" not in _columns(catalog, "T_MCO15B")
    assert "NBR_NAIS_ANT" in _columns(catalog, "T_MCO16B")  # 2015 to 2016 only
    assert "NBR_NAIS_ANT" not in _columns(catalog, "T_MCO19B")


def test_column_deleted_before_2012_is_absent_from_2012(catalog: Catalog, dictionary: list[DictTable]) -> None:
    assert "COD_IGS" in _columns(catalog, "T_MCO09B")  # deleted in 2010
    assert "COD_IGS" not in _columns(catalog, "T_MCO12B")
    deleted_early = [
        c.name for c in _template(dictionary, "T_MCOaaB").columns if c.years.deleted and c.years.deleted <= 2012
    ]
    assert deleted_early and not set(deleted_early) & set(_columns(catalog, "T_MCO12B"))


def test_table_history_limits_pmsi_years(catalog: Catalog) -> None:
    names = {t.name for t in catalog.tables}
    assert {"T_MCO12PIP", "T_MCO15PIP"} <= names  # T_MCOaaPIP exists 2012 to 2015
    assert "T_MCO16PIP" not in names and "T_MCO11PIP" not in names
    assert "T_MCO05B" not in names and "T_MCO24B" not in names  # outside the years the project models


def test_dcir_archives(catalog: Catalog) -> None:
    archive, current = catalog.table("ER_PRS_F_2015"), catalog.table("ER_PRS_F")
    assert archive.year == 2015 and archive.template.name == "ER_PRS_F"
    assert archive.structure_id == current.structure_id
    assert len(current.primary_key) == 9
    assert {t.name for t in catalog.tables if t.name.startswith("ER_PHA_F_")} >= {"ER_PHA_F_2006", "ER_PHA_F_2020"}
    assert "ER_PRS_F_2021" not in {t.name for t in catalog.tables}


def test_nomenclatures_are_tables_typed_from_their_data(catalog: Catalog) -> None:
    sex = catalog.table("IR_SEX_V")
    assert sex.template.is_nomenclature and sex.primary_key == ("SEX_COD",)
    assert [(c.name, c.data_type) for c in sex.columns][:2] == [("SEX_COD", "numeric(1)"), ("SEX_LIB", "varchar(40)")]
    nomenclatures = [t for t in catalog.tables if t.template.is_nomenclature]
    assert len(nomenclatures) == 505


def test_declared_integer_with_leading_zeros_stays_a_string(catalog: Catalog, dictionary: list[DictTable]) -> None:
    # NU_HCO_R declares UCD codes as integers, but its data writes "0000009010750": keep them as text.
    declared = {c.name: c for c in _template(dictionary, "NU_HCO_R").columns}
    assert declared["UCD_UCD_COD"].storage == "string"
    assert catalog.table("NU_HCO_R").columns[0].data_type == "varchar(13)"
    assert catalog.table("XC_CTB_V").columns[0].data_type == "varchar(4)"  # "0001"


def test_types_are_widened_to_the_widest_declaration(catalog: Catalog) -> None:
    types = {c.name: c.data_type for c in catalog.table("ER_PRS_F").columns}
    # ER_PRS_F declares amounts as 4,2 while EB_PRS_F declares 11,2 for the same columns.
    assert types["BSE_REM_MNT"] == "numeric(11,2)"
    assert types["BSE_REM_PRU"] == "numeric(14,5)"  # declared 4,5 (scale above precision) and 14,5
    assert types["BEN_NIR_PSA"] == "varchar(17)"
    assert types["EXE_SOI_DTD"] == "date"
    oracle = {c.name: c.oracle_type for c in catalog.table("ER_PRS_F").columns}
    assert oracle["BSE_REM_MNT"] == "NUMBER(11,2)" and oracle["BEN_NIR_PSA"] == "VARCHAR2(17)"


def test_year_months_are_text_of_six_everywhere(catalog: Catalog, dictionary: list[DictTable]) -> None:
    # The dictionary stores some year-months (AAAAMM) as dates: ANN_MOI in T_MCOaaBPHN and T_SUPaa*, ENT_AM in
    # T_HADaaC (where it is even typed `date`, while T_MCOaaC types the same column `yearmonth`).
    year_months = {c.name for t in dictionary for c in t.columns if c.logical_type == "yearmonth"}
    assert {"ANN_MOI", "ENT_AM", "SOR_AM", "BEN_DCD_AME", "EXE_SOI_AMD"} <= year_months
    types = {(t.name, c.name): c.data_type for t in catalog.tables for c in t.columns if c.name in year_months}
    assert set(types.values()) == {"varchar(6)"}
    assert {("T_MCO10BPHN", "ANN_MOI"), ("T_SUP07ALD", "ANN_MOI"), ("T_HAD09C", "ENT_AM")} <= set(types)


def test_every_physical_type_is_one_of_the_portable_types(catalog: Catalog) -> None:
    # SqlType.parse accepts only the portable types, and gives back the catalog's text
    assert all(str(SqlType.parse(c.data_type)) == c.data_type for t in catalog.tables for c in t.columns)


@pytest.mark.parametrize(
    ("table", "column", "expected"),
    [
        ("ER_PRS_F", "BEN_NIR_PSA", ("direct_person", "")),
        ("T_MCO19C", "NIR_ANO_17", ("direct_person", "")),
        ("IR_IBA_R", "BEN_IDT_ANO", ("direct_person", "")),
        ("ER_PRS_F", "PFS_EXE_NUM", ("direct_professional", "")),
        ("IR_BEN_R", "BEN_NAI_ANN", ("potential", "birth")),
        ("IR_BEN_R", "BEN_RES_COM", ("potential", "residence")),
        ("IR_BEN_R", "BEN_DCD_DTE", ("potential", "death")),
        ("ER_PRS_F", "EXE_SOI_DTD", ("potential", "care_date")),
        ("ER_PRS_F", "BSE_REM_MNT", ("other", "")),
    ],
)
def test_identifier_classes(catalog: Catalog, table: str, column: str, expected: tuple[str, str]) -> None:
    found = next(c for c in catalog.table(table).columns if c.name == column)
    assert (found.identifier.name, found.identifier.kind) == expected


def test_structures_group_identical_column_sets(catalog: Catalog) -> None:
    for members in catalog.structures.values():
        shapes = {tuple((c.name, c.data_type, c.spec.length) for c in t.columns) for t in members}
        assert len(shapes) == 1
    assert catalog.table("T_MCO18B").structure_id != catalog.table("T_MCO09B").structure_id


def test_key_dropped_when_a_key_column_is_absent_that_year(catalog: Catalog) -> None:
    for table in catalog.tables:
        names = {c.name for c in table.columns}
        assert set(table.primary_key) <= names


def test_links_are_spelt_as_their_tables_spell_their_columns(dictionary: list[DictTable]) -> None:
    # The dictionary writes some link columns in another case than the tables do: they are kept, respelt.
    links = {t.name: {(fk.columns, fk.parent, fk.parent_columns) for fk in t.foreign_keys} for t in dictionary}
    assert (("ETA_NUM_ePMSI", "RHAD_NUM"), "T_HADaaB", ("ETA_NUM_EPMSI", "RHAD_NUM")) in links["T_HADaaLEG"]
    assert (("ben_nir_psa", "ben_rng_gem"), "IR_BEN_R", ("BEN_NIR_PSA", "BEN_RNG_GEM")) in links["CT_IDE_AAAA_GN"]
    columns = {t.name: {c.name for c in t.columns} for t in dictionary}
    for table in dictionary:
        for fk in table.foreign_keys:
            assert set(fk.columns) <= columns[table.name]
            assert set(fk.parent_columns) <= columns.get(fk.parent, set(fk.parent_columns)), (table.name, fk)
