"""Render the committed catalog (seeds) and the generated dbt files from a built catalog.

Everything here is a pure function from the catalog to {relative path: file content}, so that writing
and checking (`snds catalog --check`) compare exactly the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import PurePosixPath

from snds.catalog.build import Catalog, Column, PhysicalTable
from snds.catalog.conventions import Conventions
from snds.catalog.history import render_history_macro
from snds.catalog.increments import pending_filter
from snds.catalog.labels import NEUTRAL_LABELS, render_neutral_labels, table_doc_name
from snds.catalog.policies import APPEND, REPLACE_YEAR, SNAPSHOT
from snds.catalog.pseudonymisation import (
    GENERATED_MACROS_ROOT,
    PSEUDONYMISATION_ROOT,
    correspondence_model,
    render_pseudonymisation,
)
from snds.catalog.rendering import HEADER, yaml_file

STAGING_ROOT = PurePosixPath("models/staging/snds")
SEEDS_ROOT = PurePosixPath("seeds/catalog")
GENERATED_ROOTS = (STAGING_ROOT, SEEDS_ROOT, PSEUDONYMISATION_ROOT, GENERATED_MACROS_ROOT)
# The landing tables are created unquoted (as every relation of the project: `quoting` in dbt_project.yml).
UNQUOTED = {"database": False, "schema": False, "identifier": False}


def render_all(catalog: Catalog, conventions: Conventions) -> dict[PurePosixPath, str]:
    files = render_seeds(catalog)
    files.update(render_staging(catalog, conventions))
    files.update(render_pseudonymisation(catalog, conventions))
    files.update(render_history_macro(catalog))
    files[NEUTRAL_LABELS] = render_neutral_labels(t.name for t in catalog.templates if t.columns)
    return files


# --- seeds ---------------------------------------------------------------------------------------


def _csv(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _seed(name: str, description: str, columns: dict[str, tuple[str, str]]) -> dict:
    return {
        "name": name,
        "description": description,
        "config": {"column_types": {c: t for c, (t, _) in columns.items()}},
        "columns": [{"name": c, "description": d} for c, (_, d) in columns.items()],
    }


_TEXT, _INT = "varchar(4000)", "integer"
_SEEDS_YAML = {
    "version": 2,
    "seeds": [
        _seed(
            "snds_tables",
            "Every physical table of the SNDS base that the project models, one row per table.",
            {
                "table_name": (_TEXT, "SNDS table name, also the model and relation name in the `snds` schema."),
                "product": (_TEXT, "Dictionary product (DCIR, PMSI MCO, NOMENCLATURES ...)."),
                "template": (_TEXT, "Dictionary table or template it comes from (T_MCOaaB for T_MCO19B)."),
                "year": (_INT, "Year of a PMSI table or a DCIR archive; empty for current tables."),
                "structure_id": (_TEXT, "Structure: tables with the same ordered columns share one."),
                "primary_key": (_TEXT, "Declared primary key columns, space-separated."),
                "column_count": (_INT, "Number of columns."),
                "delivery_policy": (_TEXT, "How a delivery applies: append (flow months), replace_year, snapshot."),
                "period_column": (_TEXT, "For append: the date column whose month is the period a delivery adds."),
            },
        ),
        _seed(
            "snds_template_columns",
            "Columns of every dictionary table or template, with their declared facts and year history.",
            {
                "template": (_TEXT, "Dictionary table or template."),
                "position": (_INT, "Position in the dictionary."),
                "column_name": (_TEXT, "SNDS column name."),
                "logical_type": (_TEXT, "Dictionary type (string, integer, number, date, datetime, year ...)."),
                "declared_length": (_TEXT, "Declared length: `13` or `10,2` (precision,scale)."),
                "format": (_TEXT, "Declared format (for example `%d%m%Y`)."),
                "nomenclature": (_TEXT, "Linked code list (nomenclature table)."),
                "year_created": (_INT, "First year present."),
                "year_deleted": (_INT, "First year absent (equal to year_created: that year only)."),
                "years_missing": (_TEXT, "Years absent in between, space-separated."),
                "in_primary_key": (_TEXT, "Whether the column belongs to the declared primary key."),
            },
        ),
        _seed(
            "snds_template_foreign_keys",
            "Links declared by the dictionary between tables or templates (what relational conformity checks follow).",
            {
                "template": (_TEXT, "Dictionary table or template holding the referencing columns."),
                "columns": (_TEXT, "Referencing columns, space-separated."),
                "parent_template": (_TEXT, "Referenced table or template (same year for PMSI templates)."),
                "parent_columns": (_TEXT, "Referenced columns, space-separated, in the same order."),
            },
        ),
        _seed(
            "snds_structure_columns",
            "Ordered columns of every structure, with the physical types used on both engines.",
            {
                "structure_id": (_TEXT, "Structure."),
                "position": (_INT, "Column position in the table."),
                "column_name": (_TEXT, "SNDS column name."),
                "data_type": (_TEXT, "ANSI type of the models and contracts (DuckDB and Oracle)."),
                "oracle_type": (_TEXT, "What Oracle stores (VARCHAR2, NUMBER, DATE ...)."),
                "declared_length": (_TEXT, "Length declared by the dictionary for this table."),
                "identifier_class": (_TEXT, "direct_person, direct_professional, potential or other."),
                "identifier_kind": (_TEXT, "For potential identifiers: birth, residence, death or care_date."),
            },
        ),
    ],
}


def render_seeds(catalog: Catalog) -> dict[PurePosixPath, str]:
    tables = _csv(
        [
            "table_name",
            "product",
            "template",
            "year",
            "structure_id",
            "primary_key",
            "column_count",
            "delivery_policy",
            "period_column",
        ],
        (
            (
                t.name,
                t.product,
                t.template.name,
                t.year,
                t.structure_id,
                " ".join(t.primary_key),
                len(t.columns),
                t.policy.name,
                t.policy.period_column,
            )
            for t in catalog.tables
        ),
    )
    template_columns = _csv(
        [
            "template",
            "position",
            "column_name",
            "logical_type",
            "declared_length",
            "format",
            "nomenclature",
            "year_created",
            "year_deleted",
            "years_missing",
            "in_primary_key",
        ],
        (
            (
                t.name,
                i,
                c.name,
                c.logical_type,
                c.length,
                c.format,
                c.nomenclature,
                c.years.created,
                c.years.deleted,
                " ".join(str(y) for y in sorted(c.years.missing)),
                str(c.name in t.primary_key).lower(),
            )
            for t in catalog.templates
            for i, c in enumerate(t.columns, start=1)
        ),
    )
    foreign_keys = _csv(
        ["template", "columns", "parent_template", "parent_columns"],
        (
            (t.name, " ".join(fk.columns), fk.parent, " ".join(fk.parent_columns))
            for t in catalog.templates
            for fk in t.foreign_keys
        ),
    )
    structure_columns = _csv(
        [
            "structure_id",
            "position",
            "column_name",
            "data_type",
            "oracle_type",
            "declared_length",
            "identifier_class",
            "identifier_kind",
        ],
        (
            (
                sid,
                i,
                c.name,
                c.data_type,
                c.oracle_type,
                c.spec.length,
                c.identifier.name,
                c.identifier.kind,
            )
            for sid, members in sorted(catalog.structures.items())
            for i, c in enumerate(members[0].columns, start=1)
        ),
    )
    return {
        SEEDS_ROOT / "_catalog__seeds.yml": yaml_file(_SEEDS_YAML),
        SEEDS_ROOT / "snds_tables.csv": tables,
        SEEDS_ROOT / "snds_template_columns.csv": template_columns,
        SEEDS_ROOT / "snds_template_foreign_keys.csv": foreign_keys,
        SEEDS_ROOT / "snds_structure_columns.csv": structure_columns,
    }


# --- dbt staging files -----------------------------------------------------------------------------


def model_dir(table: PhysicalTable, conventions: Conventions) -> PurePosixPath:
    product_dir = STAGING_ROOT / conventions.folder(table.product)
    if table.template.is_nomenclature:
        return product_dir / table.template.source.lower()
    if table.year is None:
        return product_dir
    if table.name.startswith("T_"):
        return product_dir / str(table.year)
    return product_dir / "archives" / str(table.year)


def render_model_sql(table: PhysicalTable) -> str:
    """Cast every landed column of the promoted deliveries not applied yet to its type; direct identifiers come from
    the pseudonym correspondences."""
    pseudonymised = [c for c in table.columns if c.identifier.pseudonym_domain]
    source = f"{{{{ source('landing', '{table.name}') }}}} landed"
    expressions = [
        (c.name, f"{_pseudonym_alias(c)}.platform_pseudonym" if c.identifier.pseudonym_domain else f"landed.{c.name}")
        for c in table.columns
    ]
    joins = "".join(
        f"\nleft join {{{{ ref('{correspondence_model(c.identifier.pseudonym_domain)}') }}}} {_pseudonym_alias(c)}"
        f"\n    on landed.{c.name} = {_pseudonym_alias(c)}.delivered_identifier"
        for c in pseudonymised
    )
    comment = (
        "-- Only validated deliveries (snds validate) are promoted into the base, each applied once.\n"
        f"-- Delivery policy: {table.policy.name} ({_POLICY_EFFECT[table.policy.name]}).\n"
    )
    if pseudonymised:
        comment += "-- Direct identifiers: the CNAM's values are replaced by platform pseudonyms (keys schema).\n"
    select = _select_list(table, expressions)
    where = pending_filter("landed.DELIVERY_ID", table.name)
    return f"-- {HEADER}\n{comment}select\n{select}\nfrom {source}{joins}\nwhere {where}\n"


_POLICY_EFFECT = {
    APPEND: "each new delivery's rows are added",
    REPLACE_YEAR: "a newer delivery of the year replaces the table",
    SNAPSHOT: "a newer delivery replaces the table",
}


def _pseudonym_alias(column: Column) -> str:
    return f"{column.name}_pseudonym"


def _select_list(table: PhysicalTable, expressions: list[tuple[str, str]]) -> str:
    types = {c.name: c.data_type for c in table.columns}
    casts = [(name, f"cast({e} as {types[name]})") for name, e in expressions]
    width = max(len(cast) for _, cast in casts)
    return ",\n".join(f"    {cast.ljust(width)} as {name}" for name, cast in casts)


def _column_entry(column: Column) -> dict:
    # Plain text only: a Jinja `doc()` per column would double the parse time of the project
    # (about 46,000 columns); the French labels are in the table's docs block instead.
    facts = []
    if column.identifier.name != "other":
        kind = f" ({column.identifier.kind.replace('_', ' ')})" if column.identifier.kind else ""
        facts.append(f"Identifier class: {column.identifier.name.replace('_', ' ')}{kind}.")
    if column.spec.nomenclature:
        facts.append(f"Code list: {column.spec.nomenclature}.")
    if column.in_primary_key:
        facts.append("Part of the primary key.")
    entry = {"name": column.name, "data_type": column.data_type}
    if facts:
        entry["description"] = " ".join(facts)
    return entry


def _model_entry(table: PhysicalTable) -> dict:
    template = table.template.name
    what = f"{table.product} table {table.name}"
    if table.year is not None:
        what += f", year {table.year}"
    if template != table.name:
        what += f" (dictionary template {template})"
    entry: dict = {
        "name": table.name,
        "description": f'{what}. Structure {table.structure_id}.\n\n{{{{ doc("{table_doc_name(template)}") }}}}',
        "meta": {"snds": {"template": template, "year": table.year, "structure": table.structure_id}},
    }
    if table.policy.name == APPEND and table.policy.period_column in table.primary_key:
        # the month a delivery adds: a promotion's tests read the months it applied (macros/staging/tested_rows.sql),
        # only where the month is part of the key (NS_PRS_F's CLE_DCI_JNT alone must be unique across months)
        entry["meta"]["period_column"] = table.policy.period_column
    if table.primary_key:
        test: dict = {"arguments": {"columns": list(table.primary_key)}}
        if table.template.is_nomenclature:
            # Code lists come from the dictionary's snapshot, which has known defects (IR_DTE_V holds a row
            # with an empty date key): they are reported, not allowed to block the build.
            test["config"] = {"severity": "warn"}
        entry["data_tests"] = [{"primary_key": test}]
    entry["columns"] = [_column_entry(c) for c in table.columns]
    return entry


def render_staging(catalog: Catalog, conventions: Conventions) -> dict[PurePosixPath, str]:
    files: dict[PurePosixPath, str] = {}
    by_dir: dict[PurePosixPath, list[PhysicalTable]] = {}
    by_product: dict[str, list[PhysicalTable]] = {}
    for table in catalog.tables:
        directory = model_dir(table, conventions)
        files[directory / f"{table.name}.sql"] = render_model_sql(table)
        by_dir.setdefault(directory, []).append(table)
        by_product.setdefault(conventions.folder(table.product), []).append(table)
    for directory, tables in by_dir.items():
        stem = "_".join(directory.relative_to(STAGING_ROOT).parts)
        files[directory / f"_{stem}__models.yml"] = yaml_file(
            {"version": 2, "models": [_model_entry(t) for t in tables]}
        )
    for folder, tables in by_product.items():
        files[STAGING_ROOT / folder / f"_{folder}__sources.yml"] = yaml_file(
            {
                "version": 2,
                "sources": [
                    {
                        "name": "landing",
                        "schema": "landing",
                        "quoting": UNQUOTED,
                        "description": "Typed CNAM deliveries as loaded by `snds ingest`, one table per SNDS table.",
                        "tables": [{"name": t.name} for t in tables],
                    }
                ],
            }
        )
    return files
