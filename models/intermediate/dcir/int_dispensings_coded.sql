{#-
    The kept drug dispensings (ER_PHA_F lines with their ER_PRS_F line, information-only lines excluded) with their
    ATC code: the full code of IR_PHA_R by CIP13 when the reference holds it, else the ATC class of IR_CIP_V by CIP7.
-#}
with

dispensings as (
    select * from {{ ref('int_claim_lines_flagged') }}
    where line_kind = 'dispensing' and cleaning_rule is null
),

atc_by_cip13 as (
    select
        cast(PHA_CIP_C13 as varchar(13)) as cip13_code,
        min(PHA_ATC_C07) as atc_code
    from {{ ref('IR_PHA_R') }}
    where PHA_ATC_C07 is not null
    group by PHA_CIP_C13
),

atc_by_cip7 as (
    select
        cast(PHA_PRS_IDE as varchar(13)) as cip7_code,
        min(PHA_ATC_CLA) as atc_code
    from {{ ref('IR_CIP_V') }}
    where PHA_ATC_CLA is not null
    group by PHA_PRS_IDE
),

final as (
    select
        dispensings.source_table,
        dispensings.source_key,
        dispensings.person_id,
        dispensings.care_date,
        dispensings.cip7_code,
        dispensings.cip13_code,
        cast(coalesce(atc_by_cip13.atc_code, atc_by_cip7.atc_code) as varchar(7)) as atc_code,
        dispensings.quantity,
        dispensings.source_period
    from dispensings
    left join atc_by_cip13 on dispensings.cip13_code = atc_by_cip13.cip13_code
    left join atc_by_cip7 on dispensings.cip7_code = atc_by_cip7.cip7_code
)

select * from final
