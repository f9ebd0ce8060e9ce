{#
    A primary key holds when no key column is null and no two rows share the key: one query, one scan.
#}
{% test primary_key(model, columns) %}

with key_counts as (
    select
        {{ columns | join(',\n        ') }},
        count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
)

select *
from key_counts
where
    row_count > 1
{%- for column in columns %}
    or {{ column }} is null
{%- endfor %}

{% endtest %}
