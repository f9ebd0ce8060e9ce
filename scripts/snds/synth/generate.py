"""Generate a coherent synthetic SNDS delivery with DuckDB (fast enough for gigabytes).

Randomness is `hash(seed, person, purpose)`: the same seed gives the same delivery, whatever the
thread count. The same persons appear in IR_BEN_R, DCIR, PMSI and CepiDc (`NIR_ANO_17 = BEN_NIR_PSA`),
codes come from the dictionary's nomenclatures, and planted clinical stories are listed in a truth file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.catalog.conventions import load_conventions
from snds.catalog.sqltypes import DATE, TIMESTAMP
from snds.formats import DATE_FORMAT, TIMESTAMP_FORMAT, UNKNOWN_DATE
from snds.synth.linkage import LinkageSpec, choose_members

# Rates of the planted stories, per thousand persons.
DIABETES_PER_MILLE = 80
INFARCTION_PER_MILLE = 30
DEATH_PER_MILLE = 20
STAY_PER_MILLE = 150  # other hospital stays per person and year
# A second I21 stay for a few infarction persons, per kind: admitted in the December before the first delivered year
# and discharged in its January (the later stay is then not incident), 60 to 199 days after the first, or 380 to 439.
RECURRENCES = ("before", "within_365_days", "over_365_days")
RECURRENCES_PER_KIND = 2


@dataclass(frozen=True)
class SynthSpec:
    patients: int
    years: tuple[int, ...]
    seed: int
    claims_per_person_year: int = 6
    linkage: LinkageSpec | None = None  # an external cohort to link, with twins planted in the base


def _r(seed: int, purpose: str, key: str = "pid", modulo: int = 1000) -> str:
    """A deterministic pseudo-random integer in [0, modulo) for each row."""
    return f"cast(hash({seed}, {key}, '{purpose}') % {modulo} as bigint)"


def _pseudonym(seed: int, purpose: str, key: str = "pid") -> str:
    """A CNAM-like person pseudonym, as long as the platform's (conformity's pseudonym_format checks the length)."""
    return f"upper(substr(md5('{seed}:{purpose}:' || {key}), 1, {load_conventions().pseudonyms.length}))"


def load_code_pools(con: duckdb.DuckDBPyConnection, reference: Path) -> None:
    """Code lists the data draws from, read from the dictionary's nomenclatures."""
    nomenclatures = reference / "nomenclatures"

    def pool(name: str, sql_file: str, column: str, where: str = "true") -> None:
        path = str(nomenclatures / sql_file).replace("'", "''")
        con.execute(
            f"create or replace table {name} as select row_number() over (order by code) - 1 as i, code from ("
            f"select distinct {column} as code from read_csv('{path}', delim=';', header=true, all_varchar=true) "
            f"where {column} is not null and {where})"
        )
        con.execute(f"set variable {name} = (select list(code order by i) from {name})")

    # Diagnoses valid in both the DCIR (IR_CIM_V) and the PMSI (MS_CIM_V) lists.
    pmsi_icd = str(nomenclatures / "ORAVAL" / "MS_CIM_V.csv").replace("'", "''")
    in_pmsi = f"CIM_COD in (select CIM_COD from read_csv('{pmsi_icd}', delim=';', header=true, all_varchar=true))"
    pool(
        "pool_icd",
        "ORAVAL/IR_CIM_V.csv",
        "CIM_COD",
        f"length(CIM_COD) = 4 and CIM_COD not like 'E11%' and CIM_COD not like 'I21%' and {in_pmsi}",
    )
    pool("pool_e11", "ORAVAL/IR_CIM_V.csv", "CIM_COD", f"CIM_COD like 'E11_' and {in_pmsi}")
    pool("pool_i21", "ORAVAL/IR_CIM_V.csv", "CIM_COD", f"CIM_COD like 'I21_' and {in_pmsi}")
    pool("pool_org", "ORAVAL/IR_ORG_V.csv", "ORG_NUM", "ORG_NUM like '01C75%'")  # Paris funds: a small pool
    pool("pool_bio", "ORAREF/IR_BIO_R.csv", "BIO_PRS_IDE", "regexp_full_match(BIO_PRS_IDE, '[0-9]{1,4}')")
    pool("pool_cip", "ORAVAL/IR_CIP_V.csv", "PHA_PRS_IDE", "PHA_ATC_CLA <> 'A10' and length(PHA_PRS_IDE) = 7")
    pool("pool_cip_a10", "ORAVAL/IR_CIP_V.csv", "PHA_PRS_IDE", "PHA_ATC_CLA = 'A10' and length(PHA_PRS_IDE) = 7")
    pool("pool_ccam", "ATIH/IR_CCAM_V63.csv", "CAM_PRS_IDE_COD", "length(CAM_PRS_IDE_COD) = 7")
    pool("pool_dpt", "ORAVAL/IR_DPT_V.csv", "GEO_DPT_COD", "GEO_DPT_COD between '001' and '095'")


