"""Test vectors of the keyed hash, shared by the DuckDB run and the Oracle compile."""

from __future__ import annotations

# SQL engines must give what Python's hmac gives for each value.
VECTORS = ("0", "BEN_NIR_PSA", "1234567890ABCDEFG", "é", "ŒUVRE à 10 €", "x" * 300, "O'Brien")


def hmac_vector_sql(dual: str, keys: str = "{{ ref('pseudonymisation_keys') }}") -> str:
    """A query of (n, HMAC hex, pseudonym) for VECTORS under the active platform person key (`dual`: Oracle's),
    read from `keys` (the keys view, or the key store itself)."""
    values = "\n    union all\n".join(
        f"    select {i} as n, '{v.replace(chr(39), chr(39) * 2)}' as v{dual}" for i, v in enumerate(VECTORS)
    )
    return (
        "select vectors.n, {{ hmac_sha256_hex('vectors.v', 'k') }} as mac,\n"
        "    {{ keyed_pseudonym('vectors.v', 'k') }} as p\n"
        f"from (\n{values}\n) vectors\n"
        f"cross join (select ipad, opad from {keys} "
        "where key_scope = 'platform' and key_domain = 'person' and key_status = 'active') k"
    )
