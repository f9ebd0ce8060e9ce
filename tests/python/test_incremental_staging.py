"""Monthly deliveries: each delivery policy applied by `snds promote`, each refusal of ingestion, and incremental
staging giving the same tables as a full build.

A synthetic delivery (300 persons, 2019-2020) is split as the CNAM would send it (`snds.synth.split`): referentials
first, one delivery per DCIR flow month, one per PMSI year. The module's warehouse receives them one by one.
"""

from __future__ import annotations

import csv
import secrets
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dbt.contracts.graph.manifest import Manifest

from code_lists import cip_code_list_delivery
from snds import config
from snds.catalog.committed import CatalogTable, load_tables
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import BUILD_OPTIONS, DbtError, dbt_database, run_dbt
from snds.ingest import DeliveryRefused, ingest_delivery
from snds.ingest.verify import write_manifest
from snds.keys import store
from snds.landing import init_landing
from snds.promotion import Promotion, PromotionRefused, delivered_tables, promote
from snds.synth import SynthSpec, synthesize
from snds.synth.split import SplitDelivery, split_delivery

APPEND_TABLE, YEAR_TABLE, SNAPSHOT_TABLE = "ER_PRS_F", "T_MCO19B", "IR_BEN_R"
EVENT_LAYER = ("int_claim_lines_flagged", "events")  # its incremental models
# what a build of a delivery's staging tables alone reads: the gate's views and the correspondences
STAGING_PARENTS = "+pending_deliveries +pending_event_deliveries +person_pseudonyms +professional_pseudonyms"


@pytest.fixture(scope="module")
def tables() -> dict[str, CatalogTable]:
    return load_tables()


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory, tables: dict[str, CatalogTable]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("split")
    synthesize(root / "S", SynthSpec(300, (2019, 2020), seed=11), tables, config.reference_dir(), 0.0)
    split: list[SplitDelivery] = split_delivery(root / "S", root / "out", tables)
    return {d.directory.name.removeprefix("S_"): d.directory for d in split}


class Base:
    """The module's warehouse, and what receiving a delivery means: ingest, validate, promote."""

    def __init__(self, root: Path, tables: dict[str, CatalogTable], manifest: Manifest) -> None:
        self.database, self.target, self.tables, self.manifest = (
            root / "warehouse.duckdb",
            root / "target",
            tables,
            manifest,
        )
        init_landing(self.database, tables)
        with duckdb.connect(str(self.database)) as con:
            store.init_platform(con, secrets.token_bytes(32))
        self.first = self.receive(cip_code_list_delivery(root / "CODES"))  # into a base never built

    def ingest(self, delivery: Path) -> None:
        ingest_delivery(delivery, self.database, self.tables)

    def validate(self, delivery: Path) -> None:
        """Ingest and validate the delivery, without promoting it."""
        self.ingest(delivery)
        report = validate_delivery(
            self.database, delivery.name, project_rules(self.tables), self.target, manifest=self.manifest
        )
        assert report["status"] == "validated", delivery.name

    def receive(self, *deliveries: Path) -> Promotion:
        for delivery in deliveries:
            self.validate(delivery)
        return promote(self.database, [d.name for d in deliveries], self.target, self.manifest)

    def query(self, sql: str, database: Path | None = None) -> list[tuple]:
        with duckdb.connect(str(database or self.database)) as con:  # dbt in this process holds it read-write
            return con.execute(sql).fetchall()

    def count(self, relation: str) -> int:
        return self.query(f"select count(*) from {relation}")[0][0]


def _rows(delivery: Path, table: str) -> int:
    with (delivery / "MANIFEST.csv").open(encoding="utf-8") as handle:
        return sum(int(row["rows"]) for row in csv.DictReader(handle, delimiter=";") if row["table"] == table)


def _redelivered(source: Path, out: Path, extracted: str, keep: int | None = None) -> Path:
    """A re-delivery of `source`'s tables, extracted on `extracted`; `keep`: only the first lines of each file."""
    out.mkdir(parents=True)
    files = []
    for row in csv.DictReader((source / "MANIFEST.csv").open(encoding="utf-8"), delimiter=";"):
        lines = (source / row["file"]).read_text(encoding="utf-8").splitlines(keepends=True)
        (out / row["file"]).write_text("".join(lines if keep is None else lines[: keep + 1]), encoding="utf-8")
        files.append((row["file"], row["table"]))
    write_manifest(out, files, date.fromisoformat(extracted))
    return out


