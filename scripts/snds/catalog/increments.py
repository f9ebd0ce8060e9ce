"""Incremental staging, as generated SQL: which deliveries each model has still to apply (the view
`pending_deliveries`) and how a model reads them. The hooks that apply and record them are in
macros/staging/delivery_increments.sql, added by the incremental materialization (incremental_materialization.sql).

Models read the view through `ref` and a literal name only, so that dbt's static parser still reads the 2,477
generated models without rendering them.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from snds.catalog.policies import APPEND
from snds.catalog.rendering import HEADER
from snds.sql import sql_literal

PENDING_MODEL = "pending_deliveries"
PENDING_PATH = PurePosixPath("models/staging/landing") / f"{PENDING_MODEL}.sql"


def pending_filter(column: str, model_name: str) -> str:
    """`column in (the deliveries model_name has still to apply)`."""
    return f"{column} in ({pending_query(model_name)})"


def pending_query(model_name: str) -> str:
    return (
        f"select pending.DELIVERY_ID from {{{{ ref('{PENDING_MODEL}') }}}} pending "
        f"where pending.MODEL_NAME = {sql_literal(model_name)}"
    )


def render_pending_deliveries(every_delivery_models: list[str]) -> str:
    """The view: per staging model (named after its table), the promoted deliveries of its table it has not
    applied, only the latest under a replacing policy; per model of `every_delivery_models` (the correspondences),
    every promoted delivery it has not applied."""
    every_delivery = "\n    union all\n".join(
        f"    select\n        cast({sql_literal(name)} as varchar(128)) as MODEL_NAME,\n        promoted.DELIVERY_ID,\n"
        f"        0 as REPLACES\n    from {{{{ ref('promoted_deliveries') }}}} promoted"
        for name in every_delivery_models
    )
    return f"""-- {HEADER}
-- The promoted deliveries each incremental model has still to apply (macros/staging/delivery_increments.sql):
-- a staging model (named after its SNDS table) applies its table's deliveries, by the table's delivery policy
-- (catalog): every one under {APPEND}, only the most recent under a replacing policy (REPLACES = 1: the model is
-- emptied first); a correspondence applies every promoted delivery.
with applied as (
    select
        MODEL_NAME,
        DELIVERY_ID
    from {{{{ source('landing', 'applied_deliveries') }}}}
),

by_table as (
    select
        cast(promoted.TABLE_NAME as varchar(128)) as MODEL_NAME,
        promoted.DELIVERY_ID,
        case when tables.delivery_policy = '{APPEND}' then 0 else 1 end as REPLACES
    from {{{{ ref('promoted_tables') }}}} promoted
    inner join {{{{ ref('snds_tables') }}}} tables on promoted.TABLE_NAME = tables.table_name
    where tables.delivery_policy = '{APPEND}' or promoted.RECENCY_RANK = 1
),

every_delivery as (
{every_delivery}
),

candidates as (
    select * from by_table
    union all
    select * from every_delivery
)

select
    candidates.MODEL_NAME,
    candidates.DELIVERY_ID,
    candidates.REPLACES
from candidates
where not exists (
    select 1 from applied
    where applied.MODEL_NAME = candidates.MODEL_NAME and applied.DELIVERY_ID = candidates.DELIVERY_ID
)
"""