def _pick(pool: str, draw: str) -> str:
    # The pool as a session variable (load_code_pools): a constant for DuckDB, where a subquery's list was copied
    # into every row of a chunk (out of memory at a million persons)
    return f"list_extract(getvariable('{pool}'), 1 + ({draw}) % len(getvariable('{pool}')))"


def build_tables(con: duckdb.DuckDBPyConnection, spec: SynthSpec) -> None:
    """Create one DuckDB table per SNDS table of the delivery, with SNDS column names."""
    s, first, last = spec.seed, min(spec.years), max(spec.years)
    days = f"(date '{last}-12-31' - date '{first}-01-01')"
    con.execute(f"""create or replace table persons as
        select pid,
            {_pseudonym(s, "nir")} as nir, {_pseudonym(s, "ano")} as nir_ano, {_pseudonym(s, "idt")} as idt,
            1 + {_r(s, "sex", modulo=2)} as sex, 1925 + {_r(s, "birth", modulo=90)} as birth_year,
            1 + {_r(s, "month", modulo=12)} as birth_month, {_pick("pool_dpt", _r(s, "dpt", modulo=100000))} as dpt,
            lpad(cast({_r(s, "com", modulo=900)} + 1 as varchar), 3, '0') as commune,
            {_r(s, "diab")} < {DIABETES_PER_MILLE} as diabetic,
            {_r(s, "mi")} < {INFARCTION_PER_MILLE} as infarction,
            case when {_r(s, "death")} < {DEATH_PER_MILLE}
                 then date '{first}-01-01' + cast({_r(s, "dday", modulo=100000)} % {days} as integer) end as death
        from range({spec.patients}) t(pid)""")
    if spec.linkage is not None:
        choose_members(con, s, spec.linkage)
    con.execute(f"""create or replace table claims as
        select row_number() over (order by pid, y, k) as dct, pid, y, k,
            make_date(y, 1, 1) + cast({_r(s, "cday", "pid * 100000 + y * 100 + k", 365)} as integer) as care,
            case when k = 0 and diabetic then 'antidiabetic'
                 else ['consultation', 'pharmacy', 'biology',
                     'act'][1 + {_r(s, "kind", "pid * 100000 + y * 100 + k", 4)}]
            end as kind
        from persons, range({spec.claims_per_person_year}) c(k), (select unnest({list(spec.years)}) as y)
        where death is null or make_date(y, 1, 1) <= death""")
    con.execute(f"""create or replace table stays as
        select row_number() over (order by pid, y, story) as sid, pid, y, story,
            make_date(y, 1, 1) + cast({_r(s, "sday", "pid * 10000 + y", 330)} as integer) as entry,
            cast(1 + {_r(s, "los", "pid * 10000 + y", 12)} as integer) as los
        from (
            select pid, y,
                case when diabetic then 'E11' when infarction and y = {first} then 'I21' else 'other' end as story
            from persons, (select unnest({list(spec.years)}) as y)
            where diabetic or (infarction and y = {first}) or {_r(s, "stay", "pid * 10000 + y")} < {STAY_PER_MILLE})""")
    _plant_recurrences(con, spec)


