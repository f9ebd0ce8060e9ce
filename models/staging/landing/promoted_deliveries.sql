-- The deliveries that `snds validate` accepted: the only ones staging reads. A delivery loaded but not yet
-- validated, or rejected, is never promoted into the base.
select DELIVERY_ID
from {{ source('landing', 'deliveries') }}
where STATUS = 'validated'
