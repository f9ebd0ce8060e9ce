{#
    Incremental staging. Each model of the base and each pseudonym correspondence applies only the promoted
    deliveries it has not applied yet (the view `pending_deliveries`, over landing.applied_deliveries), by its
    table's delivery policy: `append` inserts the new deliveries' rows; `replace_year` and `snapshot` replace the
    table with its latest promoted delivery, when that one is new. It all happens in one transaction per model
    (dbt's incremental materialization: pre-hook, insert, post-hooks). A full build (the first, `--full-refresh`,
    or a changed definition or key: drop_stale_increments) first forgets what the model applied, so both paths run
    the same SQL over the same deliveries. Nothing here reads the database at compile time.
#}

{% macro checked_model_name(name) -%}
{%- if not modules.re.fullmatch('[A-Za-z][A-Za-z0-9_]{0,127}', name) -%}
{{ exceptions.raise_compiler_error("not a model or table name: " ~ name) }}
{%- endif -%}
{{ return(name) }}
{%- endmacro %}

{#- Pre-hook. An incremental build of a replaced table empties it when a newer delivery is pending; a full refresh
    forgets what the model applied, in the transaction that rebuilds it. A table dropped or never built had its
    applied deliveries forgotten by drop_stale_increments, so its first build runs no hook statement. (is_incremental()
    and should_full_refresh() are decided at build time only, never at compile time.) -#}
{% macro before_applying_deliveries() -%}
{%- if is_incremental() -%}
{{ empty_replaced_table() }}
{%- elif should_full_refresh() -%}
{{ forget_applied_deliveries() }}
{%- endif -%}
{%- endmacro %}

{#- What the models `names` applied, forgotten (a model built in full applies every promoted delivery), in one
    statement per models_per_statement() models; for a run hook (drop_stale_increments, create_empty_increments). -#}
{% macro forget_models_applied(names) -%}
{%- set applied = landing_relation('applied_deliveries') -%}
{%- for chunk in names | batch(models_per_statement()) -%}
{%- set literals = [] -%}
{%- for name in chunk -%}
{%- do literals.append("'" ~ checked_model_name(name) ~ "'") -%}
{%- endfor -%}
{%- do run_query('delete from ' ~ applied ~ ' where MODEL_NAME in (' ~ literals | join(', ') ~ ')') -%}
{%- endfor -%}
{%- endmacro %}

{% macro forget_applied_deliveries() -%}
delete from {{ source('landing', 'applied_deliveries') }} where MODEL_NAME = '{{ checked_model_name(this.identifier) }}'
{%- endmacro %}

{% macro empty_replaced_table() -%}
delete from {{ this }} where exists (
    select 1 from {{ ref('pending_deliveries') }} pending
    where pending.MODEL_NAME = '{{ checked_model_name(this.identifier) }}' and pending.REPLACES = 1
)
{%- endmacro %}

{#- Post-hook: the deliveries just applied (the same pending set: the transaction has not recorded them yet), with
    the run's start time: what the run's tests read (tested_rows.sql). `pending`: the view of what the model had to
    apply (pending_event_deliveries for the event layer). -#}
{% macro record_applied_deliveries(pending='pending_deliveries') -%}
{%- set name = checked_model_name(this.identifier) -%}
insert into {{ source('landing', 'applied_deliveries') }} (MODEL_NAME, DELIVERY_ID, APPLIED_AT)
select distinct pending.MODEL_NAME, pending.DELIVERY_ID, {{ run_started_literal() }}
from {{ ref(pending) }} pending
where pending.MODEL_NAME = '{{ name }}'
{%- endmacro %}

{#- on-run-end: the definition (dbt's checksum of the model's file) and the active platform key of every incremental
    model the run built, in one statement per 500 models rather than one per model. drop_stale_increments compares
    them with the next build's (the key only for a model that holds pseudonyms). A run stopped before its end
    leaves a model's previous record, or none: its next build is then a full one, never a wrong increment. -#}
{% macro record_model_builds() -%}
{%- if execute and flags.WHICH in ('run', 'build', 'retry') -%}
{%- set built = [] -%}
{%- for result in results if result.status == 'success' and result.node.resource_type == 'model' -%}
{%- if result.node.config.materialized == 'incremental' -%}
{%- do built.append(result.node) -%}
{%- endif -%}
{%- endfor -%}
{%- do record_builds(built) -%}
{%- do commit_hook_work() if built -%}
{%- endif -%}
{%- endmacro %}

{#- The builds of `nodes` recorded (merge_model_builds), one statement per models_per_statement() models; for a run
    hook (record_model_builds, create_empty_increments). -#}
{% macro record_builds(nodes) -%}
{%- for chunk in nodes | batch(models_per_statement()) -%}
{%- do run_query(merge_model_builds(chunk)) -%}
{%- endfor -%}
{%- endmacro %}

{#- How many models a run hook's statement names at most (a statement per model would cost a round trip each). -#}
{% macro models_per_statement() -%}
{{ return(500) }}
{%- endmacro %}

{% macro merge_model_builds(nodes) -%}
merge into {{ landing_relation('model_builds') }} builds
using (
    select built.MODEL_NAME, built.DEFINITION_SHA256, {{ active_platform_key() }} as KEY_IDS, current_timestamp as BUILT_AT
    from ({{ model_build_rows(nodes) }}) built
) built
on (builds.MODEL_NAME = built.MODEL_NAME)
when matched then update set
    DEFINITION_SHA256 = built.DEFINITION_SHA256, KEY_IDS = built.KEY_IDS, BUILT_AT = built.BUILT_AT
when not matched then insert (MODEL_NAME, DEFINITION_SHA256, KEY_IDS, BUILT_AT)
    values (built.MODEL_NAME, built.DEFINITION_SHA256, built.KEY_IDS, built.BUILT_AT)
{%- endmacro %}

{#- One row per model: its name and definition (model_definition), as checked literals (a union: Oracle has no
    VALUES list). -#}
{% macro model_build_rows(nodes) -%}
{%- for node in nodes %}
{%- set definition = checked_checksum(model_definition(node.unique_id)) %}
{{ 'union all ' if not loop.first }}select
    cast('{{ checked_model_name(node.alias) }}' as varchar(128)) as MODEL_NAME,
    cast('{{ definition }}' as varchar(64)) as DEFINITION_SHA256{{ from_no_table() }}
{%- endfor %}
{%- endmacro %}

{% macro checked_checksum(checksum) -%}
{%- if not modules.re.fullmatch('[0-9a-f]{64}|[0-9a-f]{32}', checksum) -%}
{{ exceptions.raise_compiler_error("not a SHA-256 or MD5 digest: " ~ checksum) }}
{%- endif -%}
{{ return(checksum) }}
{%- endmacro %}

{#- A select of constants: Oracle needs a table to select from. -#}
{% macro from_no_table() -%}
{{ return(adapter.dispatch('from_no_table', 'snds')()) }}
{%- endmacro %}

{% macro default__from_no_table() -%}{%- endmacro %}

{% macro oracle__from_no_table() %} from dual{% endmacro %}

{#- A bookkeeping table of the landing schema, for a macro that cannot `source` it (a hook, a test's subquery). -#}
{% macro landing_relation(identifier) -%}
{{ return(api.Relation.create(database=target.database, schema='landing', identifier=identifier)) }}
{%- endmacro %}

{#- The active platform key's identifier, read from the key store (a hook cannot `ref` the keys view). -#}
{% macro active_platform_key() -%}
{%- set key_material = api.Relation.create(database=target.database, schema='keys', identifier='key_material') -%}
(select min(key_id) from {{ key_material }} where key_scope = 'platform' and key_status = 'active')
{%- endmacro %}
