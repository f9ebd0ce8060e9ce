"""The models of a project's linkage with an external cohort (`linkage` in its definition; docs/linkage.md).

Restricted, in schema `keys` (they hold platform pseudonyms): `<id>__linkage_subjects` (the cohort's subjects and
their criteria as text, from the project's import), `<id>__linkage_base` (the base's persons and their criteria:
one row per person and stay), `<id>__linkage_plan` (the cascade's passes, measured on the base),
`<id>__linkage_pass_<n>` (each subject considered by pass n and its outcome), `<id>__linkage_matches` (each matched
subject and its person). In the project's schema: `linkage` (the match report, per pass and in total).

The direct protocol has one pass: the import's NUM_ENQ (the CNAM's pseudonym, pseudonymised at import into the
project's) against the project pseudonym of every person of the base.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from snds.dbt import DUCKDB_ONLY
from snds.projects import cohort_sql
from snds.projects.definition import CASCADE, DIRECT, PROBABILISTIC, ProjectDefinition
from snds.projects.model_properties import column as _column
from snds.projects.quasi_identifiers import DATE, PERSONS_TABLE, QUASI_IDENTIFIERS, STAYS_TEMPLATE, person_column

SUBJECT_TYPE = "varchar(64)"
REPORT = "linkage"  # the report's relation in the project's schema, and its item in the build record


def model(definition: ProjectDefinition, part: str) -> str:
    return cohort_sql.model_name(definition, f"linkage_{part}")


def matches_model(definition: ProjectDefinition) -> str:
    return cohort_sql.model_name(definition, cohort_sql.LINKAGE_MATCHES)


def report_model(definition: ProjectDefinition) -> str:
    return model(definition, "report")


def pass_models(definition: ProjectDefinition) -> list[str]:
    assert definition.linkage is not None
    return [model(definition, f"pass_{n}") for n in range(1, definition.linkage.passes + 1)]


def _criteria(definition: ProjectDefinition) -> list[str]:
    assert definition.linkage is not None
    return [c.name for c in definition.linkage.criteria]


def _as_text(value: str, criterion: str) -> str:
    quasi = QUASI_IDENTIFIERS[criterion]
    if quasi.kind == DATE:
        return f"{{{{ date_to_text('{value}') }}}}"
    return f"cast({value} as varchar({quasi.length}))"


def _subjects_sql(definition: ProjectDefinition) -> str:
    linkage = definition.linkage
    assert linkage is not None
    columns = [f"    cast(cohort.{linkage.subject} as {SUBJECT_TYPE}) as subject_id"]
    if linkage.protocol == DIRECT:
        columns.append("    cohort.NUM_ENQ")
    columns += [f"    {_as_text('cohort.' + c.column, c.name)} as {c.name}" for c in linkage.criteria]
    return (
        "select\n"
        + ",\n".join(columns)
        + f"\nfrom {{{{ project_import('{linkage.import_name}') }}}} cohort\n"
        + f"where cohort.{linkage.subject} is not null\n"
    )


def _base_sql(definition: ProjectDefinition) -> str:
    """The base's side: each person of IR_BEN_R with its person criteria, times its MCO stays if stays are compared."""
    criteria = _criteria(definition)
    person = [c for c in criteria if not QUASI_IDENTIFIERS[c].of_stay]
    stay = [c for c in criteria if QUASI_IDENTIFIERS[c].of_stay]
    person_columns = ",\n".join(
        f"        {_as_text('beneficiaries.' + QUASI_IDENTIFIERS[c].column, c)} as {c}" for c in person
    )
    ctes = [
        "beneficiaries as (\n"
        "    select\n"
        f"        beneficiaries.{person_column(PERSONS_TABLE)} as person_id"
        + (",\n" if person else "\n")
        + person_columns
        + ("\n" if person else "")
        + f"    from {{{{ ref('{PERSONS_TABLE}') }}}} beneficiaries\n"
        f"    where beneficiaries.{person_column(PERSONS_TABLE)} is not null\n"
        ")"
    ]
    final = "select distinct\n    beneficiaries.person_id" + "".join(f",\n    beneficiaries.{c}" for c in person)
    if stay:
        stays_table = next(t for t in definition.perimeter.tables if t.template == STAYS_TEMPLATE)
        selects = "\n    union all\n".join(
            "    select\n"
            f"        stays.{person_column(STAYS_TEMPLATE)} as person_id,\n"
            + ",\n".join(f"        {_as_text('stays.' + QUASI_IDENTIFIERS[c].column, c)} as {c}" for c in stay)
            + f"\n    from {{{{ ref('{table.name}') }}}} stays"
            for table in stays_table.tables
        )
        ctes.append(f"stays as (\n{selects}\n)")
        final += "".join(f",\n    stays.{c}" for c in stay)
        final += "\nfrom beneficiaries\nleft join stays on beneficiaries.person_id = stays.person_id\n"
    else:
        final += "\nfrom beneficiaries\n"
    return "with\n\n" + ",\n\n".join(ctes) + "\n\n" + final


