{#
    What a build's data tests read of an incremental model whose rows carry their flow month (`meta.period_column`:
    FLX_DIS_DTD of a flow table whose primary key holds it, ER_PRS_F; the event layer's source_period): the rows
    of the months the run applied,
    when it applied only flow months. A monthly delivery then tests its own month (a primary key holds the month:
    months applied earlier were tested when they were applied), and its tests cost its size, not the base's.
    Every row is tested when the model applied in the run anything else (a replaced table, a referential: the model
    was rebuilt), when it was rebuilt in full (it re-applied every delivery), and when the run applied nothing to it
    (`dbt test`, a build with nothing new). The run's deliveries are those recorded with its start time
    (record_applied_deliveries). Only `snds promote` asks for it (environment SNDS_TESTED_ROWS=applied), and not
    after a build that stopped half-way (snds/promotion.py): a `dbt build` by hand tests every row.
#}

{#- dbt's generic tests read their model through get_where_subquery: its `where` config, and the rows above. -#}
{% macro default__get_where_subquery(relation) -%}
{%- set conditions = [] -%}
{%- if config.get('where') -%}
{%- do conditions.append('(' ~ config.get('where') ~ ')') -%}
{%- endif -%}
{%- set applied = applied_rows(relation) -%}
{%- if applied -%}
{%- do conditions.append(applied) -%}
{%- endif -%}
{%- if not conditions -%}
{{ return(relation) }}
{%- endif -%}
{{ return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') }}
{%- endmacro %}

{#- The condition on the rows of `relation` the run's tests read, or '' for every row (a model without a flow
    month; at parse time). -#}
{% macro applied_rows(relation) -%}
{%- set node = tested_model(relation) -%}
{%- set period = (node.config.get('meta') or {}).get('period_column') or node.meta.get('period_column')
    if node is not none else none -%}
{%- if not execute or not period or env_var('SNDS_TESTED_ROWS', 'every') != 'applied' -%}
{{ return('') }}
{%- endif -%}
{%- set name = checked_model_name(node.alias) -%}
{%- set tables = event_model_tables()[name].tables if is_event_increment(node) else [name] -%}
{%- set quoted = [] -%}
{%- for table in tables -%}
{%- do quoted.append("'" ~ checked_model_name(table) ~ "'") -%}
{%- endfor -%}
{%- set run_periods -%}
select periods.PERIOD_START
    from {{ landing_relation('applied_deliveries') }} applied
    inner join {{ landing_relation('delivery_periods') }} periods on applied.DELIVERY_ID = periods.DELIVERY_ID
    where applied.MODEL_NAME = '{{ name }}' and applied.APPLIED_AT = {{ run_started_literal() }}
        and periods.TABLE_NAME in ({{ quoted | join(', ') }})
{%- endset -%}
{%- set month = 'cast(' ~ truncate_date(checked_model_name(period), 'month') ~ ' as date)' -%}
{{ return('(not exists (' ~ run_periods ~ ')
    or exists (select 1 from (' ~ run_periods ~ ') run_period where run_period.PERIOD_START is null)
    or ' ~ month ~ ' in (select run_period.PERIOD_START from (' ~ run_periods ~ ') run_period))') }}
{%- endmacro %}

{#- The model a test reads as `relation` (among the test's parents), or none. -#}
{% macro tested_model(relation) -%}
{%- for unique_id in model.depends_on.nodes if unique_id in graph.nodes -%}
{%- set node = graph.nodes[unique_id] -%}
{%- if node.resource_type == 'model' and node.alias | lower == relation.identifier | lower
    and node.schema | lower == relation.schema | lower -%}
{{ return(node) }}
{%- endif -%}
{%- endfor -%}
{{ return(none) }}
{%- endmacro %}

{#- The start of this dbt run, as a timestamp literal: what the deliveries it applies are recorded with. -#}
{% macro run_started_literal() -%}
timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}'
{%- endmacro %}
