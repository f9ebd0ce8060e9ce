"""A project's cohort definition compiled to plain SQL over the marts `events` and `persons`.

The SQL is written out in the generated models (`models/projects/<id>/`), where a reviewer reads exactly what runs.
It is portable (DuckDB, PostgreSQL, Oracle): ANSI date literals, `date + days`, `extract`, `greatest`/`least`,
and no engine function. Every value from the definition reaches the SQL as a checked literal: codes and names
passed the definition's patterns, and are quoted by `snds.sql.sql_literal` all the same.

Semantics (written in docs/projects.md): an event occurs in a period when its span [start_date, end_date] meets
it, on the later of its start and the period's start; occurrences are event rows (two dispensing lines on one
day are two dispensings); a rule's window is the study period or a range of days around the index date.
"""

from __future__ import annotations

from datetime import date

from snds.projects.definition import CodeSet, Cohort, Criterion, ProjectDefinition, Rule
from snds.sql import sql_literal

LINKAGE_MATCHES = "linkage_matches"  # the model of a linked cohort's matched subjects (snds.projects.linkage_models)


def date_literal(day: date) -> str:
    return f"date '{day.isoformat()}'"


def code_set_condition(code_set: CodeSet, alias: str) -> str:
    """SQL: the event `alias` carries a code of the set (codes exactly, prefixes, minus the excluded prefixes)."""
    wanted = []
    if code_set.codes:
        wanted.append(f"{alias}.code in ({', '.join(sql_literal(c) for c in code_set.codes)})")
    wanted += [f"{alias}.code like {sql_literal(p + '%')}" for p in code_set.prefixes]
    condition = f"{alias}.code_system = {sql_literal(code_set.system)} and ({' or '.join(wanted)})"
    return condition + "".join(f" and {alias}.code not like {sql_literal(e + '%')}" for e in code_set.exclude)


def criterion_condition(criterion: Criterion, cohort: Cohort, alias: str = "events") -> str:
    """SQL: the event `alias` meets the criterion (domain, sources, diagnosis positions, code set)."""
    parts = [f"{alias}.domain = {sql_literal(criterion.domain)}"]
    if criterion.sources:
        parts.append(f"{alias}.source in ({', '.join(sql_literal(s) for s in criterion.sources)})")
    if criterion.positions:
        parts.append(f"{alias}.qualifier in ({', '.join(sql_literal(p) for p in criterion.positions)})")
    parts.append(f"({code_set_condition(cohort.code_set(criterion.code_set), alias)})")
    return " and ".join(parts)


def in_period(start: date, end: date, alias: str = "events") -> str:
    return f"{alias}.start_date <= {date_literal(end)} and {alias}.end_date >= {date_literal(start)}"


def _window(rule: Rule, definition: ProjectDefinition) -> str:
    if rule.window.study:
        return in_period(definition.study.start, definition.study.end)
    return (
        f"events.start_date between candidates.index_date + ({rule.window.from_days}) "
        f"and candidates.index_date + ({rule.window.to_days})"
    )


def _count_ctes(number: int, rule: Rule, definition: ProjectDefinition) -> list[str]:
    """CTEs `rule_<n>`: per candidate, the occurrences the rule counts (the most within `within_days`, if set)."""
    condition = criterion_condition(rule.criterion, definition.cohort)
    matched = (
        f"rule_{number}_events as (\n"
        f"    -- {rule.name}\n"
        "    select candidates.person_id, candidates.index_date, events.start_date\n"
        "    from candidates\n"
        "    inner join events on candidates.person_id = events.person_id\n"
        f"    where {condition}\n"
        f"        and {_window(rule, definition)}\n"
        ")"
    )
    if rule.within_days is None:
        counted = (
            f"rule_{number} as (\n"
            "    select person_id, index_date, count(*) as occurrences\n"
            f"    from rule_{number}_events\n"
            "    group by person_id, index_date\n"
            ")"
        )
        return [matched, counted]
    spans = (
        f"rule_{number}_spans as (\n"
        f"    -- occurrences within {rule.within_days} days from each one\n"
        "    select first_one.person_id, first_one.index_date, first_one.start_date, count(*) as occurrences\n"
        f"    from rule_{number}_events first_one\n"
        f"    inner join rule_{number}_events later_one\n"
        "        on first_one.person_id = later_one.person_id\n"
        "        and first_one.index_date = later_one.index_date\n"
        "        and later_one.start_date between first_one.start_date\n"
        f"        and first_one.start_date + {rule.within_days}\n"
        "    group by first_one.person_id, first_one.index_date, first_one.start_date\n"
        ")"
    )
    counted = (
        f"rule_{number} as (\n"
        "    select person_id, index_date, max(occurrences) as occurrences\n"
        f"    from rule_{number}_spans\n"
        "    group by person_id, index_date\n"
        ")"
    )
    return [matched, spans, counted]