@pytest.fixture(scope="module")
def base(
    tmp_path_factory: pytest.TempPathFactory,
    tables: dict[str, CatalogTable],
    deliveries: dict[str, Path],
    dbt_manifest: Manifest,
) -> Base:
    """The referentials and two flow months received together, then a third month, then the PMSI 2019 year."""
    received = Base(tmp_path_factory.mktemp("base"), tables, dbt_manifest)
    received.receive(deliveries["REF"], deliveries["M201902"], deliveries["M201903"])
    received.receive(deliveries["M201904"])
    received.receive(deliveries["Y2019"])
    return received


def test_a_first_promotion_creates_the_tables_nobody_delivered_empty(base: Base) -> None:
    """Into a base never built, the tables that the event layer reads and that no validated delivery holds are
    created empty by a hook and recorded as built, not built and tested one dbt node each; a first delivery of one
    is then applied as an increment (here the PMSI 2019 year, received after; test_incremental_equals_full)."""
    assert "events" in base.first.nodes and len(base.first.nodes) < 100  # 517 nodes when each was built
    never, later = "T_MCO06B", YEAR_TABLE  # a year nobody delivered; one delivered after the first promotion
    assert not {never, later} & set(base.first.nodes)
    assert base.count(f"snds.{never}") == 0 and base.count(f"snds.{later}") > 0
    columns = f"select count(*) from information_schema.columns where table_schema = 'snds' and table_name = '{never}'"
    assert base.query(columns) == [(len(base.tables[never].columns),)]  # the contract's columns
    builds = f"select MODEL_NAME from landing.model_builds where MODEL_NAME in ('{never}', '{later}')"
    assert len(base.query(builds)) == 2
    applied = f"select DELIVERY_ID from landing.applied_deliveries where MODEL_NAME = '{later}'"
    assert base.query(applied) == [("S_Y2019",)]


def test_append_adds_each_month_once(base: Base, deliveries: dict[str, Path]) -> None:
    months = [deliveries[m] for m in ("M201902", "M201903", "M201904")]
    assert base.count(f"snds.{APPEND_TABLE}") == sum(_rows(m, APPEND_TABLE) for m in months)
    applied = base.query(f"select DELIVERY_ID from landing.applied_deliveries where MODEL_NAME = '{APPEND_TABLE}'")
    assert sorted(d for (d,) in applied) == sorted(m.name for m in months)
    base.receive()  # promoting nothing new changes nothing
    assert base.count(f"snds.{APPEND_TABLE}") == sum(_rows(m, APPEND_TABLE) for m in months)


def test_a_month_already_loaded_is_refused(base: Base, deliveries: dict[str, Path], tmp_path: Path) -> None:
    again = tmp_path / "S_M201903_AGAIN"
    shutil.copytree(deliveries["M201903"], again)
    with pytest.raises(DeliveryRefused, match=r"ER_PRS_F: flow months already in the base: 2019-03 \(in S_M201903\)"):
        base.ingest(again)
    assert not base.query("select * from landing.deliveries where DELIVERY_ID = 'S_M201903_AGAIN'")


def test_an_older_redelivery_is_refused(base: Base, deliveries: dict[str, Path], tmp_path: Path) -> None:
    older = _redelivered(deliveries["Y2019"], tmp_path / "S_Y2019_OLDER", "2020-01-15")
    with pytest.raises(
        DeliveryRefused, match=rf"{YEAR_TABLE}: extracted on 2020-01-15, before delivery S_Y2019 already"
    ):
        base.ingest(older)
    older_ref = _redelivered(deliveries["REF"], tmp_path / "S_REF_OLDER", "2018-01-01")
    with pytest.raises(DeliveryRefused, match=rf"{SNAPSHOT_TABLE}: extracted on 2018-01-01, before delivery S_REF"):
        base.ingest(older_ref)


def test_promoting_needs_validation(base: Base, deliveries: dict[str, Path]) -> None:
    base.ingest(deliveries["M201905"])
    with pytest.raises(PromotionRefused, match="S_M201905 is loaded, not validated"):
        promote(base.database, ["S_M201905"], base.target, base.manifest)
    with pytest.raises(PromotionRefused, match="NOPE was never ingested"):
        promote(base.database, ["NOPE"], base.target, base.manifest)


