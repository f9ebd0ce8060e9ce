{#-
    Every hospital stay of every PMSI year the base holds (the yearly tables, from the catalog), with its patient:
    MCO stays are the B table's rows (one per RSA) with their C row (ETA_NUM + RSA_NUM); SSR, HAD and RIM-P stays are
    their C table's rows (one per stay; their B tables hold one row per week or sequence). `cleaning_rule` names the
    first rule that removes the stay (null: kept); the rules are counted in the `cleaning_rules` mart.
-#}
{%- set fields = [
    {'field': 'MCO', 'base': 'T_MCOaaB', 'link': 'T_MCOaaC', 'keys': ['ETA_NUM', 'RSA_NUM'], 'ghm': 'GRG_GHM'},
    {'field': 'SSR', 'base': 'T_SSRaaC', 'link': none, 'keys': ['ETA_NUM', 'RHA_NUM'], 'ghm': none},
    {'field': 'HAD', 'base': 'T_HADaaC', 'link': none, 'keys': ['ETA_NUM_EPMSI', 'RHAD_NUM'], 'ghm': none},
    {'field': 'RIP', 'base': 'T_RIPaaC', 'link': none, 'keys': ['ETA_NUM_EPMSI', 'RIP_NUM'], 'ghm': none},
] -%}
{%- set quality_codes = ['NIR_RET', 'NAI_RET', 'SEX_RET', 'SEJ_RET', 'FHO_RET', 'PMS_RET', 'DAT_RET'] -%}
{%- set placeholders = [] -%}
{%- for value in var('snds_person_placeholders') -%}
{%- do placeholders.append("'" ~ value ~ "'") -%}
{%- endfor -%}

{#- Each yearly table's expressions, worked out before the SQL that uses them. -#}
{%- set parts = [] -%}
{%- for spec in fields -%}
{%- set links = {} -%}
{%- for link in (snds_table_history(spec.link) if spec.link else []) -%}
{%- do links.update({link.year: link}) -%}
{%- endfor -%}
{%- for base in snds_table_history(spec.base) -%}
{%- set link = links.get(base.year) if spec.link else base -%}
{%- set alias = 'link' if spec.link else 'base' -%}
{%- if not link -%}
{{ exceptions.raise_compiler_error(base.table ~ ': no ' ~ spec.link ~ ' table of the same year to join') }}
{%- endif -%}
{%- set person = snds_history_column(link, 'NIR_ANO_17', alias) -%}
{%- set failed = [] -%}
{%- for code in quality_codes if code in link.columns -%}
{%- do failed.append('coalesce(' ~ alias ~ '.' ~ code ~ ", 'x') <> '0'") -%}
{%- endfor -%}
{%- set rules = [] -%}
{%- if spec.link -%}
{%- do rules.append('when link.' ~ spec['keys'][0] ~ " is null then 'no_patient_link'") -%}
{%- endif -%}
{%- if failed -%}
{%- do rules.append('when ' ~ failed | join('\n                or ') ~ " then 'quality_codes'") -%}
{%- endif -%}
{%- do rules.append('when ' ~ person ~ ' in (' ~ placeholders | join(', ') ~ ") then 'placeholder_person'") -%}
{%- do rules.append('when ' ~ person ~ " is null then 'missing_person'") -%}
{%- set ghm = snds_history_column(base, spec.ghm, 'base') if spec.ghm else 'null' -%}
{%- if spec.ghm -%}
{%- do rules.append('when ' ~ ghm ~ " like '90%' then 'error_ghm'") -%}
{%- endif -%}
{%- set on = [] -%}
{%- for key in spec['keys'] -%}
{%- do on.append('base.' ~ key ~ ' = link.' ~ key) -%}
{%- endfor -%}
{%- set join_link = '\n    left join ' ~ ref(link.table) ~ ' link\n        on ' ~ on | join('\n            and ') -%}
{%- do parts.append({
    'cte': (base.table | lower) ~ '_stays',
    'field': spec.field,
    'year': base.year,
    'table': base.table,
    'relation': ref(base.table),
    'join': join_link if spec.link else '',
    'key': snds_history_key(base, spec['keys'], 'base'),
    'eta_num': snds_history_column(base, spec['keys'][0], 'base'),
    'stay_number': snds_history_column(base, spec['keys'][1], 'base'),
    'person': person,
    'start': snds_history_column(link, 'EXE_SOI_DTD', alias),
    'start_text': parse_date_ddmmyyyy(snds_history_column(link, 'ENT_DAT', alias)),
    'end': snds_history_column(link, 'EXE_SOI_DTF', alias),
    'end_text': parse_date_ddmmyyyy(snds_history_column(link, 'SOR_DAT', alias)),
    'rules': rules | join('\n            '),
    'ghm': ghm,
}) -%}
{%- endfor -%}
{%- endfor %}

with

{% for part in parts %}
{{ part.cte }} as (
    select
        cast('{{ part.field }}' as varchar(8)) as field,
        cast({{ part.year }} as integer) as pmsi_year,
        cast('{{ part.table }}' as varchar(32)) as source_table,
        cast({{ part.key }} as varchar(200)) as source_key,
        cast({{ part.eta_num }} as varchar(9)) as eta_num,
        cast({{ part.stay_number }} as varchar(10)) as stay_number,
        cast({{ part.person }} as varchar(17)) as person_id,
        coalesce(cast({{ part.start }} as date), {{ part.start_text }}) as start_date,
        coalesce(cast({{ part.end }} as date), {{ part.end_text }}) as end_date,
        case
            {{ part.rules }}
        end as rule_before_dates,
        cast({{ part.ghm }} as varchar(6)) as ghm
    from {{ part.relation }} base {{ part.join }}
),

{% endfor -%}
unioned as (
    {%- set selects = [] %}
    {%- for part in parts %}
    {%- do selects.append('select * from ' ~ part.cte) %}
    {%- endfor %}
    {{ selects | join('\n    union all\n    ') }}
),

final as (
    select
        field,
        pmsi_year,
        source_table,
        source_key,
        eta_num,
        stay_number,
        person_id,
        start_date,
        coalesce(end_date, start_date) as end_date,
        ghm,
        cast(coalesce(
            rule_before_dates,
            case when start_date is null then 'missing_date' end
        ) as varchar(32)) as cleaning_rule
    from unioned
)

select * from final
