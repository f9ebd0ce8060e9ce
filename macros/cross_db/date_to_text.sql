{#
    A date as text `YYYY-MM-DD`, whatever the session's date format (Oracle's NLS_DATE_FORMAT).
#}
{% macro date_to_text(value) -%}
{{ return(adapter.dispatch('date_to_text', 'snds')(value)) }}
{%- endmacro %}

{% macro default__date_to_text(value) -%}
to_char({{ value }}, 'YYYY-MM-DD')
{%- endmacro %}

{% macro duckdb__date_to_text(value) -%}
strftime({{ value }}, '%Y-%m-%d')
{%- endmacro %}