def _plant_recurrences(con: duckdb.DuckDBPyConnection, spec: SynthSpec) -> None:
    """A second I21 stay for a few persons of the infarction story (table `recurrences`, rows added to `stays`).

    Chosen among the infarction persons (not diabetic, alive, with no other stay) whose first-year I21 stay starts
    from February to September, by a hash of the seed, RECURRENCES_PER_KIND of each kind in turn (see RECURRENCES).
    A stay admitted in December of the year before the first delivered year and discharged in January is filed in
    the first year's tables, as the PMSI files a stay by its discharge (conformity lets EXE_SOI_DTD be a year
    early). The added rows take the sids after the last one, so that every other row keeps its values; a stay
    whose discharge year is not delivered is not added.
    """
    s, first = spec.seed, min(spec.years)
    kinds = ", ".join(f"('{kind}', {n})" for n, kind in enumerate(RECURRENCES))
    h = "pid * 10000 + 1"
    added = {
        "before": (
            f"make_date({first - 1}, 12, 15) + cast({_r(s, 'rday', h, 10)} as integer)",
            f"make_date({first}, 1, 1) + cast({_r(s, 'rdis', h, 5)} as integer)",
        ),
        "within_365_days": (f"first_entry + 60 + cast({_r(s, 'rday', h, 140)} as integer)", None),
        "over_365_days": (f"first_entry + 380 + cast({_r(s, 'rday', h, 60)} as integer)", None),
    }
    entry = " ".join(f"when '{kind}' then {start}" for kind, (start, _) in added.items())
    discharge = " ".join(f"when '{kind}' then {end}" for kind, (_, end) in added.items() if end)
    los = f"cast(1 + {_r(s, 'rlos', h, 12)} as integer)"
    con.execute(f"""create or replace table recurrences as
        with eligible as (
            select distinct pid, stays.entry as first_entry
            from stays join persons using (pid)
            where stays.story = 'I21' and not diabetic and death is null
                and stays.entry between make_date({first}, 2, 1) and make_date({first}, 9, 30)
                and pid not in (select pid from stays where story <> 'I21')
        ),
        chosen as (
            select *, row_number() over (order by hash({s}, pid, 'recurrence'), pid) - 1 as rank from eligible
        ),
        dated as (
            select pid, kind, first_entry, case kind {entry} end as entry
            from chosen join (values {kinds}) k(kind, n) on rank // {RECURRENCES_PER_KIND} = n
        ),
        sized as (
            select *, cast(coalesce(case kind {discharge} end - entry, {los}) as integer) as los from dated
        )
        select pid, kind, first_entry, entry, los, year(entry + los) as y from sized
        where year(entry + los) in (select unnest({list(spec.years)}))""")
    con.execute("""insert into stays
        select (select max(sid) from stays) + row_number() over (order by pid, entry), pid, y, 'I21', entry, los
        from recurrences""")


