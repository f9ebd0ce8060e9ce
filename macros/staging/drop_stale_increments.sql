{#
on-run-start: before an incremental model of the base is built, its table is dropped when what it holds was
built from another definition (dbt's checksum of the model's file: a catalog change; for the event layer, of its
file and every model it reads: model_definition) or under another platform key (a rotation), or by no recorded
build (a table from before incremental staging); an event-layer model also when a table it reads is dropped.
dbt then builds it in full, from every promoted delivery. What the dropped tables, and the absent ones, had applied is forgotten here,
in one statement per 500 models, so that their first build runs no pre-hook statement. Only selected models are
touched, and only by `dbt run` or `dbt build` (`dbt compile` renders the hook too: it must not connect, for the
Oracle offline compile).
#}
{% macro drop_stale_increments() -%}
{%- if execute and flags.WHICH in ('run', 'build', 'retry') -%}
{%- set increments = [] -%}
{%- for unique_id in selected_resources if unique_id.startswith('model.') -%}
{%- if graph.nodes[unique_id].config.materialized == 'incremental' -%}
{%- do increments.append(graph.nodes[unique_id]) -%}
{%- endif -%}
{%- endfor -%}
{%- set builds_relation = adapter.get_relation(
    database=target.database, schema='landing', identifier='model_builds'
) -%}
{%- if increments and builds_relation is not none -%}
{%- set builds = {} -%}
{%- for row in run_query('select MODEL_NAME, DEFINITION_SHA256, KEY_IDS from ' ~ builds_relation) -%}
{%- do builds.update({row[0]: row}) -%}
{%- endfor -%}
{%- set active_key = run_query('select ' ~ active_platform_key()).columns[0].values()[0] -%}
{#- What holds pseudonyms: the correspondences, the models that read them, and the event layer (person_id). -#}
{%- set pseudonymised = ['model.snds.person_pseudonyms', 'model.snds.professional_pseudonyms'] -%}
{%- set dropped = {} -%}
{%- set built_in_full = [] -%}
{%- set stale = {} -%}  {#- alias: (relation, reason) -#}
{%- set relations = {} -%}
{%- for node in increments -%}
{%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
{%- do relations.update({node.alias: relation}) -%}
{%- set build = builds.get(node.alias) -%}
{%- set keyed = node.unique_id in pseudonymised or is_event_increment(node)
            or node.depends_on.nodes | select('in', pseudonymised) | list | length > 0 -%}
{%- if relation is none -%}
{%- do built_in_full.append(node.alias) -%}
{%- elif build is none -%}
{%- do stale.update({node.alias: (relation, 'no recorded build')}) -%}
{%- elif build[1] != model_definition(node.unique_id) -%}
{%- do stale.update({node.alias: (relation, 'definition changed')}) -%}
{%- elif keyed and build[2] != active_key -%}
{%- do stale.update({node.alias: (relation, 'platform key changed')}) -%}
{%- endif -%}
{%- endfor -%}
{#- An event-layer model that reads a table rebuilt in full is rebuilt too: its rows came from the former table. -#}
{%- set event_tables = event_model_tables() if stale else {} -%}
{%- for node in increments if node.alias in event_tables and node.alias not in stale -%}
{%- if event_tables[node.alias].tables | select('in', stale) | list -%}
{%- set relation = relations[node.alias] -%}
{%- do stale.update({node.alias: (relation, 'a table it reads is rebuilt in full')}) if relation is not none -%}
{%- endif -%}
{%- endfor -%}
{%- for alias, entry in stale.items() -%}
{%- do adapter.drop_relation(entry[0]) -%}
{%- do dropped.setdefault(entry[1], []).append(alias) -%}
{%- do built_in_full.append(alias) -%}
{%- endfor -%}
{#- A model built in full applies every promoted delivery: forget what its table (dropped, or gone) had applied. -#}
{%- do forget_models_applied(built_in_full) -%}
{%- do commit_hook_work() -%}  {#- the models' own connections must see the tables gone -#}
{%- for reason, names in dropped.items() -%}
{%- do log(
            names | length ~ " incremental models rebuilt in full (" ~ reason ~ "): " ~ names[:5] | join(", ")
            ~ (" ..." if names | length > 5 else ""), info=true
        ) -%}
{%- endfor -%}
{%- endif -%}
{%- endif -%}
{%- endmacro %}
