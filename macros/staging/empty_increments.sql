{#
on-run-start: the staging models a promotion tags as having nothing to apply (`snds.promotion`: into a base never
built, the tables that the event layer reads and that no validated delivery holds, most of them years and archives
nobody delivered) are created here empty, with their contract's columns, and recorded as built from their
definition, instead of being built and tested by dbt one node at a time on zero rows. They are left as dbt's
incremental materialization would leave them: an empty table, nothing applied, a build recorded (model_builds), so
that a first delivery of one is applied as an increment. A tagged model whose table exists is left alone (the
promotion tags only absent ones). Only by `dbt run` or `dbt build`: `dbt compile` renders the hook too.
#}
{% macro create_empty_increments(tag='snds_created_empty') -%}
{%- if execute and flags.WHICH in ('run', 'build', 'retry') -%}
{%- set created = [] -%}
{%- for node in graph.nodes.values() if node.resource_type == 'model' and tag in node.tags -%}
{%- if adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) is none -%}
{%- do created.append(node) -%}
{%- endif -%}
{%- endfor -%}
{%- for schema in created | map(attribute='schema') | unique -%}
{%- do adapter.create_schema(api.Relation.create(database=target.database, schema=schema)) -%}
{%- endfor -%}
{%- for node in created -%}
{%- do run_query(empty_increment_table(node)) -%}
{%- endfor -%}
{%- do forget_models_applied(created | map(attribute='alias') | list) -%}
{%- do record_builds(created) -%}
{%- do commit_hook_work() if created -%}
{%- do log(created | length ~ " staging tables with nothing to apply created empty", info=true) if created -%}
{%- endif -%}
{%- endmacro %}

{#- The empty table of an incremental model with an enforced contract, as the engine's materialization creates it
    on a first build: the contract's columns and types. -#}
{% macro empty_increment_table(node) -%}
{{ return(adapter.dispatch('empty_increment_table', 'snds')(node)) }}
{%- endmacro %}

{% macro default__empty_increment_table(node) -%}
create table {{ node.relation_name }} (
    {{ adapter.render_raw_columns_constraints(raw_columns=node.columns) | join(',\n    ') }}
)
{%- endmacro %}

{#- dbt-oracle renders a contract for `create table ... as select`: column names only, the select giving the types. -#}
{% macro oracle__empty_increment_table(node) -%}
{%- set columns = [] -%}
{%- for column in node.columns.values() -%}
{%- do columns.append(column.name ~ ' ' ~ column.data_type) -%}
{%- endfor -%}
create table {{ node.relation_name }} (
    {{ columns | join(',\n    ') }}
)
{%- endmacro %}
