-- P_T2D (projects/P_T2D.yml) written by hand, as an SNDS programmer would, over the staging tables snds.* only:
-- the baseline of benchmarks/project_vs_hand_sql.py, run by bare DuckDB (one statement at a time, each ending with
-- `;` at the end of a line; no `;` inside comments). Same meaning as the generated models/projects/p_t2d/ over the
-- event layer (docs/events.md, docs/projects.md), for the years the study needs (the PMSI of 2019 and 2020, the
-- DCIR current table and its 2019 and 2020 archives):
-- - entry: the first MCO stay with an E11 diagnosis (principal DGN_PAL, related DGN_REL, associated ASS_DGN) among
--   the stays the event layer keeps, or an E11 ALD (IR_IMB_R MED_MTF_COD) active in 2019-2020, dated by the later
--   of its start and the study start;
-- - rule: two A10 dispensings (ATC of IR_PHA_R by CIP13, else of IR_CIP_V by CIP7; information-only lines
--   DPN_QLF = 71 left out) in 2019-2020 within 365 days of each other;
-- - age >= 18 at the index date (birth on the first day of the birth month); follow-up until death or 2020-12-31;
-- - NUM_ENQ: HMAC-SHA-256 of the platform pseudonym with the project key, as the macro project_pseudonyms;
-- - extracts: ER_PHA_F (current table: flows of 2019 and 2020; archives 2019 and 2020), T_MCO19B, T_MCO20B
--   (BDI_COD to the department) and IR_BEN_R (birth month suppressed, death date to the month).
-- Restricted steps (platform pseudonyms) are temporary tables; the outputs go to the schema hand_p_t2d.

create schema if not exists hand_p_t2d;

-- MCO stays of 2019 and 2020 kept by the event layer: the B row with its C row, every quality code '0', a real
-- patient (not a placeholder), no error GHM (90*), an admission date; in the study period.
create or replace temp table mco_stays as
select
    pmsi_year,
    ETA_NUM,
    RSA_NUM,
    person_id,
    start_date,
    coalesce(end_date, start_date) as end_date,
    DGN_PAL,
    DGN_REL
from (
    select
        2019 as pmsi_year, b.ETA_NUM, b.RSA_NUM, b.DGN_PAL, b.DGN_REL, b.GRG_GHM, c.NIR_ANO_17 as person_id,
        coalesce(cast(c.EXE_SOI_DTD as date), cast(try_strptime(c.ENT_DAT, '%d%m%Y') as date)) as start_date,
        coalesce(cast(c.EXE_SOI_DTF as date), cast(try_strptime(c.SOR_DAT, '%d%m%Y') as date)) as end_date,
        c.NIR_RET, c.NAI_RET, c.SEX_RET, c.SEJ_RET, c.FHO_RET, c.PMS_RET, c.DAT_RET
    from snds.T_MCO19B b
    inner join snds.T_MCO19C c on b.ETA_NUM = c.ETA_NUM and b.RSA_NUM = c.RSA_NUM
    union all
    select
        2020 as pmsi_year, b.ETA_NUM, b.RSA_NUM, b.DGN_PAL, b.DGN_REL, b.GRG_GHM, c.NIR_ANO_17 as person_id,
        coalesce(cast(c.EXE_SOI_DTD as date), cast(try_strptime(c.ENT_DAT, '%d%m%Y') as date)) as start_date,
        coalesce(cast(c.EXE_SOI_DTF as date), cast(try_strptime(c.SOR_DAT, '%d%m%Y') as date)) as end_date,
        c.NIR_RET, c.NAI_RET, c.SEX_RET, c.SEJ_RET, c.FHO_RET, c.PMS_RET, c.DAT_RET
    from snds.T_MCO20B b
    inner join snds.T_MCO20C c on b.ETA_NUM = c.ETA_NUM and b.RSA_NUM = c.RSA_NUM
) stays
where
    NIR_RET = '0' and NAI_RET = '0' and SEX_RET = '0' and SEJ_RET = '0' and FHO_RET = '0' and PMS_RET = '0'
    and DAT_RET = '0'
    and person_id is not null and person_id not in ('xxxxxxxxxxxxxxxxx', 'XXXXXXXXXXXXXXXXD')
    and (GRG_GHM is null or GRG_GHM not like '90%')
    and start_date <= date '2020-12-31' and coalesce(end_date, start_date) >= date '2019-01-01';

