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

{#- An incremental model of the event layer (a graph node). -#}
{% macro is_event_increment(node) -%}
{{ return(node.resource_type == 'model' and node.fqn[1] in ('intermediate', 'marts')
    and node.config.materialized == 'incremental') }}
{%- endmacro %}

{#- Every model and seed `unique_id` reads, directly or not (dbt's graph, at build time); `through_staging`: false
    stops at the staging models of the base, without what they read. -#}
{% macro model_ancestors(unique_id, through_staging=true) -%}
{%- set seen = {} -%}
{%- set frontier = graph.nodes[unique_id].depends_on.get('nodes', []) | list -%}
{#- level by level (a variable set in a loop does not outlive its iteration: the list is changed in place) -#}
{%- for depth in range(32) if frontier -%}
{%- set level = frontier[:] -%}
{%- do frontier.clear() -%}
{%- for parent_id in level if parent_id not in seen and parent_id in graph.nodes -%}
{%- do seen.update({parent_id: true}) -%}
{%- set parent = graph.nodes[parent_id] -%}
{%- if through_staging or parent.fqn[1:3] != ['staging', 'snds'] -%}
{%- do frontier.extend(parent.depends_on.get('nodes', [])) -%}  {#- a seed has none -#}
{%- endif -%}
{%- endfor -%}
{%- endfor -%}
{{ return(seen.keys() | list) }}
{%- endmacro %}

{#- The incremental models of the event layer, each with the staging tables of the base it reads directly or through
    other models (`tables`) and the incremental event-layer models it reads (`upstream`): from dbt's graph at build
    time (at parse time: none). Read by the view pending_event_deliveries and by drop_stale_increments. -#}
{% macro event_model_tables() -%}
{%- set found = {} -%}
{%- if execute -%}
{%- for node in graph.nodes.values() if is_event_increment(node) -%}
{%- set tables, upstream = [], [] -%}
{%- for ancestor_id in model_ancestors(node.unique_id, through_staging=false) -%}
{%- set ancestor = graph.nodes[ancestor_id] -%}
{%- if ancestor.fqn[1:3] == ['staging', 'snds'] -%}
{%- do tables.append(ancestor.alias) -%}
{%- elif is_event_increment(ancestor) -%}
{%- do upstream.append(ancestor.alias) -%}
{%- endif -%}
{%- endfor -%}
{%- do found.update({node.alias: {'tables': tables | sort, 'upstream': upstream | sort}}) -%}
{%- endfor -%}
{%- endif -%}
{{ return(found) }}
{%- endmacro %}

{#- What a model's table was built from, compared by drop_stale_increments: dbt's checksum of its file; for the event
    layer, a digest of its file's and every model and seed it reads (a changed step, cleaning rule or catalog
    upstream rebuilds it in full). -#}
{% macro model_definition(unique_id) -%}
{%- set node = graph.nodes[unique_id] -%}
{%- if not is_event_increment(node) -%}
{{ return(node.checksum.checksum) }}
{%- endif -%}
{%- set parts = [unique_id ~ '=' ~ node.checksum.checksum] -%}
{%- for ancestor_id in model_ancestors(unique_id) -%}
{%- do parts.append(ancestor_id ~ '=' ~ graph.nodes[ancestor_id].checksum.checksum) -%}
{%- endfor -%}
{{ return(local_md5(parts | sort | join(','))) }}
{%- endmacro %}

{#- Rows of checked names (models, tables) as a union of selects, `columns` naming them; no row for no pairs. -#}
{% macro name_rows(pairs, columns) -%}
{%- set selects = [] -%}
{%- for pair in pairs -%}
{%- set values = [] -%}
{%- for name in pair -%}
{%- do values.append("cast('" ~ checked_model_name(name) ~ "' as varchar(128)) as " ~ columns[loop.index0]) -%}
{%- endfor -%}
{%- do selects.append('select ' ~ values | join(', ') ~ from_no_table()) -%}
{%- endfor -%}
{%- if not selects -%}
{%- set nulls = [] -%}
{%- for column in columns -%}
{%- do nulls.append('cast(null as varchar(128)) as ' ~ column) -%}
{%- endfor -%}
{%- do selects.append('select ' ~ nulls | join(', ') ~ from_no_table() ~ ' where 1 = 0') -%}
{%- endif -%}
{{ selects | join('\nunion all\n') }}
{%- endmacro %}
