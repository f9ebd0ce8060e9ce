"""What a delivery brings under each table's delivery policy, and what would break a policy.

Recorded in `landing.delivery_periods` within the loading transaction, after the rows are typed in landing:
- append (DCIR, DCIRS flows): the flow months the delivery holds; a month that a promoted (validated) delivery of
  the table holds already breaks the policy (to correct a month, that delivery is rejected first);
- replace_year, snapshot: the extraction date (manifest column `extracted`, else the day of loading); a promoted
  delivery extracted later breaks it (an older delivery would replace newer data).
Ingestion refuses such a delivery; `snds validate` checks the same again (check `delivery_policy`), so that of two
loaded deliveries holding one month only the first validated is promoted.

Table and column names come from the committed catalog, never from the delivery: they reach SQL as checked
literals. The messages name deliveries, tables and months, never a delivered value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from snds.catalog.committed import CatalogTable
from snds.catalog.policies import APPEND
from snds.engine import Connection, identifier
from snds.ingest.errors import Problems
from snds.landing import LANDING_SCHEMA

PROMOTED = "validated"  # the status of a delivery in the base (landing.promoted_deliveries)
_SHOWN = 3


@dataclass(frozen=True)
class PolicyCheck:
    periods: int  # what the delivery brings of the table: flow months (append), or 1 (a replaced table)
    breaking: int  # of which, already in the base (append) or older than the base's (replaced)
    problem: str  # the reason, empty when nothing breaks


def record_periods(
    con: Connection,
    delivery_id: str,
    tables: dict[str, tuple[CatalogTable, date]],
    problems: Problems,
) -> None:
    """Record each delivered table's periods (or extraction date) and add a problem for each policy it breaks."""
    for name in sorted(tables):
        table, extracted = tables[name]
        if table.policy.name == APPEND:
            column = identifier(con, table.policy.period_column)
            con.execute(
                f"insert into landing.delivery_periods select distinct ?, ?, ?, "
                f"cast(date_trunc('month', {column}) as date), cast(? as date) "
                f"from {LANDING_SCHEMA}.{identifier(con, table.name)} where DELIVERY_ID = ?",
                [delivery_id, table.name, table.policy.name, extracted, delivery_id],
            )
        else:
            con.execute(
                "insert into landing.delivery_periods values (?, ?, ?, null, ?)",
                [delivery_id, table.name, table.policy.name, extracted],
            )
        checked = check_policy(con, delivery_id, table)
        if checked.problem:
            problems.add(checked.problem)


def check_policy(con: Connection, delivery_id: str, table: CatalogTable) -> PolicyCheck:
    """What the delivery brings of `table` against the promoted deliveries (its recorded periods)."""
    if table.policy.name == APPEND:
        return _months_in_the_base(con, delivery_id, table)
    return _newer_in_the_base(con, delivery_id, table)


def _months_in_the_base(con: Connection, delivery_id: str, table: CatalogTable) -> PolicyCheck:
    rows = con.execute(
        """select mine.PERIOD_START, string_agg(distinct theirs.DELIVERY_ID, ', ' order by theirs.DELIVERY_ID)
        from landing.delivery_periods mine
        left join (
            select periods.* from landing.delivery_periods periods
            join landing.deliveries promoted on promoted.DELIVERY_ID = periods.DELIVERY_ID and promoted.STATUS = ?
        ) theirs
            on theirs.TABLE_NAME = mine.TABLE_NAME and theirs.PERIOD_START = mine.PERIOD_START
            and theirs.DELIVERY_ID <> mine.DELIVERY_ID
        where mine.DELIVERY_ID = ? and mine.TABLE_NAME = ? and mine.PERIOD_START is not null
        group by mine.PERIOD_START order by mine.PERIOD_START""",
        [PROMOTED, delivery_id, table.name],
    ).fetchall()
    held = [(month, holders) for month, holders in rows if holders]
    if not held:
        return PolicyCheck(len(rows), 0, "")
    months = ", ".join(f"{month:%Y-%m} (in {holders})" for month, holders in held[:_SHOWN])
    more = f" and {len(held) - _SHOWN} more" if len(held) > _SHOWN else ""
    return PolicyCheck(
        len(rows),
        len(held),
        f"{table.name}: flow months already in the base: {months}{more}. Its policy is {APPEND} "
        f"({table.policy.period_column}): a delivery adds months; to correct a month, reject the delivery that "
        "holds it first",
    )


def _newer_in_the_base(con: Connection, delivery_id: str, table: CatalogTable) -> PolicyCheck:
    row = con.execute(
        """select theirs.DELIVERY_ID, theirs.EXTRACTED_ON, mine.EXTRACTED_ON
        from landing.delivery_periods mine
        join landing.delivery_periods theirs
            on theirs.TABLE_NAME = mine.TABLE_NAME and theirs.DELIVERY_ID <> mine.DELIVERY_ID
            and theirs.EXTRACTED_ON > mine.EXTRACTED_ON
        join landing.deliveries promoted on promoted.DELIVERY_ID = theirs.DELIVERY_ID and promoted.STATUS = ?
        where mine.DELIVERY_ID = ? and mine.TABLE_NAME = ?
        order by theirs.EXTRACTED_ON desc, theirs.DELIVERY_ID limit 1""",
        [PROMOTED, delivery_id, table.name],
    ).fetchone()
    if row is None:
        return PolicyCheck(1, 0, "")
    theirs, their_date, my_date = row
    return PolicyCheck(
        1,
        1,
        f"{table.name}: extracted on {my_date.isoformat()}, before delivery {theirs} already in the base "
        f"(extracted on {their_date.isoformat()}). Its policy is {table.policy.name}: a delivery replaces the "
        "table, and an older one would replace newer data",
    )
