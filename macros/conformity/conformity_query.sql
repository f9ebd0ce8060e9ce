{#
    The row-level checks of one table for one delivery, compiled into ONE query over the table (one scan: at
    100 TB each extra query is another full scan). Returns one row: rows_checked, then c0, c1 ... the number
    of rows failing each check, in the order given. `checks` comes from `snds.conformity.checks` (the catalog):
    kinds not_null, key_not_null, key_unique, length, code_list, pseudonym_format, unknown_date,
    negative_amount. Thresholds and severities are applied to the counts afterwards, from data.
#}
{% macro conformity_query(table_name, delivery_id, checks) -%}
{%- set code_lists = [] -%}
{%- for check in checks if check.kind == 'code_list' -%}
{%- set code_list = check.code_table ~ '.' ~ check.code_column -%}
{%- if code_list not in code_lists -%}{%- do code_lists.append(code_list) -%}{%- endif -%}
{%- endfor -%}
{%- set key_checks = checks | selectattr('kind', 'equalto', 'key_unique') | list -%}
with delivered as (
    select *
    from {{ source('landing', table_name) }}
    where DELIVERY_ID = '{{ delivery_id }}'
),
{% for code_list in code_lists %}
code_list_{{ loop.index0 }} as (
    select distinct cast({{ code_list.split('.')[1] }} as varchar(4000)) as code
    from {{ source('landing', code_list.split('.')[0]) }}
),
{% endfor %}
keyed as (
    select
        delivered.*{% if key_checks %},
        count(*) over (partition by {{ key_checks[0].columns | join(', ') }}) as key_rows
{%- endif %}
    from delivered
),

measured as (
    select
        count(*) as rows_checked
{%- for check in checks %},
        {{ conformity_count(check, loop.index0) }} as c{{ loop.index0 }}
{%- endfor %}
    from keyed
{%- for check in checks if check.kind == 'code_list' %}
    left join code_list_{{ code_lists.index(check.code_table ~ '.' ~ check.code_column) }} codes_{{ checks.index(check) }}
        on cast(keyed.{{ check.column }} as varchar(4000)) = codes_{{ checks.index(check) }}.code
{%- endfor %}
)

select * from measured
{%- endmacro %}

{# The number of rows of `keyed` that fail one check (the n-th of the list). #}
{% macro conformity_count(check, n) -%}
{%- set column = 'keyed.' ~ check.column -%}
{%- if check.kind == 'not_null' -%}
count(*) - count({{ column }})
{%- elif check.kind == 'key_not_null' -%}
sum(case when {% for key in check.columns %}keyed.{{ key }} is null{% if not loop.last %} or {% endif %}{% endfor %} then 1 else 0 end)
{%- elif check.kind == 'key_unique' -%}
sum(case when keyed.key_rows > 1 then 1 else 0 end)
{%- elif check.kind == 'length' -%}
sum(case when length({{ column }}) > {{ check.max }} then 1 else 0 end)
{%- elif check.kind == 'code_list' -%}
sum(case when {{ column }} is not null and codes_{{ n }}.code is null then 1 else 0 end)
{%- elif check.kind == 'pseudonym_format' -%}
sum(case when length({{ column }}) <> {{ check.length }} then 1 else 0 end)
{%- elif check.kind == 'unknown_date' -%}
sum(case when {{ column }} = date '{{ check.date }}' then 1 else 0 end)
{%- elif check.kind == 'negative_amount' -%}
sum(case when {{ column }} < 0 then 1 else 0 end)
{%- else -%}
{{ exceptions.raise_compiler_error("conformity_query: unknown check kind " ~ check.kind) }}
{%- endif -%}
{%- endmacro %}
