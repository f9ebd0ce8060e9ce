{#
    Linkage of an external cohort to the base (appariement), for the models `snds project build` writes from a
    project's `linkage` (docs/linkage.md). Both sides carry one text column per criterion, named after it (`sex`,
    `birth_year` ...), null where unknown; `criteria` is their list in the definition's order. The cascade's passes
    compare a key made of the criteria a plan row keeps (`use_<criterion>` = 1): plain equality joins, on every
    engine, whatever the plan measured on the data.
#}

{#
    The match key of row `alias` under the plan row `flags`: the kept criteria's values joined by '|', or null when
    one of them is null (an unknown value matches nothing). `dropped`, an SQL expression, names the position
    (1-based, in `criteria`) of one more criterion left out.
#}
{% macro linkage_key(alias, flags, criteria, dropped=none) -%}
case when
{%- for criterion in criteria %}
    ({{ flags }}.use_{{ criterion }} = 0
{%- if dropped is not none %} or {{ dropped }} = {{ loop.index }}{% endif %}
    or {{ alias }}.{{ criterion }} is not null){% if not loop.last %} and{% endif %}
{%- endfor %}
then
{%- for criterion in criteria %}
    case when {{ flags }}.use_{{ criterion }} = 1
{%- if dropped is not none %} and {{ dropped }} <> {{ loop.index }}{% endif %}
    then {{ alias }}.{{ criterion }} else '' end{% if not loop.last %} || '|' ||{% endif %}
{%- endfor %}
end
{%- endmacro %}

{#
    The cascade's plan: one row per pass (`pass_number` 1 to `passes`) with the criteria it compares. Pass 1 compares
    them all; each next pass leaves out the criterion whose absence costs least, measured on `base`: the one whose
    removal leaves the most persons with a key (every criterion kept known) that no other person has: the persons a
    pass could match. Removals within `tie_share` of the base's persons of the best one are ties (a small base has
    unique keys under almost any criteria): among them, the criterion known for the fewest persons goes (a stay's
    criteria, unknown for most persons, before a person's), then the one listed first.
    `unique_persons` counts those persons for the pass's own key, `persons` the base's.
#}
{% macro linkage_plan(base, criteria, passes, tie_share=0.005) -%}
with

base as (
    select * from {{ base }}
),

totals as (
    select count(distinct person_id) as persons from base
),

positions as (
    select 0 as position, 0 as known_persons from totals
{%- for criterion in criteria %}
    union all
    select {{ loop.index }}, count(distinct case when {{ criterion }} is not null then person_id end) from base
{%- endfor %}
),

step_0 as (
    select
        0 as step,
        0 as dropped,
{%- for criterion in criteria %}
        1 as use_{{ criterion }},
{%- endfor %}
        totals.persons
    from totals
),
{%- for step in range(passes) %}

{#- step n leaves one criterion out of step n-1; step 0's trial (position 0) leaves none out and measures pass 1 #}
{%- set previous = 'step_' ~ (step - 1 if step > 0 else 0) %}
tried_{{ step }} as (
    select
        positions.position,
        positions.known_persons
    from positions
    cross join {{ previous }} kept
    where
{%- if step == 0 %}
        positions.position = 0
    {%- else %}
        case positions.position
{%- for criterion in criteria %}
            when {{ loop.index }} then kept.use_{{ criterion }}
{%- endfor %}
            else 0
        end = 1
{%- endif %}
),

trial_{{ step }} as (
    select
        tried.position,
        base.person_id,
        {{ linkage_key('base', 'kept', criteria, 'tried.position') | indent(8) }} as match_key
    from base
    cross join {{ previous }} kept
    cross join tried_{{ step }} tried
),

unique_keys_{{ step }} as (
    select
        position,
        match_key
    from trial_{{ step }}
    where match_key is not null
    group by position, match_key
    having count(distinct person_id) = 1
),

shares_{{ step }} as (
    select
        trial.position,
        count(distinct trial.person_id) as unique_persons
    from trial_{{ step }} trial
    inner join unique_keys_{{ step }} unique_keys
        on trial.position = unique_keys.position and trial.match_key = unique_keys.match_key
    group by trial.position
),

measured_{{ step }} as (
    select
        tried.position,
        coalesce(shares.unique_persons, 0) as unique_persons,
        tried.known_persons
    from tried_{{ step }} tried
    left join shares_{{ step }} shares on tried.position = shares.position
),

best_{{ step }} as (
    select max(unique_persons) as unique_persons
    from measured_{{ step }}
),

tied_{{ step }} as (
    select measured.*
    from measured_{{ step }} measured
    cross join best_{{ step }} best
    cross join totals
    where measured.unique_persons >= best.unique_persons - totals.persons * {{ tie_share }}
),

least_known_{{ step }} as (
    select min(known_persons) as known_persons
    from tied_{{ step }}
),

chosen_{{ step }} as (
    select
        tied.position,
        tied.unique_persons
    from tied_{{ step }} tied
    inner join least_known_{{ step }} least_known on tied.known_persons = least_known.known_persons
    where tied.position = (
        select min(other.position)
        from tied_{{ step }} other
        inner join least_known_{{ step }} least_known on other.known_persons = least_known.known_persons
    )
),
{%- if step > 0 %}

step_{{ step }} as (
    select
        {{ step }} as step,
        chosen.position as dropped,
{%- for criterion in criteria %}
        case when chosen.position = {{ loop.index }} then 0 else kept.use_{{ criterion }} end as use_{{ criterion }},
{%- endfor %}
        kept.persons
    from step_{{ step - 1 }} kept
    cross join chosen_{{ step }} chosen
),
{%- endif %}
{%- endfor %}

steps as (
{%- for step in range(passes) %}
    select
        step_{{ step }}.*,
        chosen_{{ step }}.unique_persons
    from step_{{ step }}
    cross join chosen_{{ step }}
{%- if not loop.last %}
    union all
{%- endif %}
{%- endfor %}
),

final as (
    select
        cast(step + 1 as numeric(3)) as pass_number,
{%- for criterion in criteria %}
        cast(use_{{ criterion }} as numeric(1)) as use_{{ criterion }},
{%- endfor %}
        cast(trim(
{%- for criterion in criteria %}
            case when use_{{ criterion }} = 1 then ' {{ criterion }}' else '' end{% if not loop.last %} ||{% endif %}
{%- endfor %}
        ) as varchar(200)) as criteria,
        cast(case when dropped = 0 then null
{%- for criterion in criteria %}
            when dropped = {{ loop.index }} then '{{ criterion }}'
{%- endfor %}
        end as varchar(20)) as left_out,
        cast(unique_persons as numeric(19)) as unique_persons,
        cast(persons as numeric(19)) as persons
    from steps
)

select * from final
{%- endmacro %}

{#
    One pass of the cascade: each subject still unmatched (`earlier`: the relations of the passes before), against the
    persons still unmatched, on the key of plan row `pass_number`. A subject whose key meets exactly one person, a
    person no other subject's key meets, is matched; one whose key meets several persons, or a person another
    subject also meets, is ambiguous (excluded here, tried again by the next pass); the others are unmatched.
    One row per subject considered.
#}
{% macro linkage_pass(subjects, base, plan, pass_number, earlier, criteria) -%}
with

plan as (
    select * from {{ plan }}
    where pass_number = {{ pass_number }}
),
{%- if earlier %}

earlier as (
{%- for relation in earlier %}
    select subject_id, person_id from {{ relation }} where outcome = 'matched'
{%- if not loop.last %}
    union all
{%- endif %}
{%- endfor %}
),
{%- endif %}

subjects as (
    {{ linkage_keyed(subjects, 'subject_id', criteria, earlier) }}
),

persons as (
    {{ linkage_keyed(base, 'person_id', criteria, earlier) }}
),

pairs as (
    select distinct
        subjects.subject_id,
        persons.person_id
    from subjects
    inner join persons on subjects.match_key = persons.match_key
),

{{ linkage_outcomes(pass_number) }}
{%- endmacro %}

{#
    One side of a pass (`id_column`: subject_id or person_id) keyed under the CTE `plan`, without those the CTE
    `earlier` matched.
#}
{% macro linkage_keyed(relation, id_column, criteria, earlier) -%}
select distinct
        side.{{ id_column }},
        {{ linkage_key('side', 'plan', criteria) | indent(8) }} as match_key
    from {{ relation }} side
    cross join plan
{%- if earlier %}
    where side.{{ id_column }} not in (select earlier.{{ id_column }} from earlier)
{%- endif %}
{%- endmacro %}

{#
    The end of a pass, from the CTEs `subjects` (subject_id, one row or more per subject considered) and `pairs`
    (subject_id, person_id: the candidate matches): one row per subject with its outcome.
#}
{% macro linkage_outcomes(pass_number) -%}
per_subject as (
    select
        subject_id,
        count(*) as candidates
    from pairs
    group by subject_id
),

per_person as (
    select
        person_id,
        count(*) as claimants
    from pairs
    group by person_id
),

considered as (
    select distinct subject_id from subjects
),

final as (
    select
        cast({{ pass_number }} as numeric(3)) as pass_number,
        cast(considered.subject_id as varchar(64)) as subject_id,
        cast(case when per_person.claimants = 1 then pairs.person_id end as varchar(17)) as person_id,
        cast(case
            when per_subject.candidates is null then 'unmatched'
            when per_person.claimants = 1 then 'matched'
            else 'ambiguous'
        end as varchar(9)) as outcome,
        cast(coalesce(per_subject.candidates, 0) as numeric(19)) as candidates
    from considered
    left join per_subject on considered.subject_id = per_subject.subject_id
    left join pairs on per_subject.candidates = 1 and considered.subject_id = pairs.subject_id
    left join per_person on pairs.person_id = per_person.person_id
)

select * from final
{%- endmacro %}
