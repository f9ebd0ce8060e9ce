{#
    First day of the month or year of a date or timestamp (`part`: 'month' or 'year').
#}
{% macro truncate_date(value, part) -%}
{%- if part not in ('month', 'year') -%}
{{ exceptions.raise_compiler_error("truncate_date: part must be 'month' or 'year', not " ~ part) }}
{%- endif -%}
{{ return(adapter.dispatch('truncate_date', 'snds')(value, part)) }}
{%- endmacro %}

{% macro default__truncate_date(value, part) -%}
date_trunc('{{ part }}', {{ value }})
{%- endmacro %}

{% macro oracle__truncate_date(value, part) -%}
trunc({{ value }}, '{{ 'MM' if part == 'month' else 'YYYY' }}')
{%- endmacro %}

{#- PostgreSQL's date_trunc gives a timestamp (with time zone, for a date): cast back to a date, as Oracle's TRUNC. -#}
{% macro postgres__truncate_date(value, part) -%}
cast(date_trunc('{{ part }}', {{ value }}) as date)
{%- endmacro %}