def rule_passes(number: int, rule: Rule) -> str:
    """SQL over the candidates table: the candidate keeps the rule."""
    column = f"rule_{number}_occurrences"
    tests = []
    if rule.min_count is not None:
        tests.append(f"{column} >= {rule.min_count}")
    if rule.max_count is not None:
        tests.append(f"{column} <= {rule.max_count}")
    return " and ".join(tests) or "1 = 1"


def age_passes(cohort: Cohort) -> str | None:
    if cohort.age is None:
        return None
    tests = []
    if cohort.age.min is not None:
        tests.append(f"age_at_index >= {cohort.age.min}")
    if cohort.age.max is not None:
        tests.append(f"age_at_index <= {cohort.age.max}")
    return " and ".join(tests)


def sex_passes(cohort: Cohort) -> str | None:
    return f"sex in ({', '.join(str(s) for s in cohort.sex)})" if cohort.sex else None


def _entry_events(definition: ProjectDefinition) -> str:
    """The CTE `entry_events` (person_id, event_date); for a linked cohort, of its linked subjects only, and without
    entry criteria every linked subject at the study start."""
    cohort, study = definition.cohort, definition.study
    linked = "        and events.person_id in (select linked.person_id from linked)\n" if definition.linkage else ""
    if not cohort.entry.criteria:
        return (
            "entry_events as (\n"
            "    -- entry: every linked subject, at the study start\n"
            f"    select linked.person_id, {date_literal(study.start)} as event_date\n"
            "    from linked\n"
            ")"
        )
    entry = " or ".join(f"({criterion_condition(c, cohort)})" for c in cohort.entry.criteria)
    occurrence = "the first occurrence" if cohort.entry.occurrence == "first" else "every occurrence"
    if cohort.entry.starts_in_study:
        dated = "events.start_date"
        where = f"events.start_date between {date_literal(study.start)} and {date_literal(study.end)}"
    else:
        dated = f"greatest(events.start_date, {date_literal(study.start)})"
        where = in_period(study.start, study.end)
    return (
        "entry_events as (\n"
        f"    -- entry: {occurrence} {_entry_period(cohort)}\n"
        f"    select events.person_id, {dated} as event_date\n"
        "    from events\n"
        f"    where {where}\n"
        f"        and ({entry})\n"
        f"{linked}"
        ")"
    )