-- Entry events: E11 in a kept stay's principal, related or associated diagnosis; an E11 ALD active in the period.
create or replace temp table entry_events as
select person_id, greatest(start_date, date '2019-01-01') as event_date
from mco_stays
where upper(replace(trim(DGN_PAL), '.', '')) like 'E11%' or upper(replace(trim(DGN_REL), '.', '')) like 'E11%'
union all
select stays.person_id, greatest(stays.start_date, date '2019-01-01') as event_date
from mco_stays stays
inner join (
    select 2019 as pmsi_year, ETA_NUM, RSA_NUM, ASS_DGN from snds.T_MCO19D
    union all
    select 2020 as pmsi_year, ETA_NUM, RSA_NUM, ASS_DGN from snds.T_MCO20D
) associated
    on stays.pmsi_year = associated.pmsi_year and stays.ETA_NUM = associated.ETA_NUM
    and stays.RSA_NUM = associated.RSA_NUM
where upper(replace(trim(associated.ASS_DGN), '.', '')) like 'E11%'
union all
select BEN_NIR_PSA as person_id, greatest(IMB_ALD_DTD, date '2019-01-01') as event_date
from snds.IR_IMB_R
where
    BEN_NIR_PSA is not null
    and IMB_ALD_DTD is not null and IMB_ALD_DTD <> date '1600-01-01'
    and upper(replace(trim(MED_MTF_COD), '.', '')) like 'E11%'
    and IMB_ALD_DTD <= date '2020-12-31'
    and (IMB_ALD_DTF is null or IMB_ALD_DTF = date '1600-01-01' or IMB_ALD_DTF >= date '2019-01-01');

-- Each person's index date: the first entry event.
create or replace temp table candidates as
select person_id, min(event_date) as index_date
from entry_events
group by person_id;

-- The candidates' A10 dispensings of the period: each ER_PHA_F line with its ER_PRS_F line (nine keys, same year).
create or replace temp table a10_dispensings as
with claim_lines as (
    select
        prs.BEN_NIR_PSA as person_id, prs.EXE_SOI_DTD as care_date, prs.DPN_QLF,
        cast(pha.PHA_PRS_IDE as varchar(13)) as cip7, cast(pha.PHA_PRS_C13 as varchar(13)) as cip13
    from snds.ER_PHA_F pha
    inner join snds.ER_PRS_F prs
        on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
        and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
        and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
        and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
        and pha.REM_TYP_AFF = prs.REM_TYP_AFF
    union all
    select
        prs.BEN_NIR_PSA, prs.EXE_SOI_DTD, prs.DPN_QLF,
        cast(pha.PHA_PRS_IDE as varchar(13)), cast(pha.PHA_PRS_C13 as varchar(13))
    from snds.ER_PHA_F_2019 pha
    inner join snds.ER_PRS_F_2019 prs
        on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
        and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
        and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
        and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
        and pha.REM_TYP_AFF = prs.REM_TYP_AFF
    union all
    select
        prs.BEN_NIR_PSA, prs.EXE_SOI_DTD, prs.DPN_QLF,
        cast(pha.PHA_PRS_IDE as varchar(13)), cast(pha.PHA_PRS_C13 as varchar(13))
    from snds.ER_PHA_F_2020 pha
    inner join snds.ER_PRS_F_2020 prs
        on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
        and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
        and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
        and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
        and pha.REM_TYP_AFF = prs.REM_TYP_AFF
),

atc_by_cip13 as (
    select cast(PHA_CIP_C13 as varchar(13)) as cip13, min(PHA_ATC_C07) as atc
    from snds.IR_PHA_R
    where PHA_ATC_C07 is not null
    group by PHA_CIP_C13
),

atc_by_cip7 as (
    select cast(PHA_PRS_IDE as varchar(13)) as cip7, min(PHA_ATC_CLA) as atc
    from snds.IR_CIP_V
    where PHA_ATC_CLA is not null
    group by PHA_PRS_IDE
)

select claim_lines.person_id, claim_lines.care_date
from claim_lines
inner join candidates on claim_lines.person_id = candidates.person_id
left join atc_by_cip13 on claim_lines.cip13 = atc_by_cip13.cip13
left join atc_by_cip7 on claim_lines.cip7 = atc_by_cip7.cip7
where
    coalesce(claim_lines.DPN_QLF, 0) <> 71
    and claim_lines.care_date between date '2019-01-01' and date '2020-12-31'
    and coalesce(atc_by_cip13.atc, atc_by_cip7.atc) like 'A10%';

-- The most A10 dispensings found within 365 days from one of them.
create or replace temp table rule_1 as
select person_id, max(occurrences) as occurrences
from (
    select
        person_id,
        count(*) over (
            partition by person_id order by care_date
            range between current row and interval 365 days following
        ) as occurrences
    from a10_dispensings
) spans
group by person_id;

