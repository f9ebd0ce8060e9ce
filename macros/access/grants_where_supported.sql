{#
    A model's `grants` config on the engines that have grants: the project models give their project's reader
    role (`snds access`) the right to select them, rebuilt or not. DuckDB has no users: nothing to grant there
    (dbt-duckdb would warn on every build).
#}
{% macro grants_where_supported(grants) -%}
{{ return(adapter.dispatch('grants_where_supported', 'snds')(grants)) }}
{%- endmacro %}

{% macro default__grants_where_supported(grants) -%}
{{ return(grants) }}
{%- endmacro %}

{% macro duckdb__grants_where_supported(grants) -%}
{{ return({}) }}
{%- endmacro %}
