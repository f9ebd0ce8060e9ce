"""Pseudonymisation on real DuckDB builds: platform pseudonyms at staging, project pseudonyms, renewal, leaks.

One database goes through the life of the platform, test by test: no key (the build stops), a first key and a
first delivery, a second delivery, a key rotation, the retirement of the previous key.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from dbt.contracts.graph.manifest import Manifest

from hmac_vectors import VECTORS, hmac_vector_sql
from identifier_checks import delivered_identifiers, identifier_columns, surviving_identifiers
from selection_slice import selection_slice
from snds import config
from snds.catalog.build import Catalog
from snds.catalog.committed import load_tables
from snds.catalog.conventions import load_conventions
from snds.conformity.checks import project_rules
from snds.conformity.validate import validate_delivery
from snds.dbt import BUILD_OPTIONS, DbtError, DbtRun, dbt_database, run_dbt
from snds.ingest import ingest_delivery
from snds.ingest.verify import write_manifest
from snds.keys import leaks, store
from snds.keys.material import KeyRefused, Pads, derive_platform_key, hmac_hex, pseudonym, read_secret, write_new_secret
from snds.landing import init_landing
from snds.synth import SynthSpec, synthesize

pytestmark = pytest.mark.slow

# The keys view, the correspondences and the renewal view, and the tables the tests join (the full build of
# test_duckdb_build checks the whole `snds` schema).
SELECTION = (
    "--select",
    "+pending_deliveries pseudonymisation_keys person_pseudonyms professional_pseudonyms pseudonym_renewals",
    "IR_BEN_R IR_IBA_R ER_PRS_F ER_PHA_F KI_CCI_R T_MCO19C T_MCO20C T_MCO21C T_SSR19C T_HAD19C T_RIP19C",
)
PLACEHOLDER = load_conventions().pseudonyms.person_placeholders[0]  # the PMSI's unknown patient
PROJECTS = ("P_ALPHA", "P_BETA")
NINE_KEYS = ("FLX_DIS_DTD", "FLX_TRT_DTD", "FLX_EMT_TYP", "FLX_EMT_NUM", "FLX_EMT_ORD")
NINE_KEYS += ("ORG_CLE_NUM", "DCT_ORD_NUM", "PRS_ORD_NUM", "REM_TYP_AFF")
LINKS = {
    "ER_PRS_F -> IR_BEN_R": "select count(*) from {s}.ER_PRS_F p join {s}.IR_BEN_R b "
    "on p.BEN_NIR_PSA = b.BEN_NIR_PSA and p.BEN_RNG_GEM = b.BEN_RNG_GEM",
    "ER_PHA_F -> ER_PRS_F (nine keys)": "select count(*) from {s}.ER_PHA_F f join {s}.ER_PRS_F p on "
    + " and ".join(f"f.{k} = p.{k}" for k in NINE_KEYS),
    "T_MCO19C -> IR_BEN_R": "select count(*) from {s}.T_MCO19C c join {s}.IR_BEN_R b on c.NIR_ANO_17 = b.BEN_NIR_PSA",
    "T_MCO20C -> ER_PRS_F persons": "select count(distinct c.NIR_ANO_17) from {s}.T_MCO20C c "
    "join {s}.ER_PRS_F p on c.NIR_ANO_17 = p.BEN_NIR_PSA",
    "T_SSR19C -> IR_BEN_R": "select count(*) from {s}.T_SSR19C c join {s}.IR_BEN_R b on c.NIR_ANO_17 = b.BEN_NIR_PSA",
    "T_HAD19C -> IR_BEN_R": "select count(*) from {s}.T_HAD19C c join {s}.IR_BEN_R b on c.NIR_ANO_17 = b.BEN_NIR_PSA",
    "T_RIP19C -> IR_BEN_R": "select count(*) from {s}.T_RIP19C c join {s}.IR_BEN_R b on c.NIR_ANO_17 = b.BEN_NIR_PSA",
    "KI_CCI_R -> IR_IBA_R": "select count(*) from {s}.KI_CCI_R k join {s}.IR_IBA_R i on k.BEN_IDT_ANO = i.BEN_IDT_ANO",
    "same executing professional, 2019 and 2020": "select count(*) from {s}.ER_PRS_F a join {s}.ER_PRS_F b "
    "on a.PFS_EXE_NUM = b.PFS_EXE_NUM and year(a.EXE_SOI_DTD) = 2019 and year(b.EXE_SOI_DTD) = 2020",
}


@dataclass(frozen=True)
class Platform:
    database: Path
    target: Path
    deliveries: Path
    secrets: Path
    manifest: Manifest = field(compare=False)  # the project parsed once (the session's), for validation
    selected: Manifest = field(compare=False)  # the same cut to SELECTION (selection_slice.py), for every dbt command

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.database))

    def dbt(self, *args: str) -> DbtRun:
        """`dbt <args>` on this platform's database, without parsing the project again."""
        return run_dbt(*args[:1], *BUILD_OPTIONS, *args[1:], target_path=self.target, manifest=self.selected)

    def build(self) -> None:
        self.dbt("build", *SELECTION)

    def show(self, sql: str) -> list[tuple]:
        # a query on the tables built: no relation cache to fill, nothing for target/ (the builds write it)
        run = self.dbt("show", "--no-populate-cache", "--inline", sql, "--limit", "-1")  # dbt() adds no JSON
        return [tuple(row) for row in run.result.result.results[0].agate_table.rows]

    def links(self, schema: str) -> dict[str, int]:
        with self.connect() as con:
            return {name: con.execute(sql.format(s=schema)).fetchone()[0] for name, sql in LINKS.items()}

    def secret(self, name: str) -> bytes:
        path = self.secrets / name
        if not path.exists():
            write_new_secret(path)
        return read_secret(path, None)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, dbt_manifest: Manifest) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("pseudonymisation")
    paths = (root / "warehouse.duckdb", root / "target", root / "deliveries", root / "secrets")
    here = Platform(*paths, dbt_manifest, selection_slice(dbt_manifest, *SELECTION[1:]))
    with dbt_database(here.database):
        tables = load_tables()
        init_landing(here.database, tables)
        synthesize(here.deliveries / "D2019", SynthSpec(300, (2019, 2020), seed=5), tables, config.reference_dir(), 0.0)
        ingest_delivery(here.deliveries / "D2019", here.database, tables)
        with here.connect() as con:  # a stay whose patient is unknown, as the PMSI writes it
            con.execute(
                f"insert into landing.T_MCO19C select * replace ('{PLACEHOLDER}' as NIR_ANO_17, "
                "'9999999999' as RSA_NUM) from landing.T_MCO19C limit 1"
            )
            con.execute(
                "insert into landing.T_MCO19B select * replace ('9999999999' as RSA_NUM) from landing.T_MCO19B limit 1"
            )
        report = validate_delivery(here.database, "D2019", project_rules(tables), here.target, manifest=dbt_manifest)
        assert report["status"] == "validated"
        yield here