-- Each candidate with what the rule counted, the age at the index date and the death date.
create or replace temp table scored as
with beneficiaries as (
    select
        BEN_NIR_PSA as person_id,
        case when BEN_NAI_ANN between '1850' and '2100' and BEN_NAI_ANN <> '1600' then cast(BEN_NAI_ANN as integer)
        end as birth_year,
        case
            when BEN_NAI_MOI in ('01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12')
                then cast(BEN_NAI_MOI as integer)
        end as birth_month,
        row_number() over (
            partition by BEN_NIR_PSA order by BEN_RNG_GEM asc, BEN_DTE_MAJ desc, BEN_IDT_ANO asc
        ) as person_rank
    from snds.IR_BEN_R
    where BEN_NIR_PSA in (select person_id from candidates)
),

deaths as (
    select BEN_NIR_PSA as person_id, BEN_DCD_DTE as death_date
    from snds.IR_BEN_R
    where BEN_NIR_PSA is not null and BEN_DCD_DTE is not null and BEN_DCD_DTE <> date '1600-01-01'
    union all
    select by_idt.person_id, causes.BEN_DCD_DTE as death_date
    from snds.KI_CCI_R causes
    inner join (
        select BEN_IDT_ANO, min(BEN_NIR_PSA) as person_id
        from snds.IR_BEN_R
        where BEN_IDT_ANO is not null
        group by BEN_IDT_ANO
    ) by_idt on causes.BEN_IDT_ANO = by_idt.BEN_IDT_ANO
    where by_idt.person_id is not null and causes.BEN_DCD_DTE is not null
)

select
    candidates.person_id,
    candidates.index_date,
    coalesce(rule_1.occurrences, 0) as rule_1_occurrences,
    year(candidates.index_date) - beneficiaries.birth_year
    - case when month(candidates.index_date) < beneficiaries.birth_month then 1 else 0 end as age_at_index,
    died.death_date
from candidates
left join beneficiaries on candidates.person_id = beneficiaries.person_id and beneficiaries.person_rank = 1
left join rule_1 on candidates.person_id = rule_1.person_id
left join (select person_id, min(death_date) as death_date from deaths group by person_id) died
    on candidates.person_id = died.person_id;

-- The cohort with both pseudonyms: NUM_ENQ = HMAC-SHA-256 with the project's key (inner and outer pads).
create or replace temp table members as
select
    scored.person_id,
    case
        when scored.person_id in ('xxxxxxxxxxxxxxxxx', 'XXXXXXXXXXXXXXXXD') then scored.person_id
        else upper(substr(sha256(project_key.OPAD || unhex(sha256(project_key.IPAD || encode(scored.person_id)))), 1, 17))
    end as NUM_ENQ,
    scored.index_date,
    least(coalesce(scored.death_date, date '2020-12-31'), date '2020-12-31') as end_of_followup
from scored
cross join (
    select IPAD, OPAD
    from keys.key_material
    where KEY_SCOPE = 'project:P_T2D' and KEY_DOMAIN = 'person' and KEY_STATUS = 'active'
) project_key
where scored.rule_1_occurrences >= 2 and scored.age_at_index >= 18;

create or replace table hand_p_t2d.cohort as
select NUM_ENQ, index_date, end_of_followup
from members;

create or replace table hand_p_t2d.attrition as
with steps as (
    select 1 as step, 'an entry event in the study period (first occurrence)' as step_description, count(*) as persons
    from scored
    union all
    select 2, 'two A10 dispensings in the period, at most 365 days apart', count(*)
    from scored
    where rule_1_occurrences >= 2
    union all
    select 3, 'age at index: >= 18', count(*)
    from scored
    where rule_1_occurrences >= 2 and age_at_index >= 18
)

select step, step_description, persons, coalesce(lag(persons) over (order by step), persons) - persons as persons_excluded
from steps;

-- Extracts: the cohort's rows, NUM_ENQ for the person, the perimeter's columns, generalised where the catalog says.
create or replace table hand_p_t2d.ER_PHA_F as
select
    members.NUM_ENQ, pha.FLX_DIS_DTD, pha.FLX_TRT_DTD, pha.FLX_EMT_TYP, pha.FLX_EMT_NUM, pha.FLX_EMT_ORD,
    pha.ORG_CLE_NUM, pha.DCT_ORD_NUM, pha.PRS_ORD_NUM, pha.REM_TYP_AFF, pha.PHA_PRS_IDE, pha.PHA_PRS_C13,
    pha.PHA_ACT_QSN
