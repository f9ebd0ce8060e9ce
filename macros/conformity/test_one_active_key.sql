{#
    Each listed domain of `scope` has exactly one active key: returns the domains that have none or several.
#}
{% test one_active_key(model, scope, domains) %}

{% for domain in domains %}
select
    '{{ domain }}' as key_domain,
    count(*) as active_keys
from {{ model }}
where key_scope = '{{ scope }}' and key_domain = '{{ domain }}' and key_status = 'active'
having count(*) <> 1
{% if not loop.last %}union all{% endif %}
{% endfor %}

{% endtest %}
