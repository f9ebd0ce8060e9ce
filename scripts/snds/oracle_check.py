"""Check a project compiled for Oracle: every compiled query and every contracted table's DDL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from snds.sqlcheck import FileFindings, check_sql, sql_files


@dataclass
class OracleCheckReport:
    compiled_files: int = 0
    contract_tables: int = 0
    failures: list[FileFindings] = field(default_factory=list)

    def describe(self, limit: int = 30) -> str:
        lines = [f"{f.path}: {finding}" for f in self.failures for finding in f.findings]
        more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
        return "\n".join(lines[:limit]) + more


def contract_ddl(manifest: dict) -> dict[str, str]:
    """The `create table` that each model with an enforced contract gets on Oracle, by model id."""
    statements = {}
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or not node["config"].get("contract", {}).get("enforced"):
            continue
        columns = ",\n".join(f"    {c['name']} {c['data_type']}" for c in node["columns"].values())
        statements[unique_id] = f"create table {node['schema']}.{node['alias']} (\n{columns}\n)"
    return statements


def check_compiled_project(target_path: Path, manifest: dict) -> OracleCheckReport:
    report = OracleCheckReport()
    for path in sql_files(target_path / "compiled"):
        report.compiled_files += 1
        findings = check_sql(path.read_text(encoding="utf-8"))
        if findings:
            report.failures.append(FileFindings(path, findings))
    for unique_id, ddl in contract_ddl(manifest).items():
        report.contract_tables += 1
        findings = check_sql(ddl)
        if findings:
            report.failures.append(FileFindings(Path(f"<contract DDL of {unique_id}>"), findings))
    return report
