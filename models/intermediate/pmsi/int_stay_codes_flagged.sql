{#-
    Every diagnosis and medical act the PMSI records for a stay, of every year the base holds. Diagnoses (ICD-10):
    MCO principal (B DGN_PAL), related (B DGN_REL), associated (D ASS_DGN) and the medical units' (UM DGN_PAL as
    unit_principal, DGN_REL as unit_related); SSR principal morbidity (B MOR_PRP, as principal), aetiology (B ETL_AFF,
    as related) and associated (D DGN_COD); HAD principal (B DGN_PAL) and associated (D DGN_ASS); RIM-P principal
    (RSA DGN_PAL) and associated (RSAD ASS_DGN). Acts (CCAM): MCO A CDC_ACT, SSR A CDC_ACT and CCAM CCAM_ACT, HAD A
    CCAM_COD. A code takes its stay's person and dates from `int_stays_flagged`. `cleaning_rule`: `stay_removed`
    when its stay is not kept, `missing_code` when empty, `repeated_code` for a code that an SSR, HAD or RIM-P week or
    sequence row repeats for the same stay (and position).
-#}
{%- set sources = [
    {'field': 'MCO', 'template': 'T_MCOaaB', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'DGN_PAL', 'qualifier': 'principal'},
    {'field': 'MCO', 'template': 'T_MCOaaB', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'DGN_REL', 'qualifier': 'related'},
    {'field': 'MCO', 'template': 'T_MCOaaD', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'ASS_DGN',
        'qualifier': 'associated', 'line': 'DGN_ASS_NUM'},
    {'field': 'MCO', 'template': 'T_MCOaaUM', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'DGN_PAL',
        'qualifier': 'unit_principal', 'line': 'UM_ORD_NUM'},
    {'field': 'MCO', 'template': 'T_MCOaaUM', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'DGN_REL',
        'qualifier': 'unit_related', 'line': 'UM_ORD_NUM'},
    {'field': 'SSR', 'template': 'T_SSRaaB', 'keys': ['ETA_NUM', 'RHA_NUM'], 'code': 'MOR_PRP',
        'qualifier': 'principal', 'line': 'RHS_NUM'},
    {'field': 'SSR', 'template': 'T_SSRaaB', 'keys': ['ETA_NUM', 'RHA_NUM'], 'code': 'ETL_AFF',
        'qualifier': 'related', 'line': 'RHS_NUM'},
    {'field': 'SSR', 'template': 'T_SSRaaD', 'keys': ['ETA_NUM', 'RHA_NUM'], 'code': 'DGN_COD',
        'qualifier': 'associated', 'line': 'RHS_NUM'},
    {'field': 'HAD', 'template': 'T_HADaaB', 'keys': ['ETA_NUM_EPMSI', 'RHAD_NUM'], 'code': 'DGN_PAL',
        'qualifier': 'principal', 'line': 'SEQ_NUM'},
    {'field': 'HAD', 'template': 'T_HADaaD', 'keys': ['ETA_NUM_EPMSI', 'RHAD_NUM'], 'code': 'DGN_ASS',
        'qualifier': 'associated', 'line': 'SEQ_NUM'},
    {'field': 'RIP', 'template': 'T_RIPaaRSA', 'keys': ['ETA_NUM_EPMSI', 'RIP_NUM'], 'code': 'DGN_PAL',
        'qualifier': 'principal', 'line': 'SEQ_SEQ_NUM'},
    {'field': 'RIP', 'template': 'T_RIPaaRSAD', 'keys': ['ETA_NUM_EPMSI', 'RIP_NUM'], 'code': 'ASS_DGN',
        'qualifier': 'associated', 'line': 'SEQ_SEQ_NUM'},
    {'field': 'MCO', 'template': 'T_MCOaaA', 'keys': ['ETA_NUM', 'RSA_NUM'], 'code': 'CDC_ACT',
        'domain': 'act', 'line': 'ENT_DAT_DEL'},
    {'field': 'SSR', 'template': 'T_SSRaaA', 'keys': ['ETA_NUM', 'RHA_NUM'], 'code': 'CDC_ACT',
        'domain': 'act', 'line': 'RHS_NUM'},
    {'field': 'SSR', 'template': 'T_SSRaaCCAM', 'keys': ['ETA_NUM', 'RHA_NUM'], 'code': 'CCAM_ACT',
        'domain': 'act', 'line': 'RHS_NUM'},
    {'field': 'HAD', 'template': 'T_HADaaA', 'keys': ['ETA_NUM_EPMSI', 'RHAD_NUM'], 'code': 'CCAM_COD',
        'domain': 'act', 'line': 'SEQ_NUM'},
] -%}

