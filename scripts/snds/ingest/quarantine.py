"""What a delivery's quarantine holds, summarised per file, column and reason (never the delivered values)."""

from __future__ import annotations

from dataclasses import dataclass

from snds.engine import Connection

SHOWN_LINES = 10  # line numbers listed per group; the count is always complete


@dataclass(frozen=True)
class QuarantineGroup:
    file: str
    table: str
    column: str | None  # None: a problem of the whole line (field count, encoding)
    reason_code: str
    expected: str | None
    reason: str
    lines: int  # distinct lines with this problem
    first_lines: tuple[int, ...]  # the first SHOWN_LINES line numbers

    def as_json(self) -> dict:
        return {
            "file": self.file,
            "table": self.table,
            "column": self.column,
            "reason_code": self.reason_code,
            "expected": self.expected,
            "reason": self.reason,
            "lines": self.lines,
            "first_lines": list(self.first_lines),
        }


def quarantine_summary(con: Connection, delivery_id: str) -> list[QuarantineGroup]:
    """Per file, column and reason: how many lines, and the first line numbers, in file order."""
    rows = con.execute(
        f"""select FILE_NAME, TABLE_NAME, COLUMN_NAME, REASON_CODE, EXPECTED, REASON,
               count(distinct LINE_NUMBER), (array_agg(distinct LINE_NUMBER order by LINE_NUMBER))[1:{SHOWN_LINES}]
        from landing.quarantine where DELIVERY_ID = ?
        group by FILE_NAME, TABLE_NAME, COLUMN_NAME, REASON_CODE, EXPECTED, REASON
        order by FILE_NAME, min(LINE_NUMBER), COLUMN_NAME nulls first, REASON_CODE""",
        [delivery_id],
    ).fetchall()
    return [QuarantineGroup(*row[:6], int(row[6]), tuple(int(n) for n in row[7] if n is not None)) for row in rows]
