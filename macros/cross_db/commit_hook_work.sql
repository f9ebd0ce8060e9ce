{#
    Commit what a run hook wrote, so that the models' own connections see it. dbt-duckdb and dbt-oracle keep a
    transaction open for the hook (adapter.commit); dbt-postgres runs hooks outside one, where adapter.commit
    raises, so a plain commit statement ends the transaction that run_query began.
#}
{% macro commit_hook_work() -%}
{{ return(adapter.dispatch('commit_hook_work', 'snds')()) }}
{%- endmacro %}

{% macro default__commit_hook_work() -%}
{%- do adapter.commit() -%}
{%- endmacro %}

{% macro postgres__commit_hook_work() -%}
{%- do run_query('commit') -%}
{%- endmacro %}
