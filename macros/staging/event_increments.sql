{#
    Incremental event layer. The models of the event layer that read the DCIR flows (int_claim_lines_flagged, events)
    apply the deliveries that their staging tables have applied and they have not (the view
    `pending_event_deliveries`). A delivery of flow months (policy `append`) only adds rows of its months: the model
    deletes and recomputes the rows whose `source_period` is one of them, so a monthly delivery costs its own rows.
    Any other delivery the model reads (a replaced PMSI year or DCIR archive, a referential) rebuilds the model's
    rows from every table. A full build applies every delivery; both paths run the same SQL.
#}

{#- What the model has still to apply: its pending flow months, and a null month for each pending delivery that is
    not a flow month (the model's rows are then all recomputed). A model reads it once, as its first CTE
    `event_pending`. -#}
{% macro event_pending(model_name) -%}
select pending.PERIOD_START
from {{ ref('pending_event_deliveries') }} pending
where pending.MODEL_NAME = '{{ checked_model_name(model_name) }}'
{%- endmacro %}

{#- Which rows of a source the model (re)computes: every row when it rebuilds, else those of the pending months.
    `period`: the rows' month (source_period), or none for a source without flow months (then only on a rebuild);
    `pending`: the model's CTE event_pending, or a subquery. -#}
{% macro event_rows(period=none, pending='event_pending') -%}
{%- set rebuild = 'exists (select 1 from ' ~ pending ~ ' pending where pending.PERIOD_START is null)' -%}
{%- if period -%}
({{ rebuild }} or {{ period }} in (
    select pending.PERIOD_START from {{ pending }} pending where pending.PERIOD_START is not null
))
{%- else -%}
{{ rebuild }}
{%- endif -%}
{%- endmacro %}

{#- The month a row of a table delivered by flow month belongs to (`period_column`: snds_table_history's), else
    null. -#}
{% macro event_source_period(period_column, alias) -%}
{%- if period_column -%}
cast({{ truncate_date(alias ~ '.' ~ period_column, 'month') }} as date)
{%- else -%}
cast(null as date)
{%- endif -%}
{%- endmacro %}

{#- Pre-hook: an incremental build deletes the rows it recomputes; a full refresh forgets what the model applied. -#}
{% macro before_applying_event_deliveries() -%}
{%- if is_incremental() -%}
delete from {{ this }} where {{ event_rows('source_period', '(' ~ event_pending(this.identifier) ~ ')') }}
{%- elif should_full_refresh() -%}
{{ forget_applied_deliveries() }}
{%- endif -%}
{%- endmacro %}

{#- The incremental models of the event layer (intermediate and marts), each with the staging tables it reads
    directly or through other models: read from dbt's graph at build time (at parse time: none). -#}
{% macro event_model_tables() -%}
{%- set found = {} -%}
{%- if execute -%}
{%- for node in graph.nodes.values() if node.resource_type == 'model' and node.fqn[1] in ('intermediate', 'marts')
    and node.config.materialized == 'incremental' -%}
{%- set tables = [] -%}
{%- set seen = {} -%}
{%- set frontier = node.depends_on.nodes | list -%}
{#- level by level (a variable set in a loop does not outlive its iteration: the list is changed in place) -#}
{%- for depth in range(16) if frontier -%}
{%- set level = frontier[:] -%}
{%- do frontier.clear() -%}
{%- for unique_id in level if unique_id not in seen and unique_id in graph.nodes -%}
{%- do seen.update({unique_id: true}) -%}
{%- set parent = graph.nodes[unique_id] -%}
{%- if parent.fqn[1:3] == ['staging', 'snds'] -%}
{%- do tables.append(parent.alias) -%}
{%- else -%}
{%- do frontier.extend(parent.depends_on.get('nodes', [])) -%}  {#- a seed has none -#}
{%- endif -%}
{%- endfor -%}
{%- endfor -%}
{%- do found.update({node.alias: tables | sort}) -%}
{%- endfor -%}
{%- endif -%}
{{ return(found) }}
{%- endmacro %}
