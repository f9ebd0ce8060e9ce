{#
    A research project's import (`snds project import ID FILE --as NAME`): the relation
    `project_<id>.import_<name>`, for the models of that project's folder only. The project is the calling model's
    folder (models/projects/<folder>/), so a model reads its own project's imports and never another's; from anywhere
    else the call is refused here, and the build's guard (`project_guard`) refuses such a model before anything runs.
    At run time an import that does not exist is a clear error; the Oracle offline compile (target oracle_offline,
    no server) names the relation without looking it up.
#}
{% macro project_import(name) -%}
{%- if not modules.re.fullmatch('[A-Za-z0-9][A-Za-z0-9_]{0,47}', name | string) -%}
{%- set rule = "1 to 48 letters, digits or _, starting with a letter or digit" -%}
{{ exceptions.raise_compiler_error("project_import: the import name " ~ name ~ " is not accepted: " ~ rule) }}
{%- endif -%}
{%- set fqn = model.fqn if model is mapping and model.fqn is defined else [] -%}
{%- set folders = {} -%}
{%- for project_id, project in snds_projects().items() -%}
{%- do folders.update({project['folder']: (project_id, project['schema'])}) -%}
{%- endfor -%}
{%- if (fqn | length < 4 or fqn[1] != 'projects' or fqn[2] not in folders) and not execute -%}
{# parsed all the same, so that the guard names the model when a build selects it #}
{{ return(api.Relation.create(schema='project_import', identifier='import_' ~ name | lower)) }}
{%- elif fqn | length < 4 or fqn[1] != 'projects' or fqn[2] not in folders -%}
{{ exceptions.raise_compiler_error(
    "project_import('" ~ name ~ "'): only a model of a project's folder (models/projects/<id>/) reads the"
    ~ " project's imports"
) }}
{%- endif -%}
{%- set project_id, schema = folders[fqn[2]] -%}
{%- set identifier = 'import_' ~ name | lower -%}
{%- if execute and target.name != 'oracle_offline' -%}
{%- set found = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) -%}
{%- if found is none -%}
{{ exceptions.raise_compiler_error(
    "project " ~ project_id ~ " has no import " ~ name | lower ~ " (" ~ schema ~ "." ~ identifier ~ "): run `snds"
    ~ " project import " ~ project_id ~ " FILE --as " ~ name | lower ~ "`"
) }}
{%- endif -%}
{{ return(found) }}
{%- endif -%}
{{ return(api.Relation.create(database=target.database, schema=schema, identifier=identifier)) }}
{%- endmacro %}
