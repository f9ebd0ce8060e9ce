{#-
    Every long-term disease (ALD) exoneration of IR_IMB_R with its person, ALD number, ICD-10 code (MED_MTF_COD) and
    period (an exoneration without an end is open: 9999-12-31). `cleaning_rule`: `missing_person` (no BEN_NIR_PSA)
    or `missing_date` (no start date, or 1600-01-01); null when kept.
-#}
with

exonerations as (
    select * from {{ ref('IR_IMB_R') }}
),

final as (
    select
        cast('IR_IMB_R' as varchar(32)) as source_table,
        cast({{ text_key([
            'BEN_NIR_PSA',
            'cast(BEN_RNG_GEM as varchar(40))',
            'cast(IMB_ALD_NUM as varchar(40))',
            date_to_text('IMB_ALD_DTD'),
            'MED_MTF_COD',
        ]) }} as varchar(200)) as source_key,
        BEN_NIR_PSA as person_id,
        IMB_ALD_DTD as start_date,
        {#- an exoneration without an end (empty, or the SNDS's unknown date) is open: it ends on 9999-12-31 -#}
        case
            when IMB_ALD_DTF is null or IMB_ALD_DTF = date '1600-01-01' then date '9999-12-31'
            else IMB_ALD_DTF
        end as end_date,
        cast(IMB_ALD_NUM as varchar(2)) as ald_number,
        cast(upper(replace(trim(MED_MTF_COD), '.', '')) as varchar(5)) as icd10_code,
        cast(case
            when BEN_NIR_PSA is null then 'missing_person'
            when IMB_ALD_DTD is null or IMB_ALD_DTD = date '1600-01-01' then 'missing_date'
        end as varchar(32)) as cleaning_rule
    from exonerations
)

select * from final
