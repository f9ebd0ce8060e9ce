{#-
    The promoted deliveries each incremental model of the event layer has still to apply (macros/staging/
    event_increments.sql): a delivery of a staging table the model reads (directly or through other models), once
    every such table and every incremental event-layer model it reads have applied it, and not yet applied by the
    model. One row per delivered table and flow month; PERIOD_START is null for a table that is not delivered by
    flow month (the model then rebuilds its rows).
-#}
{%- set model_tables = event_model_tables() %}

{%- set table_pairs, upstream_pairs = [], [] %}
{%- for model_name, read in model_tables.items() %}
{%- for table in read.tables %}
{%- do table_pairs.append((model_name, table)) %}
{%- endfor %}
{%- for upstream in read.upstream %}
{%- do upstream_pairs.append((model_name, upstream)) %}
{%- endfor %}
{%- endfor %}

with model_tables as (
    {{ name_rows(table_pairs, ['MODEL_NAME', 'TABLE_NAME']) }}
),

-- the incremental event-layer models each model reads (events reads int_claim_lines_flagged)
upstream_models as (
    {{ name_rows(upstream_pairs, ['MODEL_NAME', 'UPSTREAM_NAME']) }}
),

delivered as (
    select
        model_tables.MODEL_NAME,
        promoted.DELIVERY_ID,
        promoted.TABLE_NAME,
        case when tables.delivery_policy = 'append' then periods.PERIOD_START end as PERIOD_START
    from model_tables
    inner join {{ ref('promoted_tables') }} promoted on model_tables.TABLE_NAME = promoted.TABLE_NAME
    inner join {{ ref('snds_tables') }} tables on promoted.TABLE_NAME = tables.table_name
    left join {{ source('landing', 'delivery_periods') }} periods
        on promoted.DELIVERY_ID = periods.DELIVERY_ID and promoted.TABLE_NAME = periods.TABLE_NAME
    -- a flow table's rows are applied by their months: a delivery of it without a recorded month brought none
    where tables.delivery_policy <> 'append' or periods.PERIOD_START is not null
)

select distinct
    delivered.MODEL_NAME,
    delivered.DELIVERY_ID,
    delivered.TABLE_NAME,
    delivered.PERIOD_START
from delivered
where
    not exists (
        select 1 from {{ source('landing', 'applied_deliveries') }} applied
        where applied.MODEL_NAME = delivered.MODEL_NAME and applied.DELIVERY_ID = delivered.DELIVERY_ID
    )
    -- not before the staging tables the model reads have applied it
    and not exists (
        select 1
        from {{ ref('pending_deliveries') }} staged
        inner join model_tables read_tables
            on staged.MODEL_NAME = read_tables.TABLE_NAME
        where read_tables.MODEL_NAME = delivered.MODEL_NAME and staged.DELIVERY_ID = delivered.DELIVERY_ID
    )
    -- nor before the event-layer models it reads have applied it
    and not exists (
        select 1
        from upstream_models
        inner join delivered upstream
            on upstream_models.UPSTREAM_NAME = upstream.MODEL_NAME
        where
            upstream_models.MODEL_NAME = delivered.MODEL_NAME
            and upstream.DELIVERY_ID = delivered.DELIVERY_ID
            and not exists (
                select 1 from {{ source('landing', 'applied_deliveries') }} applied
                where applied.MODEL_NAME = upstream.MODEL_NAME and applied.DELIVERY_ID = upstream.DELIVERY_ID
            )
    )