def candidates_sql(definition: ProjectDefinition) -> str:
    """The body of the candidates model: one row per (person, possible index date), with what each rule counted."""
    cohort = definition.cohort
    if cohort.entry.occurrence == "first":
        picked = "select person_id, min(event_date) as index_date\n    from entry_events\n    group by person_id"
    else:
        picked = "select distinct person_id, event_date as index_date\n    from entry_events"
    ctes = [
        "events as (\n    select * from {{ ref('events') }}\n)",
        "persons as (\n    select * from {{ ref('persons') }}\n)",
    ]
    if definition.linkage is not None:
        matches = model_name(definition, LINKAGE_MATCHES)
        ctes.append(f"linked as (\n    select person_id from {{{{ ref('{matches}') }}}}\n)")
    ctes += [_entry_events(definition), f"candidates as (\n    {picked}\n)"]
    for number, rule in enumerate(cohort.inclusion, start=1):
        ctes += _count_ctes(number, rule, definition)
    rules = range(1, len(cohort.inclusion) + 1)
    counts = "".join(f"        coalesce(rule_{n}.occurrences, 0) as rule_{n}_occurrences,\n" for n in rules)
    joins = "".join(
        f"    left join rule_{n}\n"
        f"        on candidates.person_id = rule_{n}.person_id and candidates.index_date = rule_{n}.index_date\n"
        for n in rules
    )
    final = (
        "final as (\n"
        "    select\n"
        "        candidates.person_id,\n"
        "        candidates.index_date,\n"
        f"{counts}"
        "        extract(year from candidates.index_date) - persons.birth_year\n"
        "        - case when extract(month from candidates.index_date) < persons.birth_month then 1 else 0 end\n"
        "            as age_at_index,\n"
        "        persons.sex,\n"
        "        persons.death_date\n"
        "    from candidates\n"
        "    left join persons on candidates.person_id = persons.person_id\n"
        f"{joins}"
        ")"
    )
    return "with\n\n" + ",\n\n".join([*ctes, final]) + "\n\nselect * from final\n"


def selected_sql(definition: ProjectDefinition) -> str:
    """The body of the selected model: each person's first candidate that keeps every rule, and the follow-up end."""
    rules = attrition_steps(definition)[1:]  # the first step is having an entry event: every candidate has
    keeps = " and ".join(f"({condition})" for _, condition in rules) or "1 = 1"
    follow, study_end = definition.cohort.follow_up, date_literal(definition.study.end)
    if follow.end == "study_end":
        end = study_end
    elif follow.end == "death_or_study_end":
        end = f"least(coalesce(candidates.death_date, {study_end}), {study_end})"
    else:
        last = f"kept.index_date + {follow.days}"
        end = f"least(coalesce(candidates.death_date, {last}), {last})"
    return (
        "with\n\n"
        "candidates as (\n    select * from {{ ref('" + model_name(definition, "candidates") + "') }}\n),\n\n"
        "kept as (\n"
        "    select person_id, min(index_date) as index_date\n"
        "    from candidates\n"
        f"    where {keeps}\n"
        "    group by person_id\n"
        "),\n\n"
        "final as (\n"
        "    select\n"
        "        kept.person_id,\n"
        "        kept.index_date,\n"
        f"        {end} as end_of_followup\n"
        "    from kept\n"
        "    inner join candidates\n"
        "        on kept.person_id = candidates.person_id and kept.index_date = candidates.index_date\n"
        ")\n\n"
        "select * from final\n"
    )


def _entry_period(cohort: Cohort) -> str:
    return "starting in the study period" if cohort.entry.starts_in_study else "in the study period"


def attrition_steps(definition: ProjectDefinition) -> list[tuple[str, str]]:
    """(description, condition over candidates) per step, each step keeping the conditions before it."""
    cohort, linkage = definition.cohort, definition.linkage
    first = f"an entry event {_entry_period(cohort)} ({cohort.entry.occurrence} occurrence)"
    if linkage is not None:
        linked = f"linked to the external cohort ({linkage.protocol} protocol)"
        first = linked if not cohort.entry.criteria else f"{linked}, with {first}"
    steps = [(first, "1 = 1")]
    steps += [(r.name, rule_passes(n, r)) for n, r in enumerate(cohort.inclusion, start=1)]
    age, sex = age_passes(cohort), sex_passes(cohort)
    if age:
        steps.append((f"age at index: {age.replace('age_at_index ', '')}", age))
    if sex:
        steps.append((f"sex: {sex.replace('sex ', '')}", sex))
    return steps


def model_name(definition: ProjectDefinition, part: str) -> str:
    return f"{definition.id.lower()}__{part}"
