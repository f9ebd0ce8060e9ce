{# The first n rows of a query: appended after its last clause. #}
{% macro first_rows(max_rows) -%}
{{ return(adapter.dispatch('first_rows', 'snds')(max_rows | int)) }}
{%- endmacro %}

{% macro default__first_rows(max_rows) -%}
limit {{ max_rows }}
{%- endmacro %}

{% macro oracle__first_rows(max_rows) -%}
fetch first {{ max_rows }} rows only
{%- endmacro %}
