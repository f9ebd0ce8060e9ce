{#
    A hook that stops the model with a clear message unless `scope` has exactly one active key for `domain`:
    without it the correspondence would be empty and identifiers would become nulls. Runs under `dbt run`
    too, where tests (one_active_key) do not.
#}
{% macro assert_one_active_key(scope, domain) -%}
{{ return(adapter.dispatch('assert_one_active_key', 'snds')(scope, domain)) }}
{%- endmacro %}

{% macro key_missing_message(scope, domain) -%}
{%- set message = "pseudonymisation needs exactly one active " ~ scope ~ " key for " ~ domain ~ " identifiers" -%}
{%- if scope.startswith('project:') -%}
{%- set project_id = scope[8:] -%}
{{ return(
    message ~ ": run `snds keys init --project " ~ project_id ~ "`, unless the project was closed (its key is then"
    ~ " retired for good: `snds audit --project " ~ project_id ~ "`)"
) }}
{%- endif -%}
{{ return(message ~ ": run `snds keys init`") }}
{%- endmacro %}

{% macro default__assert_one_active_key(scope, domain) -%}
select case
    when (
        select count(*) from {{ ref('pseudonymisation_keys') }}
        where key_scope = '{{ scope }}' and key_domain = '{{ domain }}' and key_status = 'active'
    ) <> 1
    then error('{{ key_missing_message(scope, domain) }}')
end as key_check
{%- endmacro %}

{% macro oracle__assert_one_active_key(scope, domain) -%}
declare
    active_keys number;
begin
    select count(*) into active_keys from {{ ref('pseudonymisation_keys') }}
    where key_scope = '{{ scope }}' and key_domain = '{{ domain }}' and key_status = 'active';
    if active_keys <> 1 then
        raise_application_error(-20001, '{{ key_missing_message(scope, domain) }}');
    end if;
end;
{%- endmacro %}

{% macro postgres__assert_one_active_key(scope, domain) -%}
do $assert$
begin
    if (
        select count(*) from {{ ref('pseudonymisation_keys') }}
        where key_scope = '{{ scope }}' and key_domain = '{{ domain }}' and key_status = 'active'
    ) <> 1 then
        raise exception '{{ key_missing_message(scope, domain) }}';
    end if;
end
$assert$
{%- endmacro %}
