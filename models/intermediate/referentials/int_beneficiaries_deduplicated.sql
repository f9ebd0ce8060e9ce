{#-
    One row per person pseudonym (BEN_NIR_PSA) of the beneficiary referential IR_BEN_R: the row of the lowest twin
    rank (BEN_RNG_GEM; the PMSI has none), the latest updated first. Birth year 1600 and months outside 1-12 are
    unknown (null).
-#}
with

beneficiaries as (
    select * from {{ ref('IR_BEN_R') }}
    where BEN_NIR_PSA is not null
),

ranked as (
    select
        beneficiaries.*,
        row_number() over (
            partition by beneficiaries.BEN_NIR_PSA
            order by beneficiaries.BEN_RNG_GEM asc, beneficiaries.BEN_DTE_MAJ desc, beneficiaries.BEN_IDT_ANO asc
        ) as person_rank
    from beneficiaries
),

final as (
    select
        BEN_NIR_PSA as person_id,
        BEN_SEX_COD as sex,
        cast(case
            when BEN_NAI_ANN between '1850' and '2100' and BEN_NAI_ANN <> '1600' then BEN_NAI_ANN
        end as integer) as birth_year,
        cast(case
            when BEN_NAI_MOI in ('01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12')
                then BEN_NAI_MOI
        end as integer) as birth_month,
        BEN_RES_DPT as residence_department
    from ranked
    where person_rank = 1
)

select * from final
