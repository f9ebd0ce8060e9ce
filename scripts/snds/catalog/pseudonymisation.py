"""Render the pseudonymisation models and the potential-identifier macro from the catalog.

- `<domain>_pseudonyms` (schema `keys`): every person (or professional) identifier found in landing, once, with
  its platform pseudonym under the active platform key. Staging joins it to replace the CNAM's values, so the
  same value gets the same pseudonym in every table, product and delivery, and every join still holds.
- `pseudonym_renewals` (a view, schema `keys`): while a previous platform key is kept after a rotation, the
  previous pseudonym of every identifier beside the new one; empty once the previous key is retired.
- `snds_potential_identifiers()`: for every table, its potential identifiers with their kind and generalised
  form, read by the `generalise` macro at compile time (no database access, so it compiles for Oracle offline).
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from snds.catalog.build import Catalog, Column
from snds.catalog.conventions import Conventions
from snds.catalog.increments import PENDING_PATH, pending_query, render_pending_deliveries
from snds.catalog.rendering import HEADER, json_macro, yaml_file
from snds.sql import sql_literal

PSEUDONYMISATION_ROOT = PurePosixPath("models/staging/pseudonymisation")
GENERATED_MACROS_ROOT = PurePosixPath("macros/catalog")
DOMAINS = ("person", "professional")
KEYS_MODEL = "pseudonymisation_keys"
RENEWALS_MODEL = "pseudonym_renewals"
KEY_ID_TYPE = "varchar(64)"
DOMAIN_TYPE = "varchar(16)"


def correspondence_model(domain: str) -> str:
    return f"{domain}_pseudonyms"


def render_pseudonymisation(catalog: Catalog, conventions: Conventions) -> dict[PurePosixPath, str]:
    files = {
        PSEUDONYMISATION_ROOT / f"{correspondence_model(d)}.sql": _correspondence_sql(catalog, conventions, d)
        for d in DOMAINS
    }
    files[PSEUDONYMISATION_ROOT / f"{RENEWALS_MODEL}.sql"] = _renewals_sql(conventions)
    files[PENDING_PATH] = render_pending_deliveries([correspondence_model(d) for d in DOMAINS])
    files[PSEUDONYMISATION_ROOT / "_pseudonymisation__models.yml"] = _models_yaml(catalog, conventions)
    files[GENERATED_MACROS_ROOT / "snds_potential_identifiers.sql"] = _potential_identifiers_macro(catalog)
    return files


def _identifier_columns(catalog: Catalog, domain: str) -> list[tuple[str, Column]]:
    return [(t.name, c) for t in catalog.tables for c in t.pseudonymised_columns(domain)]


def _delivered_type(catalog: Catalog, domain: str) -> str:
    widest = max((c.sql_type for _, c in _identifier_columns(catalog, domain)), key=lambda t: t.length or 0)
    return str(widest)


def _pseudonym_sql(conventions: Conventions, domain: str, value: str, key: str) -> str:
    """The platform pseudonym of `value` under the key row aliased `key`; placeholders are kept as delivered."""
    keyed = f"{{{{ keyed_pseudonym('{value}', '{key}', {conventions.pseudonyms.length}) }}}}"
    placeholders = conventions.pseudonyms.person_placeholders if domain == "person" else ()
    if not placeholders:
        return keyed
    listed = ", ".join(sql_literal(p) for p in placeholders)
    return f"case when {value} in ({listed}) then {value} else {keyed} end"


def _key_cte(name: str, domain: str | None, status: str) -> str:
    domain_filter = f" and key_domain = '{domain}'" if domain else ""
    return (
        f"{name} as (\n    select\n        key_id,\n        key_domain,\n        ipad,\n        opad\n"
        f"    from {{{{ ref('{KEYS_MODEL}') }}}}\n"
        f"    where key_scope = 'platform' and key_status = '{status}'{domain_filter}\n)"
    )


def _correspondence_sql(catalog: Catalog, conventions: Conventions, domain: str) -> str:
    sources = "\n    union\n".join(
        f"    select {column.name} as delivered_identifier from {{{{ source('landing', '{table}') }}}}\n"
        f"    where DELIVERY_ID in (select DELIVERY_ID from pending)"
        for table, column in _identifier_columns(catalog, domain)
    )
    pseudonym = _pseudonym_sql(conventions, domain, "delivered.delivered_identifier", "active_key")
    length = conventions.pseudonyms.length
    return (
        f"-- {HEADER}\n"
        f"-- Every {domain} identifier of the promoted deliveries, once, with its platform pseudonym under the active\n"
        "-- platform key (joined at run time from the keys schema: no key in the SQL). Incremental: the identifiers\n"
        "-- of the deliveries not applied yet that it does not hold are hashed and added (new_identifiers_only).\n"
        + f"with pending as (\n    {pending_query(correspondence_model(domain))}\n),\n\n"
        f"delivered as (\n{sources}\n),\n\n"
        f"{_key_cte('active_key', domain, 'active')},\n\n"
        "final as (\n"
        "    select\n"
        f"        cast(delivered.delivered_identifier as {_delivered_type(catalog, domain)}) as delivered_identifier,\n"
        f"        cast({pseudonym} as varchar({length})) as platform_pseudonym,\n"
        f"        cast(active_key.key_id as {KEY_ID_TYPE}) as key_id\n"
        "    from delivered\n"
        "    cross join active_key\n"
        "    where delivered.delivered_identifier is not null\n"
        "        {{ new_identifiers_only('delivered.delivered_identifier') }}\n"
        ")\n\n"
        "select * from final\n"
    )


def _renewals_sql(conventions: Conventions) -> str:
    length = conventions.pseudonyms.length
    selects = []
    for domain in DOMAINS:
        model = correspondence_model(domain)
        previous = _pseudonym_sql(conventions, domain, f"{model}.delivered_identifier", "previous_key")
        selects.append(
            f"{domain}_renewals as (\n"
            "    select\n"
            f"        cast('{domain}' as {DOMAIN_TYPE}) as identifier_domain,\n"
            f"        cast({previous} as varchar({length})) as previous_pseudonym,\n"
            f"        {model}.platform_pseudonym as pseudonym,\n"
            f"        cast(previous_key.key_id as {KEY_ID_TYPE}) as previous_key_id,\n"
            f"        {model}.key_id\n"
            f"    from {{{{ ref('{model}') }}}} {model}\n"
            f"    inner join previous_key on previous_key.key_domain = '{domain}'\n"
            # Until the build after a rotation, the correspondence still holds pseudonyms of the previous key.
            f"    where {model}.key_id <> previous_key.key_id\n"
            ")"
        )
    union = "\n    union all\n".join(f"    select * from {d}_renewals" for d in DOMAINS)
    return (
        f"-- {HEADER}\n"
        "-- After `snds keys rotate`, each identifier's previous pseudonym beside its new one, so that tables kept\n"
        "-- outside the base can be re-pseudonymised. A view: it is empty as soon as `snds keys retire` removes\n"
        "-- the previous key, and nothing of the old pseudonyms remains.\n"
        f"with {_key_cte('previous_key', None, 'previous')},\n\n"
        + ",\n\n".join(selects)
        + f",\n\nfinal as (\n{union}\n)\n\nselect * from final\n"
    )


def _models_yaml(catalog: Catalog, conventions: Conventions) -> str:
    length = conventions.pseudonyms.length
    models = []
    for domain in DOMAINS:
        columns = sorted({c.name for _, c in _identifier_columns(catalog, domain)})
        models.append(
            {
                "name": correspondence_model(domain),
                "description": (
                    f"Correspondence of every {domain} identifier delivered into landing with its platform pseudonym "
                    f"({length} upper-case hexadecimal characters of HMAC-SHA-256 under the active platform key). "
                    "Restricted: it never leaves the platform. Staging joins it on "
                    + ", ".join(f"`{c}`" for c in columns)
                    + "."
                ),
                "config": {
                    "contract": {"enforced": True},
                    "materialized": "incremental",
                    "incremental_strategy": "delete+insert",
                    "unique_key": "delivered_identifier",
                    "on_schema_change": "fail",
                    # Stops `dbt run` too (tests do not run there) before identifiers would turn into nulls.
                    "pre_hook": f"{{{{ assert_one_active_key('platform', '{domain}') }}}}",
                },
                "data_tests": [
                    {"primary_key": {"arguments": {"columns": ["delivered_identifier"]}}},
                    # Two identifiers with the same pseudonym would merge two people: fail, and rotate the key.
                    {"primary_key": {"arguments": {"columns": ["platform_pseudonym"]}}},
                ],
                "columns": [
                    {
                        "name": "delivered_identifier",
                        "data_type": _delivered_type(catalog, domain),
                        "description": "The value as the CNAM delivered it.",
                    },
                    {
                        "name": "platform_pseudonym",
                        "data_type": f"varchar({length})",
                        "description": "The platform pseudonym that replaces it in the `snds` schema.",
                    },
                    {"name": "key_id", "data_type": KEY_ID_TYPE, "description": "Platform key it was derived with."},
                ],
            }
        )
    models.append(
        {
            "name": RENEWALS_MODEL,
            "description": (
                "Previous and new platform pseudonym of every identifier while a previous platform key is kept after "
                "`snds keys rotate`; empty once `snds keys retire` has removed it."
            ),
            "config": {"materialized": "view"},
            "columns": [
                {"name": "identifier_domain", "description": "person or professional."},
                {"name": "previous_pseudonym", "description": "Pseudonym under the previous platform key."},
                {"name": "pseudonym", "description": "Pseudonym under the active platform key."},
                {"name": "previous_key_id", "description": "The previous platform key."},
                {"name": "key_id", "description": "The active platform key."},
            ],
        }
    )
    return yaml_file({"version": 2, "models": models})


def _potential_identifiers_macro(catalog: Catalog) -> str:
    lines = []
    for table in catalog.tables:  # every table, so that an unknown name is an error, not a pass
        potential = {
            c.name.upper(): [c.identifier.kind, c.identifier.generalisation, c.data_type, c.spec.format]
            for c in table.columns
            if c.identifier.name == "potential"
        }
        direct = [c.name.upper() for c in table.columns if c.identifier.pseudonym_domain]
        entry = {"potential": potential, "direct": direct}
        lines.append(f"    {json.dumps(table.name)}: {json.dumps(entry, separators=(', ', ': '))}")
    body = ",\n".join(lines)
    return (
        f"{{# {HEADER} #}}\n"
        "{# For each table: its potential identifiers (COLUMN: [kind, generalisation, type, format]) and its direct\n"
        "   identifiers, column names in upper case, read by the `generalise` macro. #}\n"
        + json_macro("snds_potential_identifiers", f"{{\n{body}\n}}")
    )
