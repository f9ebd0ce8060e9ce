{#
    dbt-postgres compares a relation's name as written (ER_PRS_F) with the catalog's, where PostgreSQL folded the
    unquoted name to lower case: no column would be found, and an incremental model would fail its schema check.
    With the project's quoting off, the names are folded the same way before the look-up.
#}
{% macro postgres__get_columns_in_relation(relation) -%}
{%- set identifier = relation.identifier if relation.quote_policy.identifier else relation.identifier | lower -%}
{%- set schema = relation.schema if relation.quote_policy.schema else (relation.schema or '') | lower -%}
{%- set schema_literal = "'" ~ schema ~ "'" if relation.schema else 'null' -%}
{% call statement('get_columns_in_relation', fetch_result=True) %}
    select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
    from {{ relation.information_schema('columns') }}
    where table_name = '{{ identifier }}' and table_schema = coalesce({{ schema_literal }}, table_schema)
    order by ordinal_position
{% endcall %}
{{ return(sql_convert_columns_in_relation(load_result('get_columns_in_relation').table)) }}
{%- endmacro %}
