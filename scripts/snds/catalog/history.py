"""Render `snds_table_history()`: the physical tables of every yearly template, for models that read all years.

A PMSI template (`T_MCOaaB`) is one table per year, and a DCIR fact table (`ER_PRS_F`) has yearly archives
(`ER_PRS_F_2015` ...) beside the current table. Models that read the whole history loop over this macro instead of
listing tables by hand, and write `cast(null as <type>)` where a year lacks a column; nothing looks at the database
at compile time, so the Oracle target still compiles offline.

The facts are written compactly (per template the columns with their types, per table the columns it lacks), since a
column name has one type in every year of a template; the macro expands them for the template asked for.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from snds.catalog.build import Catalog, PhysicalTable
from snds.catalog.policies import APPEND
from snds.catalog.pseudonymisation import GENERATED_MACROS_ROOT
from snds.catalog.rendering import HEADER, json_macro

HISTORY_MACRO = GENERATED_MACROS_ROOT / "snds_table_history.sql"

_MACROS = """
{#- Per template: its physical tables in year order, each {"table", "year", "columns": {COLUMN: type},
    "types": the template's columns of every year with their types, "period_column": the column whose month a
    delivery adds, for a table delivered by flow month (delivery policy `append`), else none}. `template`: one
    template (fast), or none for every template. An unknown template is a compile error. -#}
{% macro snds_table_history(template=none) %}
{%- set facts = snds_table_history_facts() -%}
{%- if template is not none and template not in facts -%}
{{ exceptions.raise_compiler_error("snds_table_history: no yearly tables for template " ~ template) }}
{%- endif -%}
{%- set history = {} -%}
{%- for name in ([template] if template is not none else facts.keys() | list) -%}
{%- set types = facts[name]["types"] -%}
{%- set tables = [] -%}
{%- for entry in facts[name]["tables"] -%}
{%- set columns = {} -%}
{%- for column, data_type in types.items() if column not in entry[2] -%}
{%- do columns.update({column: data_type}) -%}
{%- endfor -%}
{%- do tables.append(
    {"table": entry[0], "year": entry[1], "columns": columns, "types": types, "period_column": entry[3]}
) -%}
{%- endfor -%}
{%- do history.update({name: tables}) -%}
{%- endfor -%}
{{ return(history[template] if template is not none else history) }}
{% endmacro %}

{#- A column of one table of the history, read through `alias`; `cast(null as <type>)` in a year that lacks it. A
    column the template never had is a compile error. -#}
{% macro snds_history_column(table, column, alias) %}
{%- if column in table["columns"] -%}
{{ return(alias ~ "." ~ column) }}
{%- elif column in table["types"] -%}
{{ return("cast(null as " ~ table["types"][column] ~ ")") }}
{%- else -%}
{{ exceptions.raise_compiler_error("snds_history_column: no column " ~ column ~ " in any year of " ~ table["table"]) }}
{%- endif -%}
{% endmacro %}

{#- The values of `columns` of one table of the history as one text key (`text_key`: parts joined with '|'), dates
    as YYYY-MM-DD and numbers as their digits, so that the key reads the same on every engine. -#}
{% macro snds_history_key(table, columns, alias) %}
{%- set parts = [] -%}
{%- for column in columns -%}
{%- set value = snds_history_column(table, column, alias) -%}
{%- set data_type = table["types"][column] -%}
{%- if data_type in ("date", "timestamp") -%}
{%- do parts.append(date_to_text("cast(" ~ value ~ " as date)")) -%}
{%- elif data_type.startswith("varchar") -%}
{%- do parts.append(value) -%}
{%- else -%}
{%- do parts.append("cast(" ~ value ~ " as varchar(40))") -%}
{%- endif -%}
{%- endfor -%}
{{ return(text_key(parts)) }}
{% endmacro %}
"""


def _year_order(table: PhysicalTable) -> tuple[int, int]:
    # Archives and PMSI years in order; the current DCIR table (no year) holds the latest years, so it comes last.
    return (1, 0) if table.year is None else (0, table.year)


def history_templates(catalog: Catalog) -> dict[str, list[PhysicalTable]]:
    """Every template with yearly tables or archives, with its physical tables in year order."""
    grouped: dict[str, list[PhysicalTable]] = {}
    for table in catalog.tables:
        grouped.setdefault(table.template.name, []).append(table)
    return {
        name: sorted(tables, key=_year_order)
        for name, tables in sorted(grouped.items())
        if any(t.year is not None for t in tables)
    }


def render_history_macro(catalog: Catalog) -> dict[PurePosixPath, str]:
    lines = []
    for name, tables in history_templates(catalog).items():
        types: dict[str, str] = {}
        for spec in tables[0].template.columns:  # dictionary order
            for table in tables:
                column = next((c for c in table.columns if c.name == spec.name), None)
                if column is not None:
                    types.setdefault(column.name, column.data_type)
        entries = []
        for table in tables:
            have = {c.name for c in table.columns}
            missing = [c for c in types if c not in have]
            period = table.policy.period_column if table.policy.name == APPEND else None
            entries.append(
                f"[{json.dumps(table.name)}, {json.dumps(table.year)}, {json.dumps(missing)}, {json.dumps(period)}]"
            )
        lines.append(
            f'    {json.dumps(name)}: {{"types": {json.dumps(types, separators=(", ", ": "))},\n'
            f'        "tables": [{", ".join(entries)}]}}'
        )
    body = ",\n".join(lines)
    text = (
        f"{{# {HEADER} #}}\n"
        "{# Templates with yearly tables (PMSI) or archives (DCIR): per template, its columns of every year with\n"
        "   their types, and its physical tables in year order (the current DCIR table last), each with the columns\n"
        "   it lacks and, for a table delivered by flow month, the column of its month.\n"
        "   Read through snds_table_history(template). #}\n"
        + json_macro("snds_table_history_facts", f"{{\n{body}\n}}")
        + _MACROS
    )
    return {HISTORY_MACRO: text}
