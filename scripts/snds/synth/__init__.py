"""`snds synth`: a synthetic CNAM delivery (MANIFEST.csv and `;`-separated files), with a truth file."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from snds.catalog.committed import CatalogTable
from snds.ingest.verify import write_manifest
from snds.synth.conformity_faults import count_flagged, plant_conformity_faults
from snds.synth.faults import plant_faults
from snds.synth.generate import RECURRENCES, SynthSpec, build_tables, export_sql, load_code_pools, table_queries
from snds.synth.linkage import LinkageSpec, linkage_dir, write_inputs

__all__ = ["LinkageSpec", "SynthSpec", "linkage_dir", "synthesize", "truth_path"]

MEMORY_LIMIT = "4GB"  # DuckDB's working memory while generating; beyond it, its tables spill to a temporary folder


@dataclass(frozen=True)
class SynthReport:
    directory: Path
    files: dict[str, int]  # file name -> data rows
    faults: int
    linkage: dict[str, int]  # linkage input file name -> data rows (none unless the spec asks for them)


def synthesize(
    out: Path,
    spec: SynthSpec,
    catalog: dict[str, CatalogTable],
    reference: Path,
    fault_rate: float = 0.0,
    progress: Callable[[str], None] = lambda _: None,
    conformity_faults: bool = False,
) -> SynthReport:
    """Write the delivery into `out` (created; must be empty or absent), and the linkage inputs beside it if the
    spec asks for them (`snds.synth.linkage`).

    `fault_rate`: share of rows that ingestion must quarantine; `conformity_faults`: rows that load but break
    named conformity checks. Both are listed in the truth file.
    """
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    if spec.linkage is not None and linkage_dir(out).exists():
        raise FileExistsError(f"{linkage_dir(out)} already exists")
    with tempfile.TemporaryDirectory(prefix="snds-synth-") as spill:
        # in memory, but spilling to disk past the limit: a million persons' tables outgrow the machine's memory
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
        try:
            return _synthesize(con, out, spec, catalog, reference, fault_rate, progress, conformity_faults)
        finally:
            con.close()


def _synthesize(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    spec: SynthSpec,
    catalog: dict[str, CatalogTable],
    reference: Path,
    fault_rate: float,
    progress: Callable[[str], None],
    conformity_faults: bool,
) -> SynthReport:
    load_code_pools(con, reference)
    build_tables(con, spec)
    rows: dict[str, int] = {}
    for table_name, query in table_queries(spec).items():
        table = catalog[table_name]
        produced = {name.upper() for name in con.sql(query).columns}
        path = out / f"{table_name}.csv"
        progress(table_name)
        written = con.execute(
            f"copy ({export_sql(table, query, produced)}) to '{path}' (format csv, delimiter ';', header, quote '\"')"
        ).fetchone()
        rows[path.name] = int(written[0]) if written else 0
    planted = plant_conformity_faults(out, catalog, rows, min(spec.years)) if conformity_faults else []
    counted = [_information_only_lines(con, out)]  # before ingestion faults, which make files unreadable as text
    faults = plant_faults(out, catalog, rows, fault_rate, spec.seed) if fault_rate > 0 else []
    write_manifest(out, ((name, name.removesuffix(".csv")) for name in sorted(rows)))
    _write_truth(con, truth_path(out), spec, faults, [*planted, *counted])
    linkage = {}
    if spec.linkage is not None:
        progress("linkage inputs")
        linkage = write_inputs(con, linkage_dir(out), spec.seed, spec.linkage)
    return SynthReport(out, rows, len(faults) + len(planted), linkage)


def _information_only_lines(con: duckdb.DuckDBPyConnection, out: Path) -> dict[str, str | int]:
    """The generator marks about 3 % of DCIR lines as sent for information only: what the cleaning flag counts."""
    check = "cleaning_flag:information_only_line:DPN_QLF"
    return {
        "kind": "information_only_line",
        "table": "ER_PRS_F",
        "check": check,
        "count": count_flagged(con, out, "ER_PRS_F", "DPN_QLF", "71"),
    }


def _recurrences(con: duckdb.DuckDBPyConnection, spec: SynthSpec) -> dict:
    """The second I21 stays planted for persons of the infarction story, by kind (generate.RECURRENCES)."""
    first = min(spec.years)
    rows = con.sql(
        "select nir, kind, first_entry, entry, entry + los from recurrences join persons using (pid) order by nir"
    ).fetchall()
    return {
        "definition": (
            f"a second quality-valid I21 main diagnosis MCO stay for a person of myocardial_infarction (whose stay is "
            f"admitted in {first}): 'before' admitted in December {first - 1} and discharged in January {first} (filed "
            f"in T_MCO{first % 100:02d}B), less than 365 days before the story's stay, which is then not incident; "
            "'within_365_days' admitted 60 to 199 days after the story's stay, 'over_365_days' 380 to 439 days after it"
        ),
        "BEN_NIR_PSA": [nir for nir, *_ in rows],
        "by_kind": {kind: [nir for nir, k, *_ in rows if k == kind] for kind in RECURRENCES},
        "stays": [
            {
                "BEN_NIR_PSA": nir,
                "kind": kind,
                "story_admission": first_entry.isoformat(),
                "admission": entry.isoformat(),
                "discharge": discharge.isoformat(),
            }
            for nir, kind, first_entry, entry, discharge in rows
        ],
    }


def truth_path(delivery: Path) -> Path:
    """The truth file sits beside the delivery (a delivery directory holds only what the manifest lists)."""
    return delivery.with_name(delivery.name + ".truth.json")


def _write_truth(
    con: duckdb.DuckDBPyConnection, path: Path, spec: SynthSpec, faults: list[dict], conformity: list[dict]
) -> None:
    def persons(condition: str) -> list[str]:
        return [r[0] for r in con.sql(f"select nir from persons where {condition} order by nir").fetchall()]

    truth = {
        "spec": {"patients": spec.patients, "years": list(spec.years), "seed": spec.seed},
        "stories": {
            "type2_diabetes": {
                "definition": "E11 stay each year, ALD 8 (E11) in IR_IMB_R, A10 antidiabetic dispensings in ER_PHA_F",
                "BEN_NIR_PSA": persons("diabetic"),
            },
            "myocardial_infarction": {
                "definition": f"I21 main diagnosis stay in T_MCO{min(spec.years) % 100:02d}B (unless diabetic)",
                "BEN_NIR_PSA": persons("infarction and not diabetic"),
            },
            "recurrent_myocardial_infarction": _recurrences(con, spec),
            "deaths": {
                "definition": "BEN_DCD_DTE set in IR_BEN_R, a KI_CCI_R row",
                "BEN_NIR_PSA": persons("death is not null"),
            },
        },
        "faults": faults,
        "conformity_faults": conformity,
    }
    path.write_text(json.dumps(truth, indent=1), encoding="utf-8")
