"""The shared event layer (intermediate models, marts `persons`, `events`, `cleaning_rules`) on a real DuckDB build.

The run's build of every distinct definition (distinct_build.py: the dictionary's code lists and a synthetic
delivery with planted PMSI defects: failed quality codes, error GHMs, an unknown patient) is read as it left the
base; the marts are checked against counts computed straight from the delivery's CSV files with plain DuckDB SQL,
never from the models.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from distinct_build import CODES, FLOWS, PLACEHOLDER, YEARS, DistinctBuild
from snds.catalog.build import Catalog
from snds.catalog.history import history_templates

pytestmark = pytest.mark.slow

NINE_KEYS = ("FLX_DIS_DTD", "FLX_TRT_DTD", "FLX_EMT_TYP", "FLX_EMT_NUM", "FLX_EMT_ORD")
NINE_KEYS += ("ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
RET_CODES = ("NIR_RET", "NAI_RET", "SEX_RET", "SEJ_RET", "FHO_RET", "PMS_RET", "DAT_RET")


@dataclass(frozen=True)
class Layer:
    database: Path
    deliveries: Path

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.database)) as con:
            return con.execute(sql).fetchall()

    def csv(self, delivery: str, table: str) -> str:
        path = str(self.deliveries / delivery / f"{table}.csv").replace("'", "''")
        return f"read_csv('{path}', delim=';', header=true, all_varchar=true)"


def test_the_history_lists_every_year_of_a_template_in_order(catalog: Catalog) -> None:
    history = history_templates(catalog)
    mco = [(t.name, t.year) for t in history["T_MCOaaB"]]
    assert mco == [(f"T_MCO{y % 100:02d}B", y) for y in range(2006, 2024)]
    prs = [t.name for t in history["ER_PRS_F"]]
    assert prs == [f"ER_PRS_F_{y}" for y in range(2006, 2021)] + ["ER_PRS_F"]  # the current table holds the latest
    assert "IR_BEN_R" not in history and "IR_CIP_V" not in history  # one table, no years
    # every table with a year belongs to the history of its template
    assert {t.name for t in catalog.tables if t.year is not None} <= {t.name for ts in history.values() for t in ts}


@pytest.fixture(scope="module")
def layer(distinct_build: DistinctBuild) -> Layer:
    return Layer(distinct_build.pristine, distinct_build.deliveries)


def test_a10_dispensings_equal_an_independent_count(layer: Layer) -> None:
    join = " and ".join(f"f.{k} = p.{k}" for k in NINE_KEYS)
    expected = layer.query(
        f"select count(*) from {layer.csv(FLOWS, 'ER_PHA_F')} f join {layer.csv(FLOWS, 'ER_PRS_F')} p on {join} "
        f"join {layer.csv(CODES, 'IR_CIP_V')} c on f.PHA_PRS_IDE = c.PHA_PRS_IDE "
        "where c.PHA_ATC_CLA like 'A10%' and coalesce(p.DPN_QLF, '0') <> '71'"
    )[0][0]
    information_only = layer.query(
        f"select count(*) from {layer.csv(FLOWS, 'ER_PHA_F')} f join {layer.csv(FLOWS, 'ER_PRS_F')} p on {join} "
        "where p.DPN_QLF = '71'"
    )[0][0]
    counted = layer.query(
        "select count(*), sum(quantity) from marts.events "
        "where domain = 'dispensing' and code_system = 'atc' and code like 'A10%'"
    )[0]
    assert expected > 20 and information_only > 0
    assert counted[0] == expected and counted[1] >= expected


def test_quality_filtered_e11_stays_equal_an_independent_count(layer: Layer) -> None:
    stays = []
    for year in YEARS:
        yy = f"{year % 100:02d}"
        b, c, d = (layer.csv(FLOWS, f"T_MCO{yy}{s}") for s in "BCD")
        quality = " and ".join(f"c.{code} = '0'" for code in RET_CODES)
        stays.append(
            f"select '{yy}' as y, b.ETA_NUM, b.RSA_NUM from {b} b join {c} c using (ETA_NUM, RSA_NUM) "
            f"where {quality} and c.NIR_ANO_17 not in ('{PLACEHOLDER}', 'XXXXXXXXXXXXXXXXD') "
            "and b.GRG_GHM not like '90%' and (b.DGN_PAL like 'E11%' or b.DGN_REL like 'E11%' or exists "
            f"(select 1 from {d} d where d.ETA_NUM = b.ETA_NUM and d.RSA_NUM = b.RSA_NUM and d.ASS_DGN like 'E11%'))"
        )
    expected = layer.query(f"select count(*) from ({' union all '.join(stays)})")[0][0]
    counted = layer.query(
        "select count(distinct substr(source_table, 6, 2) || '|' || split_part(source_key, '|', 1) || '|' "
        "|| split_part(source_key, '|', 2)) from marts.events where domain = 'diagnosis' and source = 'MCO' "
        "and code_system = 'icd10' and code like 'E11%' and qualifier in ('principal', 'related', 'associated')"
    )[0][0]
    removed = dict(
        layer.query(
            "select rule_name, sum(rows_removed) from marts.cleaning_rules where step = 'stays' "
            "and source_table like 'T_MCO%' group by rule_name"
        )
    )
    assert expected > 20 and counted == expected
    assert removed["quality_codes"] > 0 and removed["error_ghm"] > 0 and removed["placeholder_person"] > 0


def test_every_event_has_its_person(layer: Layer) -> None:
    orphans = layer.query(
        "select count(*) from marts.events e where not exists (select 1 from marts.persons p "
        "where p.person_id = e.person_id)"
    )
    domains = {d for (d,) in layer.query("select distinct domain from marts.events")}
    persons = layer.query("select count(*), count(distinct person_id), count(death_date) from marts.persons")[0]
    assert orphans == [(0,)]
    assert domains == {"dispensing", "stay", "diagnosis", "act", "ald", "death", "biology"}
    assert persons[0] == persons[1] >= 300 and persons[2] > 0


def test_an_ald_is_found_by_its_number_and_its_icd10_code(layer: Layer) -> None:
    rows = layer.query(
        "select code_system, count(*), count(distinct source_key) from marts.events where domain = 'ald' "
        "group by code_system order by code_system"
    )
    diabetic = layer.query(f"select count(*) from {layer.csv(FLOWS, 'IR_IMB_R')} where MED_MTF_COD = 'E11'")[0][0]
    assert rows == [("ald", diabetic, diabetic), ("icd10", diabetic, diabetic)]
    assert layer.query("select count(*) from marts.events where code_system = 'ald' and code = '8'") == [(diabetic,)]


def test_cleaning_counts_balance(layer: Layer) -> None:
    rules = layer.query(
        "select step, source_table, rule_order, rows_in, rows_removed, rows_kept from marts.cleaning_rules "
        "order by step, source_table, rule_order"
    )
    assert rules
    by_table: dict[tuple[str, str], list[tuple]] = {}
    for step, table, _, rows_in, removed, kept in rules:
        assert rows_in == removed + kept
        by_table.setdefault((step, table), []).append((rows_in, kept))
    for counts in by_table.values():
        assert all(after[0] == before[1] for before, after in itertools.pairwise(counts))
    # first rule: every row of the table; last rule: the rows the layer keeps
    first = {key: counts[0][0] for key, counts in by_table.items()}
    last = {key: counts[-1][1] for key, counts in by_table.items()}
    delivered = {
        name: layer.query(f"select count(*) from {layer.csv(FLOWS, name)}")[0][0] for name in ("ER_PHA_F", "T_MCO19B")
    }
    assert first[("claim_lines", "ER_PHA_F")] == delivered["ER_PHA_F"]
    assert first[("stays", "T_MCO19B")] == delivered["T_MCO19B"]
    kept_stays = layer.query("select count(*) from marts.events where domain = 'stay' and source_table = 'T_MCO19B'")
    assert last[("stays", "T_MCO19B")] == kept_stays[0][0] > 0
    kept_lines = layer.query("select count(*) from int.int_dispensings_coded where source_table = 'ER_PHA_F'")
    assert last[("claim_lines", "ER_PHA_F")] == kept_lines[0][0] > 0
