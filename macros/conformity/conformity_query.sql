{#
    The row-level checks of one table for one delivery, compiled into ONE query over the table (one scan: at
    100 TB each extra query is another full scan). Returns one row (or one per month of `month_column`) whose
    columns are read by name: rows_checked, then the number of rows failing each check under the check's
    `alias` (given by snds.conformity.validate.check_aliases; c0, c1 ... in order when absent), then volume_month.
    `checks` comes from `snds.conformity.checks` (the catalog and seeds/conformity); thresholds and severities
    are applied to the counts afterwards, from data. Code lists and link parents are read as key sets.
#}
{% macro conformity_query(table_name, delivery_id, checks, month_column='') -%}
{{ conformity_inputs(table_name, delivery_id, checks, month_column) }}

measured as (
    select
        count(*) as rows_checked
{%- for check in checks %},
        sum(case when {{ conformity_failure(check, loop.index0) }} then 1 else 0 end)
        as {{ check.get('alias') or 'c' ~ loop.index0 }}
{%- endfor %}
{%- if month_column %},
        keyed.volume_month as volume_month
{%- endif %}
    from keyed
{{- conformity_joins(checks) }}
{%- if month_column %}
    group by keyed.volume_month
{%- endif %}
)

select * from measured
{%- endmacro %}

{# Up to `max_rows` rows failing one check: the given columns of the delivered table. #}
{% macro conformity_examples(table_name, delivery_id, check, columns, max_rows) -%}
{{ conformity_inputs(table_name, delivery_id, [check], '') }}

failing as (
    select
{%- for column in columns %}
        keyed.{{ column }}{% if not loop.last %},{% endif %}
{%- endfor %}
    from keyed
{{- conformity_joins([check]) }}
    where {{ conformity_failure(check, 0) }}
)

select * from failing
{{ first_rows(max_rows) }}
{%- endmacro %}

{# The distinct code lists (`TABLE.COLUMN`) the code_list checks compare with, in order: one CTE each. #}
{% macro conformity_code_lists(checks) -%}
{%- set code_lists = [] -%}
{%- for check in checks if check.kind == 'code_list' -%}
{%- set code_list = check.code_table ~ '.' ~ check.code_column -%}
{%- if code_list not in code_lists -%}{%- do code_lists.append(code_list) -%}{%- endif -%}
{%- endfor -%}
{{ return(code_lists) }}
{%- endmacro %}

{# The common table expressions up to `keyed`: the delivery's rows, the code lists and link parents. #}
{% macro conformity_inputs(table_name, delivery_id, checks, month_column) -%}
{%- set code_lists = conformity_code_lists(checks) -%}
{%- set key_checks = checks | selectattr('kind', 'equalto', 'key_unique') | list -%}
with delivered as (
    select *
    from {{ source('landing', table_name) }}
    where DELIVERY_ID = {{ conformity_delivery(delivery_id) }}
),
{% for code_list in code_lists %}
code_list_{{ loop.index0 }} as (
    select distinct cast({{ code_list.split('.')[1] }} as varchar(4000)) as code
    from {{ source('landing', code_list.split('.')[0]) }}
    where {{ conformity_usable_rows(delivery_id) }}
),
{% endfor %}
{%- for check in checks if check.kind == 'foreign_key' %}
{%- set keys = [] %}
{%- for column in check.parent_columns %}
{%- do keys.append(conformity_key(column, check.as_text) ~ ' as k' ~ loop.index0) %}
{%- endfor %}
parent_{{ checks.index(check) }} as (
    select distinct {{ keys | join(', ') }}
    from {{ source('landing', check.parent) }}
    where {{ conformity_usable_rows(delivery_id) }}
),
{% endfor %}
keyed as (
    select
        delivered.*{% if key_checks %},
        count(*) over (partition by {{ key_checks[0].columns | join(', ') }}) as key_rows
{%- endif %}
{%- if month_column %},
        {{ truncate_date('delivered.' ~ month_column, 'month') }} as volume_month
{%- endif %}
    from delivered
),
{%- endmacro %}

{# The left joins of the code lists and link parents that some checks compare with. #}
{% macro conformity_joins(checks) -%}
{%- set code_lists = conformity_code_lists(checks) -%}
{%- for check in checks if check.kind == 'code_list' %}
    left join code_list_{{ code_lists.index(check.code_table ~ '.' ~ check.code_column) }} codes_{{ checks.index(check) }}
        on cast(keyed.{{ check.column }} as varchar(4000)) = codes_{{ checks.index(check) }}.code
{%- endfor %}
{%- for check in checks if check.kind == 'foreign_key' %}
{%- set n = checks.index(check) %}
{%- set conditions = [] %}
{%- for column in check.columns %}
{%- do conditions.append(conformity_key('keyed.' ~ column, check.as_text) ~ ' = parent_' ~ n ~ '.k' ~ loop.index0) %}
{%- endfor %}
    left join parent_{{ n }}
        on {{ conditions | join(' and ') }}
{%- endfor %}
{%- endmacro %}

{# The rows a delivery may be compared with: its own, and those of validated deliveries. #}
{% macro conformity_usable_rows(delivery_id) -%}
(DELIVERY_ID = {{ conformity_delivery(delivery_id) }} or DELIVERY_ID in (
    select DELIVERY_ID from {{ source('landing', 'deliveries') }} where STATUS = 'validated'
))
{%- endmacro %}

{#
    The delivery identifier as a SQL literal, refused unless it matches the strict pattern of
    snds.identifiers.DELIVERY_ID (the caller checks it too): a name cannot end the literal or the statement.
#}
{% macro conformity_delivery(delivery_id) -%}
{%- if not modules.re.fullmatch('[A-Za-z0-9][A-Za-z0-9_-]{0,63}', delivery_id | string) -%}
{{ exceptions.raise_compiler_error("conformity: the delivery identifier is not a checked identifier") }}
{%- endif -%}
'{{ delivery_id }}'
{%- endmacro %}

{# A link column as compared: as is, or as text when child and parent types differ. #}
{% macro conformity_key(column, as_text) -%}
{%- if as_text -%}cast({{ column }} as varchar(4000)){%- else -%}{{ column }}{%- endif -%}
{%- endmacro %}

{# The condition under which a row of `keyed` fails a check (the n-th of the list). #}
{% macro conformity_failure(check, n) -%}
{%- set column = 'keyed.' ~ check.column -%}
{%- set columns = [] -%}
{%- for name in check.columns -%}{%- do columns.append('keyed.' ~ name) -%}{%- endfor -%}
{%- if check.kind == 'not_null' -%}
{{ column }} is null
{%- elif check.kind == 'key_not_null' -%}
{{ columns | join(' is null or ') }} is null
{%- elif check.kind == 'key_unique' -%}
keyed.key_rows > 1
{%- elif check.kind == 'length' -%}
length({{ column }}) > {{ check.max }}
{%- elif check.kind == 'code_list' -%}
{{ column }} is not null and codes_{{ n }}.code is null
{%- elif check.kind == 'pseudonym_format' -%}
length({{ column }}) <> {{ check.length }}
{%- elif check.kind == 'unknown_date' -%}
{{ column }} = date '{{ check.date }}'
{%- elif check.kind in ('negative_amount', 'negative_quantity') -%}
{{ column }} < 0
{%- elif check.kind == 'foreign_key' -%}
{{ columns | join(' is not null and ') }} is not null
{%- if check.ignored %} and {{ columns[0] }} not in ('{{ check.ignored | join("', '") }}'){% endif %}
 and parent_{{ n }}.k0 is null
{%- elif check.kind == 'date_in_year' -%}
{{ column }} <> date '{{ check.sentinel }}'
 and ({{ column }} < date '{{ check['from'] }}' or {{ column }} > date '{{ check.to }}')
{%- elif check.kind == 'start_before_end' -%}
{{ columns[0] }} <> date '{{ check.sentinel }}' and {{ columns[1] }} <> date '{{ check.sentinel }}'
 and {{ columns[1] }} < {{ columns[0] }}
{%- elif check.kind == 'birth_before_event' -%}
length({{ columns[0] }}) = 4 and {{ columns[0] }} <> '{{ check.sentinel[:4] }}'
 and {{ columns[1] }} <> date '{{ check.sentinel }}'
 and {{ columns[0] }} > cast(extract(year from {{ columns[1] }}) as varchar(4))
{%- elif check.kind == 'cleaning_flag' -%}
{{ conformity_flag(column, check) }}
{%- else -%}
{{ exceptions.raise_compiler_error("conformity_query: unknown check kind " ~ check.kind) }}
{%- endif -%}
{%- endmacro %}

{# A cleaning flag's condition; the values are SQL literals already typed for the column. #}
{% macro conformity_flag(column, check) -%}
{%- if check.operator == 'equals' -%}
{{ column }} = {{ check['values'][0] }}
{%- elif check.operator == 'not_equals' -%}
{{ column }} <> {{ check['values'][0] }}
{%- elif check.operator == 'in' -%}
{{ column }} in ({{ check['values'] | join(', ') }})
{%- elif check.operator == 'starts_with' -%}
{{ column }} like '{{ check.prefix }}%'
{%- else -%}
{{ exceptions.raise_compiler_error("conformity_query: unknown flag operator " ~ check.operator) }}
{%- endif -%}
{%- endmacro %}