from snds.ER_PHA_F pha
inner join snds.ER_PRS_F prs
    on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
    and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
    and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
    and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
    and pha.REM_TYP_AFF = prs.REM_TYP_AFF
inner join members on prs.BEN_NIR_PSA = members.person_id
where year(pha.FLX_DIS_DTD) in (2019, 2020);

create or replace table hand_p_t2d.ER_PHA_F_2019 as
select
    members.NUM_ENQ, pha.FLX_DIS_DTD, pha.FLX_TRT_DTD, pha.FLX_EMT_TYP, pha.FLX_EMT_NUM, pha.FLX_EMT_ORD,
    pha.ORG_CLE_NUM, pha.DCT_ORD_NUM, pha.PRS_ORD_NUM, pha.REM_TYP_AFF, pha.PHA_PRS_IDE, pha.PHA_PRS_C13,
    pha.PHA_ACT_QSN
from snds.ER_PHA_F_2019 pha
inner join snds.ER_PRS_F_2019 prs
    on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
    and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
    and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
    and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
    and pha.REM_TYP_AFF = prs.REM_TYP_AFF
inner join members on prs.BEN_NIR_PSA = members.person_id;

create or replace table hand_p_t2d.ER_PHA_F_2020 as
select
    members.NUM_ENQ, pha.FLX_DIS_DTD, pha.FLX_TRT_DTD, pha.FLX_EMT_TYP, pha.FLX_EMT_NUM, pha.FLX_EMT_ORD,
    pha.ORG_CLE_NUM, pha.DCT_ORD_NUM, pha.PRS_ORD_NUM, pha.REM_TYP_AFF, pha.PHA_PRS_IDE, pha.PHA_PRS_C13,
    pha.PHA_ACT_QSN
from snds.ER_PHA_F_2020 pha
inner join snds.ER_PRS_F_2020 prs
    on pha.FLX_DIS_DTD = prs.FLX_DIS_DTD and pha.FLX_TRT_DTD = prs.FLX_TRT_DTD
    and pha.FLX_EMT_TYP = prs.FLX_EMT_TYP and pha.FLX_EMT_NUM = prs.FLX_EMT_NUM
    and pha.FLX_EMT_ORD = prs.FLX_EMT_ORD and pha.ORG_CLE_NUM = prs.ORG_CLE_NUM
    and pha.DCT_ORD_NUM = prs.DCT_ORD_NUM and pha.PRS_ORD_NUM = prs.PRS_ORD_NUM
    and pha.REM_TYP_AFF = prs.REM_TYP_AFF
inner join members on prs.BEN_NIR_PSA = members.person_id;

create or replace table hand_p_t2d.T_MCO19B as
select
    members.NUM_ENQ,
    stays.* replace (
        cast(case
            when substr(stays.BDI_COD, 1, 2) in ('97', '98') then substr(stays.BDI_COD, 1, 3)
            else substr(stays.BDI_COD, 1, 2)
        end as varchar(5)) as BDI_COD
    )
from snds.T_MCO19B stays
inner join snds.T_MCO19C patients on stays.ETA_NUM = patients.ETA_NUM and stays.RSA_NUM = patients.RSA_NUM
inner join members on patients.NIR_ANO_17 = members.person_id;

create or replace table hand_p_t2d.T_MCO20B as
select
    members.NUM_ENQ,
    stays.* replace (
        cast(case
            when substr(stays.BDI_COD, 1, 2) in ('97', '98') then substr(stays.BDI_COD, 1, 3)
            else substr(stays.BDI_COD, 1, 2)
        end as varchar(5)) as BDI_COD
    )
from snds.T_MCO20B stays
inner join snds.T_MCO20C patients on stays.ETA_NUM = patients.ETA_NUM and stays.RSA_NUM = patients.RSA_NUM
inner join members on patients.NIR_ANO_17 = members.person_id;

create or replace table hand_p_t2d.IR_BEN_R as
select
    members.NUM_ENQ,
    beneficiaries.BEN_RNG_GEM,
    beneficiaries.BEN_NAI_ANN,
    cast(null as varchar(2)) as BEN_NAI_MOI,
    beneficiaries.BEN_SEX_COD,
    cast(date_trunc('month', beneficiaries.BEN_DCD_DTE) as date) as BEN_DCD_DTE
from snds.IR_BEN_R beneficiaries
inner join members on beneficiaries.BEN_NIR_PSA = members.person_id;
