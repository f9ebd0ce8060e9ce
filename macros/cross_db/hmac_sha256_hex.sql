{#
    HMAC-SHA-256 of a text value (UTF-8), as 64 lower-case hexadecimal characters, identical on both engines
    and to Python's hmac.new(key, value.encode(), sha256).hexdigest(). `key` is the alias of a row holding the
    key's inner and outer pads (ipad, opad: 64 bytes each), joined at run time so the SQL never holds a key.
    A null value gives null on both engines.
#}
{% macro hmac_sha256_hex(value, key) -%}
{{ return(adapter.dispatch('hmac_sha256_hex', 'snds')(value, key)) }}
{%- endmacro %}

{% macro default__hmac_sha256_hex(value, key) -%}
{{ exceptions.raise_compiler_error("hmac_sha256_hex has no implementation for the " ~ target.type ~ " adapter") }}
{%- endmacro %}

{% macro duckdb__hmac_sha256_hex(value, key) -%}
sha256({{ key }}.opad || unhex(sha256({{ key }}.ipad || encode({{ value }}))))
{%- endmacro %}

{# UTL_RAW.CONCAT skips null arguments, so a null value is caught first rather than hashed as the key alone. #}
{% macro oracle__hmac_sha256_hex(value, key) -%}
case when {{ value }} is not null then lower(rawtohex(standard_hash(utl_raw.concat({{ key }}.opad, standard_hash(utl_raw.concat({{ key }}.ipad, utl_i18n.string_to_raw({{ value }}, 'AL32UTF8')), 'SHA256')), 'SHA256'))) end
{%- endmacro %}

{#- PostgreSQL 11+: sha256(bytea) is built in; the pads are bytea. -#}
{% macro postgres__hmac_sha256_hex(value, key) -%}
encode(sha256({{ key }}.opad || sha256({{ key }}.ipad || convert_to({{ value }}, 'UTF8'))), 'hex')
{%- endmacro %}
