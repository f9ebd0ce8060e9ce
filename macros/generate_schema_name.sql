{#
    Schemas are used as written (`snds`, `landing`, `catalog` ...), not prefixed with the target's
    schema as dbt does by default: in Oracle each schema is a user created by the DBA.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
{%- if custom_schema_name is none -%}
{{ target.schema }}
{%- else -%}
{{ custom_schema_name | trim }}
{%- endif -%}
{%- endmacro %}
