{#-
    Every line of the DCIR satellites read by the event layer (ER_PHA_F dispensings, ER_CAM_F CCAM acts, ER_BIO_F
    biology), of every year the base holds (the current tables and their yearly archives, from the catalog), joined
    to its ER_PRS_F line of the same year on the nine DCIR keys. `cleaning_rule` names the first rule that removes the
    line (null: kept); the rules are counted in the `cleaning_rules` mart.
    Incremental (macros/staging/event_increments.sql): a delivery of flow months recomputes the lines of its months
    (`source_period`, the month of FLX_DIS_DTD of a current table); any other delivery it reads, every line.
-#}
{%- set nine_keys = ['FLX_DIS_DTD', 'FLX_TRT_DTD', 'FLX_EMT_TYP', 'FLX_EMT_NUM', 'FLX_EMT_ORD',
    'ORG_CLE_NUM', 'DCT_ORD_NUM', 'PRS_ORD_NUM', 'REM_TYP_AFF'] -%}
{%- set satellites = {
    'ER_PHA_F': {'kind': 'dispensing', 'line': 'PHA_ORD_NUM', 'cip7': 'PHA_PRS_IDE', 'cip13': 'PHA_PRS_C13',
        'quantity': 'PHA_ACT_QSN'},
    'ER_CAM_F': {'kind': 'act', 'line': 'CAM_ORD_NUM', 'ccam': 'CAM_PRS_IDE'},
    'ER_BIO_F': {'kind': 'biology', 'line': 'BIO_ORD_NUM', 'nabm': 'BIO_PRS_IDE'},
} -%}
{%- set claims = {} -%}
{%- for prs in snds_table_history('ER_PRS_F') -%}
{%- do claims.update({prs.year: prs}) -%}
{%- endfor -%}

with

event_pending as (
    {{ event_pending(this.identifier) }}
),

{% for template, spec in satellites.items() %}
{%- for line in snds_table_history(template) %}
{{ line.table | lower }}_lines as (
    {%- set prs = claims.get(line.year) %}
    {%- if not prs %}
    {{ exceptions.raise_compiler_error(line.table ~ ': no ER_PRS_F table of the same year to join') }}
    {%- endif %}
    {%- set on = [] %}
    {%- for key in nine_keys %}
    {%- do on.append('line.' ~ key ~ ' = claim.' ~ key) %}
    {%- endfor %}
    {%- set quantity = snds_history_column(line, spec.quantity, 'line') if spec.get('quantity') else 'null' %}
    {%- set period = event_source_period(line.period_column, 'line') %}
    select
        cast('{{ spec.kind }}' as varchar(16)) as line_kind,
        cast('{{ line.table }}' as varchar(32)) as source_table,
        cast({{ snds_history_key(line, nine_keys + [spec.line], 'line') }} as varchar(200)) as source_key,
        case when claim.FLX_DIS_DTD is not null then 1 else 0 end as has_claim_line,
        cast({{ snds_history_column(prs, 'BEN_NIR_PSA', 'claim') }} as varchar(17)) as person_id,
        cast({{ snds_history_column(prs, 'EXE_SOI_DTD', 'claim') }} as date) as care_date,
        cast({{ snds_history_column(prs, 'DPN_QLF', 'claim') }} as numeric(2)) as information_qualifier,
        {%- for code in ['cip7', 'cip13', 'ccam', 'nabm'] %}
        {%- set value = snds_history_column(line, spec[code], 'line') if spec.get(code) else 'null' %}
        cast({{ value }} as varchar(13)) as {{ code }}_code,
        {%- endfor %}
        cast({{ quantity }} as numeric(9)) as quantity,
        {{ period }} as source_period
    from {{ ref(line.table) }} line
    left join {{ ref(prs.table) }} claim
        on {{ on | join('\n            and ') }}
    where {{ event_rows(period if line.period_column else none) }}
),

{% endfor -%}
{%- endfor %}
unioned as (
    {%- set selects = [] %}
    {%- for template in satellites %}
    {%- for line in snds_table_history(template) %}
    {%- do selects.append('select * from ' ~ (line.table | lower) ~ '_lines') %}
    {%- endfor %}
    {%- endfor %}
    {{ selects | join('\n    union all\n    ') }}
),

final as (
    select
        line_kind,
        source_table,
        source_key,
        person_id,
        care_date,
        cip7_code,
        cip13_code,
        ccam_code,
        nabm_code,
        quantity,
        source_period,
        cast(case
            when has_claim_line = 0 then 'no_claim_line'
            when information_qualifier = 71 then 'information_only_line'
            when person_id is null then 'missing_person'
            when care_date is null then 'missing_date'
        end as varchar(32)) as cleaning_rule
    from unioned
)

select * from final