def test_without_a_platform_key_nothing_is_pseudonymised(platform: Platform) -> None:
    with pytest.raises(DbtError, match="one_active_key_pseudonymisation_keys"):
        platform.build()
    with pytest.raises(DbtError, match="needs exactly one active platform key for person identifiers"):
        platform.dbt("run", "--select", "pseudonymisation_keys person_pseudonyms")
    with platform.connect() as con:
        built = con.execute("select table_name from information_schema.tables where table_schema = 'keys'").fetchall()
    assert ("person_pseudonyms",) not in built and ("key_material",) in built


@pytest.fixture(scope="module")
def keyed(platform: Platform) -> dict[str, int]:
    """The first platform key and two projects' keys, then the build; returns the links as landed."""
    with platform.connect() as con:
        store.init_platform(con, platform.secret("a.secret"))
        for project in PROJECTS:
            store.init_project(con, project)
    platform.build()
    return platform.links("landing")


def test_no_delivered_identifier_survives_in_the_base(
    keyed: dict[str, int], platform: Platform, catalog: Catalog
) -> None:
    with platform.connect() as con:
        delivered = delivered_identifiers(con, catalog, "person")
        professionals = delivered_identifiers(con, catalog, "professional")
        professional_columns = identifier_columns(catalog, "professional")
        survivors = surviving_identifiers(con, delivered) + surviving_identifiers(
            con, professionals, professional_columns
        )
        placeholder = con.execute("select count(*) from snds.T_MCO19C where NIR_ANO_17 = ?", [PLACEHOLDER]).fetchone()
    assert len(delivered) > 600
    assert not survivors
    assert placeholder == (1,)  # identifies nobody: kept, so that the usual PMSI filter still finds it


def test_every_link_holds_after_pseudonymisation(keyed: dict[str, int], platform: Platform) -> None:
    assert all(keyed.values()), keyed
    assert platform.links("snds") == keyed