def test_of_two_loaded_deliveries_of_a_month_only_the_first_validated_is_promoted(
    base: Base, deliveries: dict[str, Path], tmp_path: Path
) -> None:
    twin = tmp_path / "S_M201905_BIS"
    shutil.copytree(deliveries["M201905"], twin)
    base.ingest(twin)  # S_M201905 is loaded, not promoted: ingestion lets it in
    base.receive(deliveries["M201905"])  # validated (and built) first
    report = validate_delivery(
        base.database, twin.name, project_rules(base.tables), base.target, manifest=base.manifest
    )
    assert report["status"] == "rejected"
    failed = [check for table in report["tables"].values() for check in table["failed"]]
    assert {c["check"] for c in failed} == {"delivery_policy:append"}, failed
    assert all("2019-05 (in S_M201905)" in str(c["examples"]) for c in failed)


def test_incremental_equals_full(base: Base, tmp_path: Path) -> None:
    """The same deliveries, applied one promotion at a time or all at once by a full build, give the same tables."""
    full = tmp_path / "full" / base.database.name  # the same catalog name as the parsed project's
    full.parent.mkdir()
    with duckdb.connect(str(base.database)) as con:
        con.execute("checkpoint")
    shutil.copyfile(base.database, full)
    promoted = [d for (d,) in base.query("select DELIVERY_ID from landing.deliveries where STATUS = 'validated'")]
    promote(full, promoted, tmp_path / "target", base.manifest, ("--full-refresh",))
    models = [m for (m,) in base.query("select distinct MODEL_NAME from landing.applied_deliveries order by 1")]
    assert {APPEND_TABLE, YEAR_TABLE, "person_pseudonyms", *EVENT_LAYER} <= set(models)
    relations = [*_relations(base, models).values(), "marts.persons", "marts.cleaning_rules"]
    with duckdb.connect(str(base.database)) as incremental, duckdb.connect(str(full)) as rebuilt:  # each opened once
        for relation in relations:
            rows = [con.execute(f"select * from {relation} order by all").fetchall() for con in (incremental, rebuilt)]
            assert rows[0] == rows[1], relation
    assert base.count("marts.events") > 0 and base.count("marts.persons") > 0


def _relations(base: Base, models: list[str]) -> dict[str, str]:
    """`schema.model` of each model's table, in one query."""
    sql = (
        "select table_name, table_schema from information_schema.tables "
        "where table_name in (select unnest(?)) and table_schema in ('snds', 'keys', 'int', 'marts')"
    )
    with duckdb.connect(str(base.database)) as con:
        found = con.execute(sql, [models]).fetchall()
    assert sorted(name for name, _ in found) == sorted(models)
    return {name: f"{schema}.{name}" for name, schema in found}


def _relation(base: Base, model: str) -> str:
    return _relations(base, [model])[model]


def _sentinels(base: Base, plant: bool = False) -> dict[str, bool]:
    """Per incremental event-layer table, whether it holds a row of no delivery: an increment leaves it, a rebuild
    removes it. The planted rows are valid (the marts' tests run on each build); the line is one a rule removes,
    so that it never reaches `events`."""
    if plant:
        person = "(select min(person_id) from marts.events)"
        columns = {
            "events": f"{person} as person_id, date '2019-01-01' as start_date, 'dispensing' as domain, "
            "'DCIR' as source",
            "int_claim_lines_flagged": f"{person} as person_id, 'act' as line_kind, 'missing_date' as cleaning_rule",
        }
        with duckdb.connect(str(base.database)) as con:
            for model in EVENT_LAYER:
                con.execute(
                    f"insert into {_relation(base, model)} by name select 'SENTINEL' as source_table, "
                    f"'x' as source_key, {columns[model]}"
                )
    return {m: base.count(f"{_relation(base, m)} where source_table = 'SENTINEL'") > 0 for m in EVENT_LAYER}