def table_queries(spec: SynthSpec) -> dict[str, str]:
    """SQL per SNDS table name, selecting SNDS column names (typed; formatting happens on export)."""
    s = spec.seed
    finess = "lpad(cast(100000000 + {key} % 900 * 1000 as varchar), 9, '0')"
    nine_keys = f"""cast(date_trunc('month', care + 45) as date) as FLX_DIS_DTD,
        cast(date_trunc('month', care + 45) as date) - 3 as FLX_TRT_DTD,
        1 as FLX_EMT_TYP, 11 + pid % 80 as FLX_EMT_NUM, 1 as FLX_EMT_ORD, {_pick("pool_org", "pid")} as ORG_CLE_NUM,
        dct as DCT_ORD_NUM, 1 as PRS_ORD_NUM, 1 as REM_TYP_AFF"""
    unknown = f"date '{UNKNOWN_DATE.isoformat()}'"  # the SNDS's unknown date, for persons alive
    queries = {
        "IR_BEN_R": f"""select nir as BEN_NIR_PSA, 1 as BEN_RNG_GEM, nir_ano as BEN_NIR_ANO, idt as BEN_IDT_ANO,
            1 as BEN_IDT_TOP, cast(birth_year as varchar) as BEN_NAI_ANN, lpad(cast(birth_month as varchar), 2,
                '0') as BEN_NAI_MOI,
            sex as BEN_SEX_COD, coalesce(death, {unknown}) as BEN_DCD_DTE,
            case when death is not null then strftime(death, '%Y%m') end as BEN_DCD_AME,
            dpt as BEN_RES_DPT, commune as BEN_RES_COM from persons""",
        "IR_IBA_R": f"""select idt as BEN_IDT_ANO, 1 as BEN_IDT_TOP, cast(birth_year as varchar) as BEN_NAI_ANN,
            lpad(cast(birth_month as varchar), 2, '0') as BEN_NAI_MOI, sex as BEN_SEX_COD,
            coalesce(death, {unknown}) as BEN_DCD_DTE, dpt as BEN_RES_DPT,
                commune as BEN_RES_COM from persons""",
        "IR_IMB_R": """select nir as BEN_NIR_PSA, 1 as BEN_RNG_GEM,
            date '2015-01-01' + cast(pid % 1500 as integer) as IMB_ALD_DTD,
            date '2099-12-31' as IMB_ALD_DTF, 8 as IMB_ALD_NUM, 41 as IMB_ETM_NAT, 'E11' as MED_MTF_COD,
                'CIM10' as MED_NCL_IDT
            from persons where diabetic""",
        "ER_PRS_F": f"""select nir as BEN_NIR_PSA, 1 as BEN_RNG_GEM, sex as BEN_SEX_COD,
            cast(birth_year as varchar) as BEN_NAI_ANN,
            dpt as BEN_RES_DPT, commune as BEN_RES_COM, care as EXE_SOI_DTD, care as EXE_SOI_DTF,
            case kind when 'consultation' then 1111 when 'biology' then 3211 when 'act' then 1311 else 3311 end
                as PRS_NAT_REF,
            case when {_r(s, "dpn", "dct", 100)} < 3 then 71 else 0 end as DPN_QLF,
            case kind when 'consultation' then 1111 when 'biology' then 3211 when 'act' then 1311 else 3311 end
                as BSE_PRS_NAT,
            cast(10 + {_r(s, "amount", "dct", 9000)} / 100.0 as decimal(11,2)) as BSE_REM_MNT,
            lpad(cast(10000000 + pid % 5000 as varchar), 8, '0') as PFS_EXE_NUM, {nine_keys}
            from claims join persons using (pid)""",
        "ER_PHA_F": f"""select {nine_keys}, cast(cip as decimal(7,0)) as PHA_PRS_IDE,
            cast(3400900000000 + cast(cip as bigint) * 10 + cast(cip as bigint) % 10 as decimal(13,0)) as PHA_PRS_C13,
            1 + {_r(s, "qty", "dct", 3)} as PHA_ACT_QSN from (
                select *, case when kind = 'antidiabetic' then {_pick("pool_cip_a10", _r(s, "cip", "dct", 100000))}
                               else {_pick("pool_cip", _r(s, "cip", "dct", 100000))} end as cip
                from claims where kind in ('pharmacy', 'antidiabetic'))""",
        "ER_BIO_F": f"""select {nine_keys}, {_pick("pool_bio", _r(s, "bio", "dct", 100000))} as BIO_PRS_IDE,
            1 as BIO_ACT_QSN
            from claims where kind = 'biology'""",
        "ER_CAM_F": f"""select {nine_keys}, {_pick("pool_ccam", _r(s, "ccam", "dct", 100000))} as CAM_PRS_IDE,
            1 as CAM_ORD_NUM
            from claims where kind = 'act'""",
        "ER_ETE_F": f"""select {nine_keys}, substr({finess.format(key="pid")}, 1, 8) as ETB_EXE_FIN, 1 as ETE_TYP_COD
            from claims where kind = 'act'""",
        "KI_CCI_R": """select idt as BEN_IDT_ANO, 1 as BEN_IDT_TOP, nir_ano as BEN_NIR_ANO, strftime(death,
            '%Y') as FLX_PER_ANN,
            death as BEN_DCD_DTE, strftime(death, '%Y%m') as BEN_DCD_AME, sex as BEN_SEX_COD,
            cast(birth_year as varchar) as BEN_NAI_ANN, case when infarction then 'I219' else 'R99' end as DCD_CIM_COD,
            dpt as BEN_RES_DPT from persons where death is not null""",
        "KI_ECD_R": """select idt as BEN_IDT_ANO, 1 as BEN_IDT_TOP, nir_ano as BEN_NIR_ANO, strftime(death,
            '%Y') as FLX_PER_ANN,
            1 as CER_LIG_NUM, 1 as ECD_CAU_RNG, case when infarction then 'I219' else 'R99' end as ECD_CIM_COD,
            death as BEN_DCD_DTE from persons where death is not null""",
    }
    for year in spec.years:
        yy = f"{year % 100:02d}"
        stays = f"from stays join persons using (pid) where y = {year}"
        diagnosis = f"""case story when 'E11' then {_pick("pool_e11", "sid")} when 'I21' then {_pick("pool_i21", "sid")}
            else {_pick("pool_icd", _r(s, "dp", "sid", 100000))} end"""
        link = """nir as NIR_ANO_17, '0' as NIR_RET, '0' as NAI_RET, '0' as SEX_RET, '0' as SEJ_RET, '0' as FHO_RET,
            '0' as PMS_RET, '0' as DAT_RET, strftime(entry, '%d%m%Y') as ENT_DAT, strftime(entry + los,
                '%d%m%Y') as SOR_DAT"""
        queries |= {
            f"T_MCO{yy}B": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 10,
                '0') as RSA_NUM,
                {diagnosis} as DGN_PAL,
                    case story when 'E11' then '10M02T' when 'I21' then '05M04T' else '23M20T' end as GRG_GHM,
                los as SEJ_NBJ, {year} - birth_year as AGE_ANN, cast(sex as varchar) as COD_SEX, substr(dpt, 2,
                    2) as BDI_DEP,
                '8' as ENT_MOD, '8' as SOR_MOD, cast({year} as varchar) as SOR_ANN,
                lpad(cast(month(entry + los) as varchar), 2, '0') as SOR_MOI {stays}""",
            f"T_MCO{yy}C": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 10,
                '0') as RSA_NUM, {link},
                entry as EXE_SOI_DTD, entry + los as EXE_SOI_DTF {stays}""",
            f"T_MCO{yy}D": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 10,
                '0') as RSA_NUM,
                {_pick("pool_icd", _r(s, "da", "sid", 100000))} as ASS_DGN, 1 as DGN_ASS_NUM {stays}""",
            f"T_MCO{yy}A": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 10,
                '0') as RSA_NUM,
                {_pick("pool_ccam", _r(s, "acte", "sid", 100000))} as CDC_ACT, 1 as NBR_EXE_ACT {stays}""",
            f"T_MCO{yy}UM": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 10,
                '0') as RSA_NUM,
                {diagnosis} as DGN_PAL, 1 as UM_ORD_NUM, los as PAR_DUR_SEJ {stays}""",
            f"T_SSR{yy}B": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 7,
                '0') as RHA_NUM,
                '001' as RHS_NUM, {year} - birth_year as AGE_ANN {stays} and story = 'I21'""",
            f"T_SSR{yy}C": f"""select {finess.format(key="sid")} as ETA_NUM, lpad(cast(sid as varchar), 7,
                '0') as RHA_NUM, {link},
                entry as EXE_SOI_DTD, entry + los as EXE_SOI_DTF {stays} and story = 'I21'""",
            f"T_HAD{yy}B": f"""select {finess.format(key="sid")} as ETA_NUM_EPMSI,
                lpad(cast(sid % 100000 as varchar), 5, '0') as RHAD_NUM,
                {diagnosis} as DGN_PAL, los as SEJ_NBJ {stays} and sid % 7 = 0""",
            f"T_HAD{yy}C": f"""select {finess.format(key="sid")} as ETA_NUM_EPMSI,
                lpad(cast(sid % 100000 as varchar), 5, '0') as RHAD_NUM,
                {link}, entry as EXE_SOI_DTD, entry + los as EXE_SOI_DTF {stays} and sid % 7 = 0""",
            f"T_RIP{yy}RSA": f"""select {finess.format(key="sid")} as ETA_NUM_EPMSI,
                lpad(cast(sid % 1000000 as varchar), 6, '0') as RIP_NUM,
                {diagnosis} as DGN_PAL, {year} - birth_year as AGE_ANN {stays} and sid % 11 = 0""",
            f"T_RIP{yy}C": f"""select {finess.format(key="sid")} as ETA_NUM_EPMSI,
                lpad(cast(sid % 1000000 as varchar), 6, '0') as RIP_NUM,
                {link}, entry as EXE_SOI_DTD, entry + los as EXE_SOI_DTF {stays} and sid % 11 = 0""",
        }
    return queries


def export_sql(table: CatalogTable, query: str, produced: set[str]) -> str:
    """The delivery file's SELECT: every catalog column in order (empty when not generated), as the CNAM writes it."""
    columns = []
    for column in table.columns:
        if column.name.upper() not in produced:
            columns.append(f"null as {column.name}")
            continue
        value = f"src.{column.name}"
        if column.sql_type.kind == DATE:
            value = f"strftime(cast({value} as date), '{DATE_FORMAT}')"
        elif column.sql_type.kind == TIMESTAMP:
            value = f"upper(strftime(cast({value} as timestamp), '{TIMESTAMP_FORMAT}'))"
        columns.append(f"{value} as {column.name}")
    return f"select {', '.join(columns)} from ({query}) src"