def test_staging_pseudonyms_are_hmac_of_the_delivered_value(keyed: dict[str, int], platform: Platform) -> None:
    person = derive_platform_key(platform.secret("a.secret"), "person")
    professional = derive_platform_key(platform.secret("a.secret"), "professional")
    with platform.connect() as con:
        pairs = con.execute(
            "select l.BEN_NIR_PSA, s.BEN_NIR_PSA, l.PFS_EXE_NUM, s.PFS_EXE_NUM from landing.ER_PRS_F l "
            "join snds.ER_PRS_F s using (FLX_DIS_DTD, FLX_TRT_DTD, FLX_EMT_TYP, FLX_EMT_NUM, FLX_EMT_ORD, "
            "ORG_CLE_NUM, DCT_ORD_NUM, PRS_ORD_NUM, REM_TYP_AFF)"
        ).fetchall()
    assert len(pairs) > 1000
    for cnam, ours, cnam_professional, ours_professional in pairs:
        assert ours == pseudonym(person, cnam, 17)
        assert ours_professional == pseudonym(professional, cnam_professional, 17)


def test_vectors_match_between_python_and_duckdb(keyed: dict[str, int], platform: Platform) -> None:
    key = derive_platform_key(platform.secret("a.secret"), "person")
    rows = sorted(platform.show(hmac_vector_sql("")))
    assert rows == [(i, hmac_hex(key, v), pseudonym(key, v, 17)) for i, v in enumerate(VECTORS)]


def _project_pseudonyms(platform: Platform, project: str) -> dict[str, str]:
    rows = platform.show(f"{{{{ project_pseudonyms('{project}', ref('IR_BEN_R'), 'BEN_NIR_PSA') }}}}")
    return dict(rows)


def test_two_projects_never_share_a_pseudonym(keyed: dict[str, int], platform: Platform, catalog: Catalog) -> None:
    alpha, beta = (_project_pseudonyms(platform, p) for p in PROJECTS)
    with platform.connect() as con:
        persons = {v for (v,) in con.execute("select distinct BEN_NIR_PSA from snds.IR_BEN_R").fetchall()}
        delivered = delivered_identifiers(con, catalog, "person") | delivered_identifiers(con, catalog, "professional")
        (ipad, opad) = con.execute(
            "select IPAD, OPAD from keys.key_material where KEY_SCOPE = 'project:P_ALPHA' and KEY_STATUS = 'active'"
        ).fetchone()
    assert set(alpha) == set(beta) == persons and len(persons) == 300
    assert not set(alpha.values()) & set(beta.values())
    assert not set(alpha.values()) & (persons | delivered)
    assert len(set(alpha.values())) == len(alpha)
    alpha_key = Pads(bytes(ipad), bytes(opad)).key
    assert all(num_enq == pseudonym(alpha_key, person, 17) for person, num_enq in alpha.items())


def test_project_pseudonyms_keep_the_unknown_patient_placeholder(keyed: dict[str, int], platform: Platform) -> None:
    stays = dict(platform.show("{{ project_pseudonyms('P_ALPHA', ref('T_MCO19C'), 'NIR_ANO_17') }}"))
    assert stays[PLACEHOLDER] == PLACEHOLDER
    assert all(num_enq != person for person, num_enq in stays.items() if person != PLACEHOLDER)


def test_project_ids_are_checked_at_compile_time(keyed: dict[str, int], platform: Platform) -> None:
    with pytest.raises(DbtError, match="project id P1' or '1'='1 must be 1 to 48 letters, digits or _"):
        platform.show("{{ project_pseudonyms(\"P1' or '1'='1\", ref('IR_BEN_R'), 'BEN_NIR_PSA') }}")


@pytest.fixture(scope="module")
def second_delivery(keyed: dict[str, int], platform: Platform) -> dict[str, str]:
    """A later delivery of stays (2021) for the same persons; returns the correspondence before it."""
    with platform.connect() as con:
        before = dict(
            con.execute("select delivered_identifier, platform_pseudonym from keys.person_pseudonyms").fetchall()
        )
    full = platform.deliveries / "FULL2021"
    synthesize(full, SynthSpec(300, (2021, 2021), seed=5), load_tables(), config.reference_dir(), 0.0)
    part = platform.deliveries / "D2021"
    part.mkdir()
    kept = [(p.name, p.name.split(".")[0]) for p in sorted(full.glob("*.csv")) if p.name.startswith("T_")]
    for name, _ in kept:
        shutil.copy(full / name, part / name)
    write_manifest(part, kept)
    ingest_delivery(part, platform.database, load_tables())
    report = validate_delivery(
        platform.database, "D2021", project_rules(load_tables()), platform.target, manifest=platform.manifest
    )
    assert report["status"] == "validated", report
    platform.build()
    return before