def test_a_flow_month_adds_its_events_and_leaves_the_others(base: Base, deliveries: dict[str, Path]) -> None:
    _sentinels(base, plant=True)
    months_before = base.count("marts.events where source_period is not null")
    done = base.receive(deliveries["M201906"])
    assert all(_sentinels(base).values()), "a monthly delivery rebuilt the event layer"
    # the tests of the views over every event (they read every event) are left to `dbt build`
    whole_layer = {n.name for n in base.manifest.nodes.values() if "whole_event_layer" in n.tags}
    assert len(whole_layer) == 7 and {"events", "persons", "cleaning_rules"} <= set(done.nodes)
    assert not whole_layer & set(done.nodes)
    june = base.count("marts.events where source_period = date '2019-06-01'")
    assert june > 0 and base.count("marts.events where source_period is not null") == months_before + june
    by_month = base.query(
        "select distinct source_table from int.int_claim_lines_flagged where source_period is not null"
    )
    assert "ER_PHA_F" in {t for (t,) in by_month} <= {"ER_PHA_F", "ER_CAM_F", "ER_BIO_F"}  # not the archives


def test_a_newer_year_replaces_it(base: Base, deliveries: dict[str, Path], tmp_path: Path) -> None:
    assert all(_sentinels(base).values())  # planted before the flow month
    newer = _redelivered(deliveries["Y2019"], tmp_path / "S_Y2019_CONSOLIDATED", "2020-09-01", keep=10)
    base.receive(newer)
    assert base.count(f"snds.{YEAR_TABLE}") == _rows(newer, YEAR_TABLE) == 10
    # events reads the PMSI year: rebuilt; the DCIR lines do not: left as they were
    assert _sentinels(base) == {"events": False, "int_claim_lines_flagged": True}
    assert base.count(f"snds.{APPEND_TABLE}") > 0  # the other policies' tables are untouched


def test_a_newer_snapshot_replaces_it(base: Base, deliveries: dict[str, Path], tmp_path: Path) -> None:
    newer = _redelivered(deliveries["REF"], tmp_path / "S_REF_NEXT", "2020-06-01", keep=25)
    base.receive(newer)
    assert base.count(f"snds.{SNAPSHOT_TABLE}") == 25
    # persons of the earlier snapshot keep their pseudonyms: the correspondence only grows
    assert base.count("keys.person_pseudonyms") >= 300


def _applied(base: Base, model: str) -> set[str]:
    return {
        d for (d,) in base.query(f"select DELIVERY_ID from landing.applied_deliveries where MODEL_NAME = '{model}'")
    }


def test_events_wait_for_the_claim_lines_they_read(base: Base, deliveries: dict[str, Path]) -> None:
    july = deliveries["M201907"]
    base.validate(july)
    # the month's staging tables and `events`, without int_claim_lines_flagged between them
    with dbt_database(base.database):
        run_dbt(
            "build",
            *BUILD_OPTIONS,
            "--select",
            STAGING_PARENTS,
            "ER_PRS_F ER_PHA_F events",
            target_path=base.target,
            manifest=base.manifest,
        )
    assert july.name in _applied(base, "ER_PHA_F") and july.name not in _applied(base, "events")
    promote(base.database, [july.name], base.target)  # as `snds promote` runs it: the parse kept for the checkout
    assert {july.name} <= _applied(base, "int_claim_lines_flagged") & _applied(base, "events")
    assert base.count("marts.events where source_period = date '2019-07-01'") > 0


def test_a_table_rebuilt_in_full_rebuilds_the_event_layer_reading_it(base: Base, deliveries: dict[str, Path]) -> None:
    _sentinels(base, plant=True)
    with duckdb.connect(str(base.database)) as con:  # as after a change of ER_PHA_F's definition
        con.execute("update landing.model_builds set DEFINITION_SHA256 = 'changed' where MODEL_NAME = 'ER_PHA_F'")
    base.receive(deliveries["M201908"])
    assert _sentinels(base) == {"events": False, "int_claim_lines_flagged": False}
    assert base.count("marts.events where source_period = date '2019-08-01'") > 0


def test_a_promotion_finishes_what_a_stopped_build_left(base: Base, deliveries: dict[str, Path]) -> None:
    year = deliveries["Y2020"]
    base.validate(year)
    year_tables = delivered_tables(base.database, [year.name]).tables
    # as a build stopped after the year's staging tables: the stays and events never read them
    with dbt_database(base.database):
        run_dbt(
            "build",
            *BUILD_OPTIONS,
            "--select",
            STAGING_PARENTS,
            *year_tables,
            target_path=base.target,
            manifest=base.manifest,
        )
    assert year.name in _applied(base, "T_MCO20B") and year.name not in _applied(base, "events")
    done = base.receive(deliveries["M201909"])
    assert done.resumed == (year.name,) and set(year_tables) <= set(done.tables)
    assert year.name in _applied(base, "events")
    # the stays were rebuilt before events applied the year: its stays are events
    stays = "marts.events where source_table = 'T_MCO20B' and domain = 'stay'"
    assert base.count(stays) > 0


