{#-
    The promoted deliveries each incremental model of the event layer has still to apply (macros/staging/
    event_increments.sql): a delivery of a staging table the model reads (directly or through other models), once
    every such table has applied it, and not yet applied by the model. One row per delivered table and flow month;
    PERIOD_START is null for a table that is not delivered by flow month (the model then rebuilds its rows).
-#}
{%- set model_tables = event_model_tables() %}

with model_tables as (
    {%- for model_name, tables in model_tables.items() %}
    {%- for table in tables %}
    select
        cast('{{ checked_model_name(model_name) }}' as varchar(128)) as MODEL_NAME,
        cast('{{ checked_model_name(table) }}' as varchar(128)) as TABLE_NAME{{ from_no_table() }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select
        cast(null as varchar(128)) as MODEL_NAME,
        cast(null as varchar(128)) as TABLE_NAME{{ from_no_table() }}
    where 1 = 0
    {%- endfor %}
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