def test_the_same_key_gives_the_same_pseudonyms_across_deliveries(
    second_delivery: dict[str, str], platform: Platform
) -> None:
    with platform.connect() as con:
        after = dict(
            con.execute("select delivered_identifier, platform_pseudonym from keys.person_pseudonyms").fetchall()
        )
        new_rows = con.execute(
            "select count(*), count(p.platform_pseudonym) from landing.T_MCO21C l "
            "left join keys.person_pseudonyms p on l.NIR_ANO_17 = p.delivered_identifier where l.DELIVERY_ID = 'D2021'"
        ).fetchone()
        orphans = con.execute(
            "select count(*) from snds.T_MCO21C c left join snds.IR_BEN_R b on c.NIR_ANO_17 = b.BEN_NIR_PSA "
            "where b.BEN_NIR_PSA is null"
        ).fetchone()
        stays = con.execute("select count(*) from snds.T_MCO21C").fetchone()
    assert {k: after[k] for k in second_delivery} == second_delivery
    assert new_rows[0] > 30 and new_rows[0] == new_rows[1] == stays[0]
    assert orphans == (0,)  # 2021 stays find the persons delivered in 2019-2020


def _identifier_snapshot(platform: Platform) -> dict[str, object]:
    with platform.connect() as con:
        return {
            "stays": dict(con.execute("select ETA_NUM || '/' || RSA_NUM, NIR_ANO_17 from snds.T_MCO19C").fetchall()),
            "persons": {v for (v,) in con.execute("select BEN_NIR_PSA from snds.IR_BEN_R").fetchall()},
            "professionals": {v for (v,) in con.execute("select PFS_EXE_NUM from snds.ER_PRS_F").fetchall()},
        }


@pytest.fixture(scope="module")
def rotated(second_delivery: dict[str, str], platform: Platform) -> tuple[dict[str, object], dict[str, int]]:
    """Rotate the platform key and rebuild; returns the identifiers and links of the base before the rotation."""
    before, links = _identifier_snapshot(platform), platform.links("snds")
    with platform.connect() as con:
        store.rotate_platform(con, platform.secret("b.secret"))
        with pytest.raises(KeyRefused, match=r"keys\.person_pseudonyms, keys\.professional_pseudonyms not yet rebuilt"):
            store.retire_previous_platform_key(con)
        # nothing maps old to new until the correspondences are rebuilt under the new key
        assert con.execute("select count(*) from keys.pseudonym_renewals").fetchone() == (0,)
    platform.dbt("build", "--select", "pseudonymisation_keys person_pseudonyms")
    platform.dbt("build", "--select", "professional_pseudonyms")
    with platform.connect() as con, pytest.raises(KeyRefused, match=r"snds\.\w+ .*not yet rebuilt"):
        store.retire_previous_platform_key(con)  # the base itself still holds the previous pseudonyms
    platform.build()
    return before, links


def test_rotation_re_pseudonymises_the_base_and_keeps_every_link(
    rotated: tuple[dict[str, object], dict[str, int]], platform: Platform
) -> None:
    before, links = rotated
    after = _identifier_snapshot(platform)
    assert platform.links("snds") == links == platform.links("landing")
    assert not (before["persons"] & after["persons"]) and len(after["persons"]) == len(before["persons"])
    assert not (before["professionals"] & after["professionals"])
    unknown = [stay for stay, person in after["stays"].items() if person == PLACEHOLDER]
    assert len(unknown) == 1


def test_renewal_maps_every_old_pseudonym_to_its_new_one(
    rotated: tuple[dict[str, object], dict[str, int]], platform: Platform
) -> None:
    before, _ = rotated
    after = _identifier_snapshot(platform)
    with platform.connect() as con:
        renewal = dict(
            con.execute(
                "select previous_pseudonym, pseudonym from keys.pseudonym_renewals where identifier_domain = 'person'"
            ).fetchall()
        )
    assert {stay: renewal[old] for stay, old in before["stays"].items()} == after["stays"]
    assert {renewal[p] for p in before["persons"]} == after["persons"]