def _direct_pass_sql(definition: ProjectDefinition) -> str:
    return (
        "with\n\n"
        f"subjects as (\n    select * from {{{{ ref('{model(definition, 'subjects')}') }}}}\n),\n\n"
        "everyone as (\n"
        f"    {{{{ project_pseudonyms('{definition.id}', ref('persons'), 'person_id') | indent(4) }}}}\n"
        "),\n\n"
        "pairs as (\n"
        "    select distinct\n"
        "        subjects.subject_id,\n"
        "        everyone.platform_pseudonym as person_id\n"
        "    from subjects\n"
        "    inner join everyone on subjects.NUM_ENQ = everyone.NUM_ENQ\n"
        "),\n\n"
        "{{ linkage_outcomes(1) }}\n"
    )


def _pairs_py(definition: ProjectDefinition, header: str) -> str:
    """The probabilistic linkage's Python model (dbt-duckdb runs it in dbt's process): Splink's scored pairs."""
    linkage = definition.linkage
    assert linkage is not None
    return (
        header.replace("-- ", "# ") + f'"""{definition.id}: the pairs Splink scores at or above {linkage.threshold} '
        '(snds.projects.probabilistic)."""\n\n'
        "from snds.projects.probabilistic import scored_pairs\n\n\n"
        "def model(dbt, session):\n"
        f'    dbt.config(schema="keys", materialized="table", tags=["{DUCKDB_ONLY}"])\n'
        f'    subjects = dbt.ref("{model(definition, "subjects")}").to_arrow_table()\n'
        f'    base = dbt.ref("{model(definition, "base")}").to_arrow_table()\n'
        f"    return scored_pairs(subjects, base, {_criteria(definition)!r}, {linkage.threshold!r})\n"
    )


def _probabilistic_pass_sql(definition: ProjectDefinition) -> str:
    return (
        "with\n\n"
        f"subjects as (\n    select * from {{{{ ref('{model(definition, 'subjects')}') }}}}\n),\n\n"
        "pairs as (\n"
        f"    select distinct subject_id, person_id from {{{{ ref('{model(definition, 'pairs')}') }}}}\n"
        "),\n\n"
        "{{ linkage_outcomes(1) }}\n"
    )


def _cascade_pass_sql(definition: ProjectDefinition, number: int) -> str:
    earlier = ", ".join(f"ref('{m}')" for m in pass_models(definition)[: number - 1])
    return (
        f"{{{{ linkage_pass(ref('{model(definition, 'subjects')}'), ref('{model(definition, 'base')}'), "
        f"ref('{model(definition, 'plan')}'), {number}, [{earlier}], {_criteria(definition)!r}) }}}}\n"
    )


def _matches_sql(definition: ProjectDefinition) -> str:
    selects = "\nunion all\n".join(
        f"select subject_id, person_id, pass_number from {{{{ ref('{m}') }}}} where outcome = 'matched'"
        for m in pass_models(definition)
    )
    return selects + "\n"