with

stays as (
    select * from {{ ref('int_stays_flagged') }}
),

{% for spec in sources %}
{%- set outer = loop %}
{%- for part in snds_table_history(spec.template) if spec.code in part.columns %}
{{ part.table | lower }}_{{ outer.index }} as (
    select
        cast('{{ spec.field }}' as varchar(8)) as field,
        cast({{ part.year }} as integer) as pmsi_year,
        cast('{{ part.table }}' as varchar(32)) as source_table,
        {%- set key = spec['keys'] + ([spec.line] if spec.get('line') else []) %}
        cast({{ snds_history_key(part, key, 'coded') }} as varchar(200)) as source_key,
        cast({{ snds_history_column(part, spec['keys'][0], 'coded') }} as varchar(9)) as eta_num,
        cast({{ snds_history_column(part, spec['keys'][1], 'coded') }} as varchar(10)) as stay_number,
        {%- if spec.get('domain') == 'act' %}
        cast('act' as varchar(16)) as domain,
        cast('ccam' as varchar(8)) as code_system,
        cast(null as varchar(16)) as qualifier,
        {%- else %}
        cast('diagnosis' as varchar(16)) as domain,
        cast('icd10' as varchar(8)) as code_system,
        cast('{{ spec.qualifier }}' as varchar(16)) as qualifier,
        {%- endif %}
        cast(coded.{{ spec.code }} as varchar(13)) as code
    from {{ ref(part.table) }} coded
),

{% endfor -%}
{%- endfor %}
unioned as (
    {%- set selects = [] %}
    {%- for spec in sources %}
    {%- set outer = loop %}
    {%- for part in snds_table_history(spec.template) if spec.code in part.columns %}
    {%- do selects.append('select * from ' ~ (part.table | lower) ~ '_' ~ outer.index) %}
    {%- endfor %}
    {%- endfor %}
    {{ selects | join('\n    union all\n    ') }}
),

numbered as (
    select
        unioned.*,
        {#- SSR, HAD and RIM-P rows are weeks or sequences that repeat a stay's codes: the first is kept. -#}
        row_number() over (
            partition by
                unioned.field,
                unioned.pmsi_year,
                unioned.eta_num,
                unioned.stay_number,
                unioned.domain,
                unioned.qualifier,
                unioned.code
            order by unioned.source_key
        ) as occurrence
    from unioned
),

final as (
    select
        stay_codes.field,
        stay_codes.source_table,
        stay_codes.source_key,
        stays.person_id,
        stays.start_date,
        stays.end_date,
        stay_codes.domain,
        stay_codes.code_system,
        stay_codes.qualifier,
        {#- codes without the dot some sources write in ICD-10 codes, in upper case -#}
        cast(upper(replace(trim(stay_codes.code), '.', '')) as varchar(13)) as code,
        cast(case
            when stays.person_id is null or stays.cleaning_rule is not null then 'stay_removed'
            when stay_codes.code is null or trim(stay_codes.code) = '' then 'missing_code'
            when stay_codes.field <> 'MCO' and stay_codes.occurrence > 1 then 'repeated_code'
        end as varchar(32)) as cleaning_rule
    from numbered stay_codes
    left join stays
        on
            stay_codes.field = stays.field
            and stay_codes.pmsi_year = stays.pmsi_year
            and stay_codes.eta_num = stays.eta_num
            and stay_codes.stay_number = stays.stay_number
)

select * from final
