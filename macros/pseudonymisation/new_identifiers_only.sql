{#-
    An incremental build of a correspondence hashes only the identifiers it does not hold yet: a monthly delivery
    brings mostly persons and professionals already there, whose pseudonyms do not change. A full build (the
    first, --full-refresh, a rotated key: drop_stale_increments) hashes them all. `is_incremental()` looks the table
    up, so the Oracle offline compile (target oracle_offline, no server) renders the full build's form.
-#}
{% macro new_identifiers_only(identifier) -%}
{%- if target.name != 'oracle_offline' and is_incremental() -%}
and not exists (select 1 from {{ this }} known where known.delivered_identifier = {{ identifier }})
{%- endif -%}
{%- endmacro %}