def _report_sql(definition: ProjectDefinition) -> str:
    linkage = definition.linkage
    assert linkage is not None
    passes = pass_models(definition)
    counted = "\n    union all\n".join(
        "    select\n"
        "        pass_number,\n"
        "        count(*) as considered,\n"
        "        sum(case when outcome = 'matched' then 1 else 0 end) as matched,\n"
        "        sum(case when outcome = 'ambiguous' then 1 else 0 end) as ambiguous\n"
        f"    from {{{{ ref('{m}') }}}}\n"
        "    group by pass_number"
        for m in passes
    )
    if linkage.protocol != CASCADE:
        what = "direct" if linkage.protocol == DIRECT else f"probabilistic, threshold {linkage.threshold}"
        plan = (
            "plan as (\n"
            "    select\n"
            "        cast(1 as numeric(3)) as pass_number,\n"
            f"        cast('{what}' as varchar(200)) as criteria,\n"
            "        cast(null as numeric(19)) as unique_persons,\n"
            "        cast(null as numeric(19)) as persons\n"
            "    from cohort\n"
            ")"
        )
    else:
        plan = (
            "plan as (\n"
            "    select pass_number, criteria, unique_persons, persons\n"
            f"    from {{{{ ref('{model(definition, 'plan')}') }}}}\n"
            ")"
        )
    return (
        "with\n\n"
        "cohort as (\n"
        f"    select count(distinct subject_id) as subjects from {{{{ ref('{model(definition, 'subjects')}') }}}}\n"
        "),\n\n"
        f"{plan},\n\n"
        f"passes as (\n{counted}\n),\n\n"
        "per_pass as (\n"
        "    select\n"
        "        passes.pass_number,\n"
        "        plan.criteria,\n"
        "        plan.unique_persons,\n"
        "        plan.persons,\n"
        "        passes.considered,\n"
        "        passes.matched,\n"
        "        passes.ambiguous\n"
        "    from passes\n"
        "    inner join plan on passes.pass_number = plan.pass_number\n"
        "),\n\n"
        "total as (\n"
        "    select\n"
        "        0 as pass_number,\n"
        "        'all passes' as criteria,\n"
        "        cast(null as numeric(19)) as unique_persons,\n"  # typed: an untyped null is text on PostgreSQL
        "        cast(null as numeric(19)) as persons,\n"
        "        max(cohort.subjects) as considered,\n"
        "        sum(per_pass.matched) as matched,\n"
        f"        sum(case when per_pass.pass_number = {len(passes)} then per_pass.ambiguous else 0 end) as ambiguous\n"
        "    from per_pass\n"
        "    cross join cohort\n"
        "),\n\n"
        "final as (\n"
        "    select\n"
        "        cast(rows_.pass_number as numeric(3)) as pass_number,\n"
        "        cast(rows_.criteria as varchar(200)) as criteria,\n"
        "        cast(cast(rows_.unique_persons as numeric(19, 4)) / nullif(rows_.persons, 0) as numeric(7, 4))\n"
        "            as base_unique_share,\n"
        "        cast(rows_.considered as numeric(19)) as subjects_considered,\n"
        "        cast(rows_.matched as numeric(19)) as matched,\n"
        "        cast(rows_.ambiguous as numeric(19)) as ambiguous,\n"
        "        cast(rows_.considered - rows_.matched - rows_.ambiguous as numeric(19)) as unmatched,\n"
        "        cast(cast(rows_.matched as numeric(19, 4)) / nullif(cohort.subjects, 0) as numeric(7, 4))\n"
        "            as matched_share\n"
        "    from (\n"
        "        select * from per_pass\n"
        "        union all\n"
        "        select * from total\n"
        "    ) rows_\n"
        "    cross join cohort\n"
        ")\n\n"
        "select * from final\n"
    )


def linkage_files(
    definition: ProjectDefinition, root: PurePosixPath, header: str, restricted: str, config: Any, project_schema: str
) -> dict[PurePosixPath, str]:
    """The linkage's model files (`config` renders a dbt config block, `restricted` is the one of `keys`)."""
    linkage = definition.linkage
    assert linkage is not None
    files = {root / f"{model(definition, 'subjects')}.sql": header + restricted + _subjects_sql(definition)}
    if linkage.protocol == DIRECT:
        hook = f"{{{{ assert_one_active_key('project:{definition.id}', 'person') }}}}"
        files[root / f"{model(definition, 'pass_1')}.sql"] = (
            header + config(schema="keys", materialized="table", pre_hook=hook) + _direct_pass_sql(definition)
        )
    elif linkage.protocol == PROBABILISTIC:
        files[root / f"{model(definition, 'base')}.sql"] = header + restricted + _base_sql(definition)
        files[root / f"{model(definition, 'pairs')}.py"] = _pairs_py(definition, header)
        files[root / f"{model(definition, 'pass_1')}.sql"] = header + restricted + _probabilistic_pass_sql(definition)
    else:
        files[root / f"{model(definition, 'base')}.sql"] = header + restricted + _base_sql(definition)
        files[root / f"{model(definition, 'plan')}.sql"] = (
            header + restricted + f"{{{{ linkage_plan(ref('{model(definition, 'base')}'), {_criteria(definition)!r}, "
            f"{linkage.passes}) }}}}\n"
        )
        for number, name in enumerate(pass_models(definition), start=1):
            files[root / f"{name}.sql"] = header + restricted + _cascade_pass_sql(definition, number)
    files[root / f"{matches_model(definition)}.sql"] = header + restricted + _matches_sql(definition)
    files[root / f"{report_model(definition)}.sql"] = (
        header + config(schema=project_schema, materialized="table", alias=REPORT) + _report_sql(definition)
    )
    return files


