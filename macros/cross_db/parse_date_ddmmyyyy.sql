{#
    A date written as text `DDMMYYYY` (the PMSI's ENT_DAT, SOR_DAT), or null when the text is not such a date.
#}
{% macro parse_date_ddmmyyyy(value) -%}
{{ return(adapter.dispatch('parse_date_ddmmyyyy', 'snds')(value)) }}
{%- endmacro %}

{% macro default__parse_date_ddmmyyyy(value) -%}
to_date(nullif({{ value }}, ''), 'DDMMYYYY')
{%- endmacro %}

{% macro duckdb__parse_date_ddmmyyyy(value) -%}
cast(try_strptime({{ value }}, '%d%m%Y') as date)
{%- endmacro %}

{#- The offline grammar check does not read `default null on conversion error` (Oracle 12.2): the text's shape is
    checked first, so that only an impossible day (30 February) would still stop the query. -#}
{% macro oracle__parse_date_ddmmyyyy(value) -%}
case when regexp_like({{ value }}, '^(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])[0-9]{4}$')
then to_date({{ value }}, 'DDMMYYYY') end
{%- endmacro %}

{#- to_date raises on text that is no date: the shape is checked first, then the day itself (30 February). -#}
{% macro postgres__parse_date_ddmmyyyy(value) -%}
case when {{ value }} ~ '^(0[1-9]|[12][0-9]|3[01])(0[1-9]|1[0-2])[0-9]{4}$'
and pg_input_is_valid(substr({{ value }}, 5, 4) || '-' || substr({{ value }}, 3, 2) || '-' || substr({{ value }}, 1, 2), 'date')
then to_date({{ value }}, 'DDMMYYYY') end
{%- endmacro %}
