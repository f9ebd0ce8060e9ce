{#-
    One row per person pseudonym: every person of the beneficiary referential (IR_BEN_R) and every person of an event
    (a PMSI patient may be absent from IR_BEN_R; their attributes are then null).
-#}
with

beneficiaries as (
    select * from {{ ref('int_beneficiaries_deduplicated') }}
),

events as (
    select * from {{ ref('events') }}
),

observed as (
    select
        person_id,
        min(start_date) as first_observed,
        {#- an ALD's end is a planned date (often far ahead): its start is what was observed -#}
        max(case when domain = 'ald' then start_date else end_date end) as last_observed,
        min(case when domain = 'death' then start_date end) as death_date
    from events
    group by person_id
),

person_ids as (
    select distinct listed.person_id
    from (
        select person_id from beneficiaries
        union all
        select person_id from observed
    ) listed
),

final as (
    select
        cast(person_ids.person_id as varchar(17)) as person_id,
        cast(beneficiaries.sex as numeric(1)) as sex,
        cast(beneficiaries.birth_year as integer) as birth_year,
        cast(beneficiaries.birth_month as integer) as birth_month,
        cast(observed.death_date as date) as death_date,
        cast(beneficiaries.residence_department as varchar(3)) as residence_department,
        cast(observed.first_observed as date) as first_observed,
        cast(observed.last_observed as date) as last_observed
    from person_ids
    left join beneficiaries on person_ids.person_id = beneficiaries.person_id
    left join observed on person_ids.person_id = observed.person_id
)

select * from final
