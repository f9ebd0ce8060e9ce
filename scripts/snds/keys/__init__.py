"""Pseudonymisation keys: derivation, the key store in the `keys` schema, and the leak scan."""
