{#
    Every incremental model of the platform applies promoted deliveries: the base's staging models, the pseudonym
    correspondences and the event layer. Each engine's incremental materialization runs here with the model's
    delivery hooks added after its own (`delivery_hooks`), so that applying the deliveries and recording them
    happen in the transaction that builds the model (macros/staging/delivery_increments.sql).

    Why here rather than as pre- and post-hooks in dbt_project.yml: dbt renders a model's hooks when it parses, to
    find what they reference, and renders them again for a model with YAML properties. For the 2,477 generated
    models that was a third of every parse; here they are rendered only when a model is built. What they reference
    (pending_deliveries, pending_event_deliveries) every such model already reads.
#}

{% materialization incremental, adapter='duckdb' %}
{%- do delivery_hooks() -%}
{{ return(dbt.materialization_incremental_duckdb()) }}
{% endmaterialization %}

{% materialization incremental, adapter='oracle' %}
{%- do delivery_hooks() -%}
{{ return(dbt.materialization_incremental_oracle()) }}
{% endmaterialization %}

{#- PostgreSQL, and any engine without its own. -#}
{% materialization incremental, default %}
{%- do delivery_hooks() -%}
{{ return(dbt.materialization_incremental_default()) }}
{% endmaterialization %}

{#- Adds the model's delivery hooks to the hooks the materialization runs (the context's `pre_hooks` and `post_hooks`,
    in their transaction), after the model's own (a correspondence first checks its key). -#}
{% macro delivery_hooks() -%}
{%- set event = is_event_increment(model) -%}
{%- set before = 'before_applying_event_deliveries' if event else 'before_applying_deliveries' -%}
{%- set pending = 'pending_event_deliveries' if event else 'pending_deliveries' -%}
{%- do pre_hooks.append({'sql': '{{ ' ~ before ~ '() }}', 'transaction': true}) -%}
{%- do post_hooks.append({'sql': "{{ record_applied_deliveries('" ~ pending ~ "') }}", 'transaction': true}) -%}
{%- endmacro %}
