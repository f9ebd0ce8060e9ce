{#
    Generic test on a project extract: every value of a potential identifier that the project may not see as
    delivered is generalised, that is generalising it again changes nothing (a care date is the first of its
    month, a suppressed column is null ...). The build's guard requires this test on each such column, so a
    hand-written extract that forgets `generalise` fails the build.
#}
{% test generalised(model, column_name, table_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
    and ({{ generalise(table_name, column_name, column_name) }} is null
        or {{ generalise(table_name, column_name, column_name) }} <> {{ column_name }})
{% endtest %}
