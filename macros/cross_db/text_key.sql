{#
    Text expressions joined with '|', a null part written empty (DuckDB's `||` would make the whole key null,
    Oracle's would skip it): the same key on every engine.
#}
{% macro text_key(parts) -%}
{%- for part in parts %}coalesce({{ part }}, ''){% if not loop.last %} || '|' || {% endif %}{% endfor -%}
{%- endmacro %}
