{#
    The build's own enforcement of each research project's authorisation, run by `on-run-start` before any
    node is built: when a selected model of `models/projects/<folder>/` breaks its project's definition
    (`snds_projects()`, generated from `projects/<ID>.yml`), the whole invocation fails with every problem
    listed and nothing is built or refreshed (`skip_nodes_if_on_run_start_fails`). The rules read dbt's own
    graph, so hand-written models are held like generated ones:
    - the project's authorisation has not expired;
    - a project model depends only on its own project's models, the tables of its perimeter, the shared
      marts `persons` and `events` (targeting runs on the whole base), the project keys view, the list of
      promoted deliveries (the build record) and the catalog seeds: never on another project, never on a table
      outside the perimeter;
    - every table of the project's schema has an enforced contract, so that its columns are known here, and
      none of them is a platform or CNAM pseudonym (direct identifiers of the catalog, or `person_id`);
    - an extract (`meta.snds_extract`: the SNDS table it copies) holds only columns of its table that the
      perimeter lists, plus the project's pseudonyms (`NUM_ENQ` ...) and, for a linked cohort, its subject number;
    - in an extract, every potential identifier of a kind other than the perimeter's `identifier_kind` carries
      the generic test `generalised` (macros/access/test_generalised.sql) for its own table, failing on error
      over every row (a hand-written extract that forgets `generalise` fails), and `identifier_kind` is one
      kind or none (never a list).
    A project model writes only into its schema or, named `<folder>__...`, into `keys`; no other model writes into
    a project schema.
    A project's imports (`project_<id>.import_<name>`, `snds project import`) are read by its own models only, through
    `project_import('<name>')`: no other model calls that macro, names another project's import in its SQL or reads
    a project schema as a source.
    A closed project (`snds project close`: a `project.close` event in `audit.events`) has no model built again.
    The lookups over the whole graph are made once per invocation, and only when a project model is selected.
#}
{% macro project_guard() -%}
{%- if execute -%}
{%- set problems = project_guard_problems(snds_projects(), run_started_at.strftime('%Y-%m-%d')) -%}
{%- if problems -%}
{%- set message = "research project rules broken, nothing is built:\n  - " ~ problems | join("\n  - ") -%}
{{ exceptions.raise_compiler_error(message) }}
{%- endif -%}
{%- endif -%}
{%- endmacro %}

{#
    The list of problems (empty when every selected project model keeps its project's rules); `today` is
    the run's date, `YYYY-MM-DD`.
#}
{% macro project_guard_problems(projects, today) -%}
{%- set problems = [] -%}
{%- set selected = [] -%}
{%- for unique_id in selected_resources if unique_id.startswith('model.') -%}
{%- set node = graph.nodes[unique_id] -%}
{%- if node.fqn | length > 3 and node.fqn[1] == 'projects' -%}
{%- do selected.append(node) -%}
{%- else -%}
{%- if node.schema.startswith('project_') -%}
{%- do problems.append(
    "model " ~ node.name ~ ": writes into " ~ node.schema ~ ", a project schema, from outside models/projects/<id>/"
) -%}
{%- endif -%}
{%- for problem in project_guard_import_problems(node, none) -%}
{%- do problems.append("model " ~ node.name ~ ": " ~ problem) -%}
{%- endfor -%}
{%- endif -%}
{%- endfor -%}
{%- if not selected -%}
{{ return(problems) }}
{%- endif -%}
{%- set closed = project_guard_closed() -%}
{%- set by_folder = {} -%}
{%- for project_id, project in projects.items() -%}
{%- do by_folder.update({project['folder']: project_id}) -%}
{%- endfor -%}
{%- set identifiers = snds_potential_identifiers() -%}
{%- set direct_anywhere = {} -%}
{%- for entry in identifiers.values() -%}
{%- for name in entry['direct'] -%}
{%- do direct_anywhere.update({name: true}) -%}
{%- endfor -%}
{%- endfor -%}
{%- set generalised_tests = project_guard_generalised_tests() -%}
{%- set kinds = ['birth', 'residence', 'death', 'care_date'] -%}
{%- set pseudonyms = ['NUM_ENQ', 'NUM_ENQ_ANO', 'NUM_ENQ_IDT'] -%}
{%- set reported = {} -%}
{%- for node in selected -%}
{%- set folder = node.fqn[2] -%}
{%- set where = "model " ~ node.name -%}
{%- if folder not in by_folder -%}
{%- do problems.append(
    where ~ ": models/projects/" ~ folder ~ " has no definition projects/<ID>.yml (run `snds project build`)"
) -%}
{%- else -%}
{%- set project_id = by_folder[folder] -%}
{%- set project = projects[project_id] -%}
{%- set where = "project " ~ project_id ~ ", " ~ where -%}
{%- if project_id not in reported -%}
{%- do reported.update({project_id: true}) -%}
{%- if project_id in closed -%}
{%- do problems.append(
    where ~ ": project " ~ project_id ~ " closed on " ~ closed[project_id]
    ~ " (its schema dropped, its key retired: no model of the project is built)"
) -%}
{%- endif -%}
{%- if project['expires'] < today -%}
{%- do problems.append(
    where ~ ": authorisation " ~ project['reference'] ~ " expired on " ~ project['expires']
    ~ " (no model of the project is built)"
) -%}
{%- endif -%}
{%- set kind = project.get('identifier_kind') -%}
{%- if kind is not none and (kind is not string or kind not in kinds) -%}
{%- do problems.append(
    where ~ ": the perimeter's identifier_kind " ~ kind ~ " must be one kind of " ~ kinds | join(", ") ~ ", or none"
) -%}
{%- endif -%}
{%- endif -%}
{%- set relation = (node.alias or node.name) | lower -%}
{%- if node.config.materialized != 'ephemeral' and node.schema not in (project['schema'], 'keys') -%}
{%- do problems.append(
    where ~ ": writes into schema " ~ node.schema ~ "; a project writes only into " ~ project['schema'] ~ " or keys"
) -%}
{%- elif node.config.materialized != 'ephemeral' and node.schema == 'keys' and not relation.startswith(folder ~ '__') -%}
{%- do problems.append(
    where ~ ": a restricted step in keys must be named " ~ folder ~ "__<name> (keys.key_material and the other"
    ~ " projects' tables are never replaced)"
) -%}
{%- endif -%}
{%- set keep_kind = project.get('identifier_kind') -%}
{%- for problem in project_guard_import_problems(node, folder) -%}
{%- do problems.append(where ~ ": " ~ problem) -%}
{%- endfor -%}
{%- for dependency in node.depends_on.nodes -%}
{%- set upstream = graph.nodes.get(dependency) or graph.sources.get(dependency) -%}
{%- set problem = project_guard_dependency_problem(upstream, folder, project, by_folder) -%}
{%- if problem -%}
{%- do problems.append(where ~ ": " ~ problem) -%}
{%- endif -%}
{%- endfor -%}
{%- if node.schema == project['schema'] and node.config.materialized != 'ephemeral' -%}
{%- if not node.config.contract.enforced -%}
{%- do problems.append(
    where ~ ": a table of " ~ project['schema'] ~ " needs an enforced contract (its columns declared)"
) -%}
{%- endif -%}
{%- set extract = node.config.meta.get('snds_extract') -%}
{%- set allowed = project['tables'].get(extract, {}).get('columns', []) if extract else none -%}
{%- set potential = identifiers.get(extract, {}).get('potential', {}) if extract else {} -%}
{%- if extract and extract not in project['tables'] -%}
{%- do problems.append(where ~ ": extract of " ~ extract ~ ", a table outside the perimeter") -%}
{%- endif -%}
{%- for column in node.columns.keys() -%}
{%- set name = column | upper -%}
{%- if name in pseudonyms or name == project.get('subject') -%}
{%- elif name == 'PERSON_ID' or name in direct_anywhere -%}
{%- do problems.append(where ~ ": column " ~ name ~ " is a platform or CNAM pseudonym; use the project's NUM_ENQ") -%}
{%- elif extract and name not in allowed -%}
{%- do problems.append(where ~ ": column " ~ name ~ " of " ~ extract ~ " is outside the perimeter") -%}
{%- elif name in potential and potential[name][0] != keep_kind -%}
{%- set test = generalised_tests.get(node.unique_id ~ "|" ~ name) -%}
{%- set unseen = where ~ ": column " ~ name ~ " is a potential identifier (kind " ~ potential[name][0]
    ~ ") the project may not see: " -%}
{%- if test is none -%}
{%- do problems.append(unseen ~ "it must be generalised (the `generalised` test)") -%}
{%- elif not project_guard_test_is_strict(test, extract) -%}
{%- do problems.append(
    unseen ~ "its `generalised` test must name table_name " ~ extract
    ~ " and keep the default severity, where, limit, error_if and fail_calc"
) -%}
{%- endif -%}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endif -%}
{%- endfor -%}
{{ return(problems) }}
{%- endmacro %}

{#
    The `generalised` tests of the graph by `<attached model id>|<COLUMN>`, read once per invocation.
#}
{% macro project_guard_generalised_tests() -%}
{%- set tests = {} -%}
{%- for node in graph.nodes.values() if node.resource_type == 'test' and node.attached_node -%}
{%- if (node.test_metadata or {}).get('name') == 'generalised' and node.column_name -%}
{%- do tests.update({node.attached_node ~ "|" ~ node.column_name | upper: node}) -%}
{%- endif -%}
{%- endfor -%}
{{ return(tests) }}
{%- endmacro %}

{#
    Whether a `generalised` test checks what the guard relies on: the extract's own table (another table's
    catalog entry may not list the column, and the test would pass on raw values), every row (no `where`,
    no `limit`) and a failure on any row (severity error, error_if `!= 0`, fail_calc `count(*)`).
#}
{% macro project_guard_test_is_strict(test, extract) -%}
{%- set config = test.config -%}
{{ return(
    (test.test_metadata.kwargs or {}).get('table_name') == extract
    and (config.severity or 'error') | lower == 'error'
    and config.where is none
    and config.limit is none
    and (config.fail_calc or 'count(*)') | replace(' ', '') | lower == 'count(*)'
    and (config.error_if or '!= 0') | replace(' ', '') == '!=0'
) }}
{%- endmacro %}

{#
    Why a project model may not depend on `upstream` (a graph node or source), or an empty string: its own
    project's models, its perimeter's tables, the shared marts and the project keys view are allowed.
#}
{% macro project_guard_dependency_problem(upstream, folder, project, by_folder) -%}
{%- if upstream is none -%}
{{ return("depends on a node dbt does not know") }}
{%- endif -%}
{%- set fqn = upstream.fqn -%}
{%- set shared = ['persons', 'events', 'pseudonymisation_keys', 'promoted_deliveries'] -%}
{%- if upstream.resource_type == 'model' and fqn[1] == 'projects' -%}
{%- if fqn[2] == folder -%}
{{ return("") }}
{%- endif -%}
{{ return("depends on " ~ upstream.name ~ ", a model of project " ~ by_folder.get(fqn[2], fqn[2]) ~ "") }}
{%- elif upstream.resource_type == 'model' and fqn[1:3] == ['staging', 'snds'] -%}
{%- set table = upstream.alias or upstream.name -%}
{%- if table in project['tables'] -%}
{{ return("") }}
{%- endif -%}
{{ return("depends on snds." ~ table ~ ", a table outside the perimeter") }}
{%- elif upstream.resource_type == 'model' and upstream.name in shared -%}
{{ return("") }}
{%- elif upstream.resource_type == 'seed' and fqn[1] == 'catalog' -%}
{{ return("") }}
{%- endif -%}
{{ return("depends on " ~ upstream.resource_type ~ " " ~ upstream.name ~ ", outside the perimeter") }}
{%- endmacro %}

{#
    What `node` may not read of the projects' imports (`project_<id>.import_<name>`), as a list of problems: the macro
    `project_import` called from outside a project's folder, an import of another project named in the model's SQL
    (any quoting or spacing around the dot), a source in a project schema read from outside that project. `folder`:
    the node's project folder, or none outside models/projects/.
#}
{% macro project_guard_import_problems(node, folder) -%}
{%- set problems = [] -%}
{%- set outside = " from outside models/projects/" -%}
{%- if folder is none and 'macro.snds.project_import' in node.depends_on.macros -%}
{%- do problems.append("reads a project's import (project_import)" ~ outside ~ "<id>/") -%}
{%- endif -%}
{%- set named = modules.re.findall(
    'project_([a-z0-9_]+)[^a-z0-9_.]{0,3}[.][^a-z0-9_.]{0,3}import_', (node.raw_code or '') | lower
) -%}
{%- for owner in named | unique if owner != folder -%}
{%- if folder is none -%}
{%- do problems.append("reads project_" ~ owner ~ ".import_*, a project's import," ~ outside ~ owner ~ "/") -%}
{%- else -%}
{%- do problems.append("reads project_" ~ owner ~ ".import_*, an import of another project") -%}
{%- endif -%}
{%- endfor -%}
{%- if folder is none -%}
{%- for dependency in node.depends_on.nodes if dependency.startswith('source.') -%}
{%- set source = graph.sources.get(dependency) -%}
{%- if source is not none and ((source.schema or '') | lower).startswith('project_') -%}
{%- do problems.append(
    "reads source " ~ source.source_name ~ "." ~ source.name ~ " in " ~ source.schema | lower ~ ", a project schema,"
    ~ outside ~ "<id>/"
) -%}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{{ return(problems) }}
{%- endmacro %}

{#
    The closed projects, by id, with the day they were closed (`project.close` events of `audit.events`), read when
    the invocation builds, runs or tests (never when it only compiles: the Oracle compile has no database).
#}
{% macro project_guard_closed() -%}
{%- set closed = {} -%}
{%- if flags.WHICH in ['build', 'run', 'test', 'seed', 'snapshot'] -%}
{%- set events = adapter.get_relation(database=target.database, schema='audit', identifier='events') -%}
{%- if events is not none -%}
{%- set query -%}
select OBJECT, min(EVENT_AT) from {{ events }} where ACTION = 'project.close' and OUTCOME = 'done' group by OBJECT
{%- endset -%}
{%- for row in run_query(query) -%}
{%- do closed.update({row[0]: (row[1] | string)[:10]}) -%}
{%- endfor -%}
{%- endif -%}
{%- endif -%}
{{ return(closed) }}
{%- endmacro %}