def test_retiring_the_previous_key_leaves_nothing_of_it(
    rotated: tuple[dict[str, object], dict[str, int]], platform: Platform
) -> None:
    with platform.connect() as con:
        assert store.retire_previous_platform_key(con) == "platform-v1"
        renewals = con.execute("select count(*) from keys.pseudonym_renewals").fetchone()
        material = con.execute("select count(IPAD) from keys.key_material where KEY_ID = 'platform-v1'").fetchone()
        events = con.execute(
            "select ACTION, OUTCOME from audit.events where ACTION like 'keys.%' and OBJECT = 'platform' "
            "order by EVENT_AT"
        ).fetchall()
    assert renewals == (0,) and material == (0,)
    assert events == [
        ("keys.init", "done"),
        ("keys.rotate", "done"),
        ("keys.retire", "refused"),  # correspondences not rebuilt
        ("keys.retire", "refused"),  # correspondences rebuilt, the base not yet
        ("keys.retire", "done"),
    ]
    platform.build()  # the base builds on with the new key alone


def test_no_key_material_in_git_target_or_logs(
    rotated: tuple[dict[str, object], dict[str, int]], platform: Platform
) -> None:
    needles = leaks.secret_needles(platform.secret("a.secret")) + leaks.secret_needles(platform.secret("b.secret"))
    for name in ("a.secret", "b.secret"):
        for domain in ("person", "professional"):
            needles += leaks.key_needles(f"{name} {domain}", derive_platform_key(platform.secret(name), domain))
    with platform.connect() as con:
        needles += leaks.key_store_needles(con)  # the projects' keys
    paths = [platform.target, config.PROJECT_ROOT / "logs", config.PROJECT_ROOT / "target"]
    scanned = [p for p in paths if p.exists()]
    assert platform.target in scanned
    assert not leaks.scan_paths(scanned, needles)
    assert not leaks.scan_git(config.PROJECT_ROOT, needles)


def test_potential_identifiers_are_generalised_as_the_catalog_says(keyed: dict[str, int], platform: Platform) -> None:
    cases = {
        "care date to the month": ("ER_PRS_F", "EXE_SOI_DTD", "date '2019-03-17'", "", "2019-03-01"),
        "text date to the month": ("T_HAD19C", "ENT_DAT", "'17032019'", "", "01032019"),
        "death date to the month": ("IR_BEN_R", "BEN_DCD_DTE", "date '2020-11-30'", "", "2020-11-01"),
        "birth year kept": ("IR_BEN_R", "BEN_NAI_ANN", "'1950'", "", "1950"),
        "birth month suppressed": ("IR_BEN_R", "BEN_NAI_MOI", "'07'", "", "None"),
        "commune suppressed": ("IR_BEN_R", "BEN_RES_COM", "'056'", "", "None"),
        "commune kept when authorised": ("IR_BEN_R", "BEN_RES_COM", "'056'", "residence", "056"),
        "postal code to department": ("T_HAD19B", "BDI_COD", "'75013'", "", "75"),
        "overseas postal code": ("T_HAD19B", "BDI_COD", "'97411'", "", "974"),
        "overseas territory": ("T_HAD19B", "BDI_COD", "'98800'", "", "988"),
        "not an identifier": ("ER_PRS_F", "PRS_NAT_REF", "1111", "", "1111"),
    }
    selects = ", ".join(
        f"{{{{ generalise('{table}', '{column}', \"{value}\", {repr(keep) if keep else 'none'}) }}}} as c{i}"
        for i, (table, column, value, keep, _) in enumerate(cases.values())
    )
    (row,) = platform.show(f"select {selects}")
    assert dict(zip(cases, (str(v) for v in row), strict=True)) == {k: c[-1] for k, c in cases.items()}


def test_a_direct_identifier_cannot_be_generalised(keyed: dict[str, int], platform: Platform) -> None:
    with pytest.raises(DbtError, match=r"ER_PRS_F\.BEN_NIR_PSA is a direct identifier"):
        platform.show("select {{ generalise('ER_PRS_F', 'BEN_NIR_PSA', \"'X'\") }} as x")
    # the dictionary spells this one in lower case
    with pytest.raises(DbtError, match="is a direct identifier"):
        platform.show("select {{ generalise('CT_IDE_AAAA_GN', 'BEN_NIR_PSA', \"'X'\") }} as x")
    with pytest.raises(DbtError, match="not a table of the SNDS catalog"):
        platform.show("select {{ generalise('ER_PRS', 'EXE_SOI_DTD', \"'X'\") }} as x")
