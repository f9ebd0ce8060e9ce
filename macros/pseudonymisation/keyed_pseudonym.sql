{#
    A pseudonym: the first `length` hexadecimal characters of HMAC-SHA-256(key, value), upper-case, the same on
    DuckDB, Oracle and in Python (snds.keys.material.pseudonym). `key` is the alias of a joined key row.
#}
{% macro keyed_pseudonym(value, key, length=var('snds_pseudonym_length')) -%}
upper(substr({{ hmac_sha256_hex(value, key) }}, 1, {{ length }}))
{%- endmacro %}
