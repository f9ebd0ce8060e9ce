{#-
    Deaths from the beneficiary referential (IR_BEN_R BEN_DCD_DTE; 1600-01-01 is the SNDS's "alive or unknown") and
    causes of death from the CepiDc (KI_CCI_R, underlying cause DCD_CIM_COD), linked to the person through
    BEN_IDT_ANO of IR_BEN_R. `cleaning_rule`: `no_death_date` (IR_BEN_R rows of persons alive or of unknown death),
    `no_beneficiary` (a KI_CCI_R row whose BEN_IDT_ANO no IR_BEN_R row holds), `missing_date`; null when kept.
-#}
with

beneficiaries as (
    select * from {{ ref('IR_BEN_R') }}
),

causes as (
    select * from {{ ref('KI_CCI_R') }}
),

persons_by_idt as (
    select
        BEN_IDT_ANO,
        min(BEN_NIR_PSA) as person_id
    from beneficiaries
    where BEN_IDT_ANO is not null
    group by BEN_IDT_ANO
),

referential_deaths as (
    select
        cast('BEN' as varchar(8)) as source,
        cast('IR_BEN_R' as varchar(32)) as source_table,
        cast({{ text_key(['BEN_NIR_PSA', 'cast(BEN_RNG_GEM as varchar(40))']) }} as varchar(200)) as source_key,
        BEN_NIR_PSA as person_id,
        BEN_DCD_DTE as death_date,
        cast(null as varchar(5)) as icd10_code,
        cast(case
            when BEN_DCD_DTE is null or BEN_DCD_DTE = date '1600-01-01' then 'no_death_date'
            when BEN_NIR_PSA is null then 'missing_person'
        end as varchar(32)) as cleaning_rule
    from beneficiaries
),

cepidc_deaths as (
    select
        cast('CEPIDC' as varchar(8)) as source,
        cast('KI_CCI_R' as varchar(32)) as source_table,
        cast({{ text_key([
            'causes.BEN_IDT_ANO', 'cast(causes.BEN_IDT_TOP as varchar(40))', 'causes.FLX_PER_ANN'
        ]) }} as varchar(200)) as source_key,
        persons_by_idt.person_id,
        causes.BEN_DCD_DTE as death_date,
        cast(upper(replace(trim(causes.DCD_CIM_COD), '.', '')) as varchar(5)) as icd10_code,
        cast(case
            when persons_by_idt.person_id is null then 'no_beneficiary'
            when causes.BEN_DCD_DTE is null then 'missing_date'
        end as varchar(32)) as cleaning_rule
    from causes
    left join persons_by_idt on causes.BEN_IDT_ANO = persons_by_idt.BEN_IDT_ANO
),

final as (
    select * from referential_deaths
    union all
    select * from cepidc_deaths
)

select * from final
