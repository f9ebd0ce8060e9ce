{#
    A project's correspondence from platform pseudonyms to its own pseudonyms (NUM_ENQ, NUM_ENQ_IDT ...):
    one row per distinct non-null value of `column` in `relation`, derived with the project's key (loaded by
    `snds keys init --project <id>`), so that two projects' pseudonyms of one person never match. The PMSI's
    placeholders for an unknown patient stay as they are. Use it as a model that the project's extracts join,
    with the hook `assert_one_active_key('project:<id>', 'person')`; it stays on the platform.
#}
{% macro project_pseudonyms(project_id, relation, column, pseudonym_column='NUM_ENQ') -%}
{%- if not modules.re.fullmatch('[A-Za-z0-9][A-Za-z0-9_]{0,47}', project_id | string) -%}
{%- set message = " must be 1 to 48 letters, digits or _, starting with a letter or digit" -%}
{{ exceptions.raise_compiler_error("project_pseudonyms: project id " ~ project_id ~ message) }}
{%- endif -%}
{%- set placeholders = var('snds_person_placeholders') -%}
{%- set pseudonym = keyed_pseudonym('identified.platform_pseudonym', 'project_key') -%}
select
    identified.platform_pseudonym,
    cast(
        case
            when identified.platform_pseudonym in ('{{ placeholders | join("', '") }}')
                then identified.platform_pseudonym
            else {{ pseudonym }}
        end as varchar({{ var('snds_pseudonym_length') }})
    ) as {{ pseudonym_column }}
from (
    select distinct {{ column }} as platform_pseudonym
    from {{ relation }}
    where {{ column }} is not null
) identified
cross join (
    select
        ipad,
        opad
    from {{ ref('pseudonymisation_keys') }}
    where key_scope = 'project:{{ project_id }}' and key_domain = 'person' and key_status = 'active'
) project_key
{%- endmacro %}
