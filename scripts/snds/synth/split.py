"""Split one synthetic delivery into the deliveries the CNAM would send over time, by each table's policy.

- append tables (DCIR, DCIRS flows): one delivery per flow month (`<ID>_M<YYYYMM>`), the rows of that month;
- replace_year tables (PMSI years, DCIR archives): one delivery per year (`<ID>_Y<YYYY>`);
- snapshot tables (referentials, code lists): one delivery (`<ID>_REF`), sent first.

Each gets its manifest, with the extraction date its rhythm gives (`extracted`). DuckDB reads and writes the files
(text kept as delivered, in one pass per file: rows are routed by month as they stream).
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.catalog.policies import APPEND, REPLACE_YEAR
from snds.ingest.manifest import MANIFEST_NAME
from snds.ingest.verify import write_manifest
from snds.sql import quoted_name, sql_literal

_MEMORY_LIMIT = "2GB"


@dataclass(frozen=True)
class SplitDelivery:
    directory: Path
    extracted: date  # the delivery's nominal date: the order in which the CNAM would send them


def _month_key(column: str) -> str:
    # Delivered dates are DD/MM/YYYY: the flow month as YYYYMM (rows without one go with the first month).
    return f"substr({column}, 7, 4) || substr({column}, 4, 2)"


def split_delivery(source: Path, out: Path, catalog: dict[str, CatalogTable]) -> list[SplitDelivery]:
    """Write the deliveries into `out` (created; must not exist) and return them in the order they are sent."""
    out.mkdir(parents=True)
    entries = list(csv.DictReader((source / MANIFEST_NAME).open(encoding="utf-8"), delimiter=";"))
    routed: dict[str, list[tuple[str, str]]] = {}  # delivery name -> (file name, table)
    stem = source.name
    with (
        tempfile.TemporaryDirectory(prefix="snds-split-") as spill,
        duckdb.connect(config={"memory_limit": _MEMORY_LIMIT, "temp_directory": spill}) as con,
    ):
        for entry in entries:
            table = catalog[entry["table"]]
            file = source / entry["file"]
            if table.policy.name == APPEND:
                for month in _split_months(con, file, table, out, stem, Path(spill)):
                    routed.setdefault(f"{stem}_M{month}", []).append((entry["file"], table.name))
                continue
            name = f"{stem}_Y{table.year}" if table.policy.name == REPLACE_YEAR else f"{stem}_REF"
            (out / name).mkdir(exist_ok=True)
            shutil.copyfile(file, out / name / entry["file"])
            routed.setdefault(name, []).append((entry["file"], table.name))
    dates = {name: _nominal_date(name.removeprefix(stem + "_")) for name in routed}
    first = min((d for d in dates.values() if d is not None), default=date.today())
    for name, files in routed.items():
        write_manifest(out / name, sorted(files), dates[name] or first - timedelta(days=1))  # referentials first
    return deliveries_in(out)


def deliveries_in(out: Path) -> list[SplitDelivery]:
    """The deliveries `split_delivery` wrote into `out`, in the order they are sent (by extraction date)."""
    deliveries = []
    for directory in sorted(p for p in out.iterdir() if (p / MANIFEST_NAME).is_file()):
        with (directory / MANIFEST_NAME).open(encoding="utf-8") as handle:
            dates = {row["extracted"] for row in csv.DictReader(handle, delimiter=";")}
        deliveries.append(SplitDelivery(directory, date.fromisoformat(max(dates))))
    return sorted(deliveries, key=lambda d: (d.extracted, d.directory.name))


def _split_months(
    con: duckdb.DuckDBPyConnection, file: Path, table: CatalogTable, out: Path, stem: str, spill: Path
) -> list[str]:
    column = quoted_name(table.policy.period_column)
    parts = Path(tempfile.mkdtemp(prefix="parts-", dir=spill))
    # Every field as text, as delivered (the header names the columns; nothing is typed or reformatted).
    reader = f"read_csv({sql_literal(str(file))}, delim = ';', header = true, all_varchar = true, quote = '\"')"
    first = con.execute(f"select min({_month_key(column)}) from {reader}").fetchone()
    fallback = sql_literal(first[0] if first and first[0] else "000000")
    con.execute(
        f"copy (select *, coalesce({_month_key(column)}, {fallback}) as period__ from {reader}) "
        f"to {sql_literal(str(parts))} (format csv, delimiter ';', header, quote '\"', partition_by (period__))"
    )
    months = []
    for part in sorted(parts.glob("period__=*")):
        month = part.name.removeprefix("period__=")
        chunks = sorted(part.glob("*.csv"))
        target = out / f"{stem}_M{month}"
        target.mkdir(exist_ok=True)
        with (target / file.name).open("wb") as sink:
            for index, chunk in enumerate(chunks):
                with chunk.open("rb") as piece:
                    if index:
                        piece.readline()  # each chunk repeats the header
                    shutil.copyfileobj(piece, sink)
        months.append(month)
    shutil.rmtree(parts)
    return months


def _nominal_date(suffix: str) -> date | None:
    """Y<YYYY>: 1 March of the next year; M<YYYYMM>: the first day of the next month; REF: None (sent first)."""
    if suffix.startswith("Y"):
        return date(int(suffix[1:]) + 1, 3, 1)
    if suffix.startswith("M"):
        year, month = int(suffix[1:5]), int(suffix[5:7])
        return date(year + month // 12, month % 12 + 1, 1)
    return None
