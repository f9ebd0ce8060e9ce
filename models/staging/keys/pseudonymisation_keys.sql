-- The keys a build may use: each scope's active key and, between a rotation and its retirement, the previous
-- platform key. A view, so that the material is never copied.
select
    key_id,
    key_scope,
    key_domain,
    key_status,
    ipad,
    opad
from {{ source('keys', 'key_material') }}
where key_status in ('active', 'previous')
