-- Each promoted delivery with each table it delivered, ranked per table from the most recent (by extraction date,
-- then loading time): the table's latest delivery (rank 1) is what a replaced table (replace_year, snapshot) holds.
-- Deliveries ingested before the policies were recorded count as extracted on the day they were loaded.
with delivered as (
    select distinct
        files.DELIVERY_ID,
        files.TABLE_NAME
    from {{ source('landing', 'delivery_files') }} files
    where files.DELIVERY_ID in (select promoted.DELIVERY_ID from {{ ref('promoted_deliveries') }} promoted)
),

dated as (
    select
        delivered.DELIVERY_ID,
        delivered.TABLE_NAME,
        coalesce(max(periods.EXTRACTED_ON), cast(max(deliveries.LOADED_AT) as date)) as EXTRACTED_ON,
        max(deliveries.LOADED_AT) as LOADED_AT
    from delivered
    inner join {{ source('landing', 'deliveries') }} deliveries
        on delivered.DELIVERY_ID = deliveries.DELIVERY_ID
    left join {{ source('landing', 'delivery_periods') }} periods
        on delivered.DELIVERY_ID = periods.DELIVERY_ID and delivered.TABLE_NAME = periods.TABLE_NAME
    group by delivered.DELIVERY_ID, delivered.TABLE_NAME
)

select
    DELIVERY_ID,
    TABLE_NAME,
    EXTRACTED_ON,
    row_number() over (
        partition by TABLE_NAME order by EXTRACTED_ON desc, LOADED_AT desc, DELIVERY_ID desc
    ) as RECENCY_RANK
from dated
