{#
    SQL that appends one event to `audit.events` (the append-only trail the `snds` commands also write), for a
    hook: `action`, `object` and `outcome` are the platform's own words, `detail` a dict written as JSON. The
    actor is the operating system user running dbt.
#}
{% macro audit_event(action, object, outcome, detail) -%}
insert into audit.events (EVENT_AT, ACTOR, ACTION, OBJECT, OUTCOME, DETAIL)
values (
    cast({{ dbt.current_timestamp() }} as timestamp),
    '{{ env_var("USER", "dbt") | replace("'", "''") }}',
    '{{ action }}',
    '{{ object }}',
    '{{ outcome }}',
    '{{ tojson(detail, sort_keys=true) | replace("'", "''") }}'
)
{%- endmacro %}
