{#
    A potential identifier as a project may see it when its authorisation does not name that kind: the
    generalisation the catalog gives the column (care and death dates to the month, birth dates to the year,
    postal codes to the department, finer codes suppressed). Columns that are not potential identifiers, and
    those of the kind the project may see (`keep_kind`: birth, residence, death or care_date), pass unchanged.
    A direct identifier is an error: it must be replaced by a project pseudonym, never generalised.
#}
{% macro generalise(table_name, column_name, expression=none, keep_kind=none) -%}
{%- set tables = snds_potential_identifiers() -%}
{%- if table_name not in tables -%}
{{ exceptions.raise_compiler_error("generalise: " ~ table_name ~ " is not a table of the SNDS catalog") }}
{%- endif -%}
{%- set entry = tables[table_name] -%}
{%- set value = expression or column_name -%}
{%- if column_name | upper in entry['direct'] -%}
{%- set message = " is a direct identifier: replace it with project_pseudonyms, never generalise it" -%}
{{ exceptions.raise_compiler_error(table_name ~ "." ~ column_name ~ message) }}
{%- endif -%}
{%- set potential = entry['potential'].get(column_name | upper) -%}
{%- if potential is none or potential[0] == keep_kind -%}
{{ value }}
{%- else -%}
{{ generalised_value(value, potential[1], potential[2], potential[3]) }}
{%- endif -%}
{%- endmacro %}

{#
    `generalisation` applied to a value of type `data_type` written in `format` (the dictionary's, for dates kept
    as text). Anything this macro cannot generalise safely is suppressed.
#}
{% macro generalised_value(value, generalisation, data_type, format) -%}
{%- set is_date = data_type in ('date', 'timestamp') -%}
{%- if generalisation == 'keep' -%}
{{ value }}
{%- elif generalisation in ('month', 'year') and is_date -%}
cast({{ truncate_date(value, generalisation) }} as {{ data_type }})
{%- elif generalisation in ('month', 'year') and format == '%d%m%Y' -%}
case when {{ value }} is not null then '{{ '01' if generalisation == 'month' else '0101' }}' || substr({{ value }}, {{ 3 if generalisation == 'month' else 5 }}) end
{%- elif generalisation == 'year' and data_type == 'varchar(6)' -%}
{# year and month written YYYYMM #}
cast(substr({{ value }}, 1, 4) as {{ data_type }})
{%- elif generalisation == 'department' -%}
{# a postal code: overseas departments and territories (97x, 98x) have three digits #}
cast(case when substr({{ value }}, 1, 2) in ('97', '98') then substr({{ value }}, 1, 3) else substr({{ value }}, 1, 2) end as {{ data_type }})
{%- else -%}
cast(null as {{ data_type }})
{%- endif -%}
{%- endmacro %}
