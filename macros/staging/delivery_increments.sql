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

{#- Pre-hook. A full build starts from nothing applied; an incremental build of a replaced table empties it when
    a newer delivery is pending. (is_incremental() runs at build time only, never at compile time.) -#}
{% macro before_applying_deliveries() -%}
{{ forget_applied_deliveries() if not is_incremental() else empty_replaced_table() }}
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

{#- Post-hook: the deliveries just applied (the same pending set: the transaction has not recorded them yet). -#}
{% macro record_applied_deliveries() -%}
{%- set name = checked_model_name(this.identifier) -%}
insert into {{ source('landing', 'applied_deliveries') }} (MODEL_NAME, DELIVERY_ID, APPLIED_AT)
select distinct pending.MODEL_NAME, pending.DELIVERY_ID, current_timestamp
from {{ ref('pending_deliveries') }} pending
where pending.MODEL_NAME = '{{ name }}'
{%- endmacro %}

{#- Post-hook: the definition (dbt's checksum of the model's file) and the active platform key. drop_stale_increments
    compares them with the next build's (the key only for a model that holds pseudonyms). -#}
{% macro record_model_build() -%}
{{ return(adapter.dispatch('record_model_build', 'snds')()) }}
{%- endmacro %}

{% macro default__record_model_build() -%}
merge into {{ source('landing', 'model_builds') }} builds
using ({{ model_build_row() }}) built
on (builds.MODEL_NAME = built.MODEL_NAME)
when matched then update set
    DEFINITION_SHA256 = built.DEFINITION_SHA256, KEY_IDS = built.KEY_IDS, BUILT_AT = built.BUILT_AT
when not matched then insert (MODEL_NAME, DEFINITION_SHA256, KEY_IDS, BUILT_AT)
    values (built.MODEL_NAME, built.DEFINITION_SHA256, built.KEY_IDS, built.BUILT_AT)
{%- endmacro %}

{% macro model_build_row() -%}
{{ return(adapter.dispatch('model_build_row', 'snds')()) }}
{%- endmacro %}

{% macro default__model_build_row() -%}
select
    cast('{{ checked_model_name(this.identifier) }}' as varchar(128)) as MODEL_NAME,
    cast('{{ model.checksum.checksum }}' as varchar(64)) as DEFINITION_SHA256,
    cast({{ active_platform_key() }} as varchar(256)) as KEY_IDS,
    current_timestamp as BUILT_AT
{%- endmacro %}

{% macro oracle__model_build_row() -%}
{{ default__model_build_row() }} from dual
{%- endmacro %}

{% macro active_platform_key() -%}
(select min(key_id) from {{ ref('pseudonymisation_keys') }} where key_scope = 'platform' and key_status = 'active')
{%- endmacro %}