def linkage_properties(definition: ProjectDefinition) -> list[dict[str, Any]]:
    """The linkage models' descriptions, tests and the report's contract."""
    linkage = definition.linkage
    assert linkage is not None
    protocol = f"the {linkage.protocol} protocol, import {linkage.import_name}"
    unique = ["not_null", "unique"]
    models: list[dict[str, Any]] = [
        {
            "name": model(definition, "subjects"),
            "description": f"{definition.id}: the external cohort's subjects ({protocol}), criteria as text "
            "(restricted).",
            "columns": [{"name": "subject_id", "description": f"The cohort's {linkage.subject}."}],
        }
    ]
    if linkage.protocol != DIRECT:
        models.append(
            {
                "name": model(definition, "base"),
                "description": f"{definition.id}: each person of the base with the linkage's criteria, one row per "
                "person and MCO stay when stays are compared (restricted: platform pseudonyms).",
            }
        )
    if linkage.protocol == PROBABILISTIC:
        models.append(
            {
                "name": model(definition, "pairs"),
                "description": f"{definition.id}: each subject's persons that Splink's Fellegi-Sunter model, trained "
                f"by expectation-maximisation on this data, scores at or above {linkage.threshold} "
                "(snds.projects.probabilistic; DuckDB only).",
            }
        )
    if linkage.protocol == CASCADE:
        models += [
            {
                "name": model(definition, "plan"),
                "description": f"{definition.id}: the cascade's passes: pass 1 compares every criterion, each next "
                "one leaves out the criterion whose absence leaves the most persons of the base with a key no other "
                "person has (measured here, on the data).",
                "columns": [{"name": "pass_number", "data_tests": unique}],
            },
        ]
    for number, name in enumerate(pass_models(definition), start=1):
        models.append(
            {
                "name": name,
                "description": f"{definition.id}: pass {number} of the linkage: each subject still unmatched, "
                "matched (one candidate person, claimed by no other subject), ambiguous (excluded) or unmatched.",
                "columns": [{"name": "subject_id", "data_tests": unique}],
            }
        )
    models += [
        {
            "name": matches_model(definition),
            "description": f"{definition.id}: each matched subject and its person (restricted): a subject matches "
            "one person and a person one subject, over every pass.",
            "columns": [
                {"name": "subject_id", "data_tests": unique},
                {"name": "person_id", "data_tests": unique},
            ],
        },
        {
            "name": report_model(definition),
            "description": f"{definition.id}: the linkage report ({protocol}): per pass (pass 0: all of them) the "
            "subjects considered, matched, ambiguous and unmatched, and the share of the cohort matched.",
            "config": {"contract": {"enforced": True}},
            "columns": [
                _column("pass_number", "numeric(3)", "0 for the total over every pass."),
                _column("criteria", "varchar(200)", "The criteria the pass compares (`direct`: the CNAM's answer)."),
                _column(
                    "base_unique_share",
                    "numeric(7,4)",
                    "Share of the base's persons whose key under these criteria no other person has.",
                ),
                _column("subjects_considered", "numeric(19)"),
                _column("matched", "numeric(19)"),
                _column("ambiguous", "numeric(19)", "Excluded: the key meets several persons, or a person several."),
                _column("unmatched", "numeric(19)"),
                _column("matched_share", "numeric(7,4)", "Matched subjects over the cohort's subjects."),
            ],
        },
    ]
    return models
