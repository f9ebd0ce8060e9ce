{#-
    Every kept event of every person, one row per event and code system: a dispensing is a row per code system it
    is coded in (atc, cip13, cip7), a long-term disease (ALD) a row for its ALD number (ald) and one for its ICD-10
    code (icd10). Point events have end_date = start_date.
    Incremental (macros/staging/event_increments.sql): a delivery of DCIR flow months adds the events of its months
    (`source_period`); any other delivery the layer reads (a PMSI year, an archive, a referential) rebuilds them all.
-#}
with

event_pending as (
    {{ event_pending(this.identifier) }}
),

dispensings as (
    select * from {{ ref('int_dispensings_coded') }}
    where {{ event_rows('source_period') }}
),

claim_lines as (
    select * from {{ ref('int_claim_lines_flagged') }}
    where
        line_kind in ('act', 'biology') and cleaning_rule is null
        and {{ event_rows('source_period') }}
),

stays as (
    select * from {{ ref('int_stays_flagged') }}
    where cleaning_rule is null and {{ event_rows() }}
),

stay_codes as (
    select * from {{ ref('int_stay_codes_flagged') }}
    where cleaning_rule is null and {{ event_rows() }}
),

alds as (
    select * from {{ ref('int_alds_flagged') }}
    where cleaning_rule is null and {{ event_rows() }}
),

deaths as (
    select * from {{ ref('int_deaths_flagged') }}
    where cleaning_rule is null and {{ event_rows() }}
),

{%- set dispensing_codes = [('atc', 'atc_code'), ('cip13', 'cip13_code'), ('cip7', 'cip7_code')] %}

unioned as (
    {%- for code_system, column in dispensing_codes %}
    select
        person_id,
        care_date as start_date,
        care_date as end_date,
        'dispensing' as domain,
        'DCIR' as source,
        '{{ code_system }}' as code_system,
        {{ column }} as code,
        cast(null as varchar(16)) as qualifier,
        source_table,
        source_key,
        quantity,
        source_period
    from dispensings
    where {{ column }} is not null
    union all
    {%- endfor %}
    select
        person_id,
        care_date as start_date,
        care_date as end_date,
        line_kind as domain,
        'DCIR' as source,
        case line_kind when 'act' then 'ccam' else 'nabm' end as code_system,
        coalesce(ccam_code, nabm_code) as code,
        cast(null as varchar(16)) as qualifier,
        source_table,
        source_key,
        cast(null as numeric(9)) as quantity,
        source_period
    from claim_lines
    union all
    select
        person_id,
        start_date,
        end_date,
        'stay' as domain,
        field as source,
        case when ghm is not null then 'ghm' end as code_system,
        ghm as code,
        cast(null as varchar(16)) as qualifier,
        source_table,
        source_key,
        cast(null as numeric(9)) as quantity,
        cast(null as date) as source_period
    from stays
    union all
    select
        person_id,
        start_date,
        end_date,
        domain,
        field as source,
        code_system,
        code,
        qualifier,
        source_table,
        source_key,
        cast(null as numeric(9)) as quantity,
        cast(null as date) as source_period
    from stay_codes
    {%- for code_system, column in [('ald', 'ald_number'), ('icd10', 'icd10_code')] %}
    union all
    select
        person_id,
        start_date,
        end_date,
        'ald' as domain,
        'ALD' as source,
        '{{ code_system }}' as code_system,
        {{ column }} as code,
        cast(null as varchar(16)) as qualifier,
        source_table,
        source_key,
        cast(null as numeric(9)) as quantity,
        cast(null as date) as source_period
    from alds
    where {{ column }} is not null
    {%- endfor %}
    union all
    select
        person_id,
        death_date as start_date,
        death_date as end_date,
        'death' as domain,
        source,
        case when icd10_code is not null then 'icd10' end as code_system,
        icd10_code as code,
        cast(null as varchar(16)) as qualifier,
        source_table,
        source_key,
        cast(null as numeric(9)) as quantity,
        cast(null as date) as source_period
    from deaths
),

final as (
    select
        cast(person_id as varchar(17)) as person_id,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        cast(domain as varchar(16)) as domain,
        cast(source as varchar(8)) as source,
        cast(code_system as varchar(8)) as code_system,
        cast(code as varchar(13)) as code,
        cast(qualifier as varchar(16)) as qualifier,
        cast(source_table as varchar(32)) as source_table,
        cast(source_key as varchar(200)) as source_key,
        cast(quantity as numeric(9)) as quantity,
        cast(source_period as date) as source_period
    from unioned
)

select * from final