PLANTED = "PRS_ACT_QTE = -999"  # marks a planted duplicate (not a key column)


def test_a_monthly_promotion_tests_its_own_months(base: Base, deliveries: dict[str, Path]) -> None:
    with duckdb.connect(str(base.database)) as con:  # a duplicate key in a month applied earlier
        con.execute(
            f"insert into snds.{APPEND_TABLE} select * replace (-999 as PRS_ACT_QTE) from snds.{APPEND_TABLE} "
            "where FLX_DIS_DTD = date '2019-02-01' limit 1"
        )
    base.receive(deliveries["M201910"])  # its tests read October only
    with pytest.raises(DbtError, match=f"primary_key_{APPEND_TABLE}"), dbt_database(base.database):
        run_dbt(
            "test", *BUILD_OPTIONS, "--select", APPEND_TABLE, target_path=base.target, manifest=base.manifest
        )  # every row
    november = deliveries["M201911"]
    base.validate(november)
    keys = ", ".join(base.tables[APPEND_TABLE].primary_key)
    with duckdb.connect(str(base.database)) as con:  # a duplicate of a key November brings
        con.execute(f"delete from snds.{APPEND_TABLE} where {PLANTED}")
        con.execute(
            f"insert into snds.{APPEND_TABLE} by name select {keys}, -999 as PRS_ACT_QTE "
            f"from landing.{APPEND_TABLE} where DELIVERY_ID = ? limit 1",
            [november.name],
        )
    with pytest.raises(DbtError, match=f"primary_key_{APPEND_TABLE}"):
        promote(base.database, [november.name], base.target, base.manifest)
    with duckdb.connect(str(base.database)) as con:
        con.execute(f"delete from snds.{APPEND_TABLE} where {PLANTED}")
    promote(base.database, [november.name], base.target, base.manifest)  # the retry finishes it
    assert november.name in _applied(base, "events")


def test_a_correspondence_hashes_only_the_identifiers_it_does_not_hold(base: Base, deliveries: dict[str, Path]) -> None:
    december = deliveries["M201912"]
    base.validate(december)
    held = (
        f"select min(landed.BEN_NIR_PSA) from landing.{APPEND_TABLE} landed inner join keys.person_pseudonyms known "
        "on known.delivered_identifier = landed.BEN_NIR_PSA where landed.DELIVERY_ID = ?"
    )
    mark = "update keys.person_pseudonyms set key_id = ? where delivered_identifier = ?"
    with duckdb.connect(str(base.database)) as con:  # a mark on the row of a person December brings again
        ((identifier,),) = con.execute(held, [december.name]).fetchall()
        ((key_id,),) = con.execute(
            "select key_id from keys.person_pseudonyms where delivered_identifier = ?", [identifier]
        ).fetchall()
        con.execute(mark, ["SENTINEL", identifier])
    promote(base.database, [december.name], base.target, base.manifest)
    with duckdb.connect(str(base.database)) as con:
        marked = con.execute(
            "select key_id from keys.person_pseudonyms where delivered_identifier = ?", [identifier]
        ).fetchall()
        con.execute(mark, [key_id, identifier])
    assert marked == [("SENTINEL",)]  # neither hashed again nor replaced


def test_a_validated_delivery_waits_for_the_promotion_that_asks_for_it(
    base: Base, deliveries: dict[str, Path], tmp_path: Path
) -> None:
    later = _redelivered(deliveries["REF"], tmp_path / "S_REF_LATER", "2021-06-01", keep=25)
    base.validate(later)  # validated, not promoted
    january = deliveries["M202001"]
    done = base.receive(january)  # the correspondences apply every validated delivery, the later snapshot too
    assert SNAPSHOT_TABLE not in done.tables and later.name in _applied(base, "person_pseudonyms")
    # that alone does not make it half-applied: the next promotion does not take it up
    assert delivered_tables(base.database, [january.name]).resumed == []
