{#
    The SQL of an access plan (`snds access plan`): one block per change, each block preceded by the line
    `-- snds access change <n>`, so that `snds access apply` runs and audits one change at a time.
    `changes`: a list of [action, argument, ...], the arguments being names that `snds.access` checked (logins,
    roles, schemas); they are checked again here. Actions: create_schema, create_role, create_login (login,
    'allowed' or 'denied'), allow_login, deny_login, grant_role and revoke_role (role, member), grant_schema
    and revoke_schema (privilege, schema, role), grant_reads and revoke_reads (schema, role, owner of the tables).
#}
{% macro access_statements(changes) -%}
{%- for change in changes %}
-- snds access change {{ loop.index }}: {{ change | join(' ') }}
{{ adapter.dispatch('access_change', 'snds')(change[0], access_names(change[1:])) }}
{% endfor -%}
{%- endmacro %}

{% macro access_names(names) -%}
{%- for name in names if not modules.re.fullmatch('[a-z][a-z0-9_]{0,62}', name) -%}
{{ exceptions.raise_compiler_error("access_statements: not a role, login or schema name: " ~ name) }}
{%- endfor -%}
{{ return(names) }}
{%- endmacro %}

{% macro default__access_change(action, names) -%}
{{ exceptions.raise_compiler_error("access_statements has no implementation for the " ~ target.type ~ " adapter") }}
{%- endmacro %}

{#- PostgreSQL: a person is a login role; a schema read covers the tables to come (default privileges of the
    tables' owner, the platform's dbt user). `snds access apply` ends a denied login's open sessions once the
    plan is committed (a rollback could not bring them back). -#}
{% macro postgres__access_change(action, names) -%}
{%- if action == 'create_schema' -%}
create schema if not exists {{ names[0] }};
{%- elif action == 'create_role' -%}
create role {{ names[0] }} nologin;
{%- elif action == 'create_login' -%}
create role {{ names[0] }} {{ 'login' if names[1] == 'allowed' else 'nologin' }};
{%- elif action == 'allow_login' -%}
alter role {{ names[0] }} login;
{%- elif action == 'deny_login' -%}
alter role {{ names[0] }} nologin;
{%- elif action == 'grant_role' -%}
grant {{ names[0] }} to {{ names[1] }};
{%- elif action == 'revoke_role' -%}
revoke {{ names[0] }} from {{ names[1] }};
{%- elif action == 'grant_schema' -%}
grant {{ names[0] }} on schema {{ names[1] }} to {{ names[2] }};
{%- elif action == 'revoke_schema' -%}
revoke {{ names[0] }} on schema {{ names[1] }} from {{ names[2] }};
{%- elif action == 'grant_reads' -%}
grant select on all tables in schema {{ names[0] }} to {{ names[1] }};
alter default privileges for role {{ names[2] }} in schema {{ names[0] }} grant select on tables to {{ names[1] }};
{%- elif action == 'revoke_reads' -%}
revoke select on all tables in schema {{ names[0] }} from {{ names[1] }};
alter default privileges for role {{ names[2] }} in schema {{ names[0] }} revoke select on tables from {{ names[1] }};
{%- else -%}
{{ exceptions.raise_compiler_error("access_statements: unknown action " ~ action) }}
{%- endif -%}
{%- endmacro %}

{#- Oracle: schemas and persons are users (a person authenticated by the site's directory: IDENTIFIED
    EXTERNALLY); a person may log in while they hold CREATE SESSION. Oracle has no schema-wide grant before 23ai: a schema read
    grants every table the schema holds when the script runs (tables built later get theirs from dbt's `grants`
    on project models; the runbook re-runs the plan after a build of the base). Creations and revocations are
    guarded by the data dictionary, so that the script converges from any state. Schema privileges have no
    Oracle equivalent (a schema is a user; a data manager creates tables in their own schema). -#}
{% macro oracle__access_change(action, names) -%}
{#- Names upper-cased and quoted: the same as unquoted, and safe for the names Oracle reserves (AUDIT). -#}
{%- set upper = names | map('upper') | list -%}
{%- set quoted = [] -%}
{%- for name in upper -%}{%- do quoted.append('"' ~ name ~ '"') -%}{%- endfor -%}
{%- if action == 'create_schema' -%}
{{ oracle_if_absent("dba_users", "username = '" ~ upper[0] ~ "'", "create user " ~ quoted[0] ~ " no authentication") }}
{%- elif action == 'create_role' -%}
{{ oracle_if_absent("dba_roles", "role = '" ~ upper[0] ~ "'", "create role " ~ quoted[0]) }}
{%- elif action == 'create_login' -%}
{{ oracle_if_absent("dba_users", "username = '" ~ upper[0] ~ "'", "create user " ~ quoted[0] ~ " identified externally") }}
{{ oracle__access_change('allow_login' if names[1] == 'allowed' else 'deny_login', names[:1]) }}
{%- elif action == 'allow_login' -%}
grant create session to {{ quoted[0] }};
{%- elif action == 'deny_login' -%}
{{ oracle_if_present("dba_sys_privs", "grantee = '" ~ upper[0] ~ "' and privilege = 'CREATE SESSION'", "revoke create session from " ~ quoted[0]) }}
{%- elif action == 'grant_role' -%}
grant {{ quoted[0] }} to {{ quoted[1] }};
{%- elif action == 'revoke_role' -%}
{{ oracle_if_present("dba_role_privs", "granted_role = '" ~ upper[0] ~ "' and grantee = '" ~ upper[1] ~ "'", "revoke " ~ quoted[0] ~ " from " ~ quoted[1]) }}
{%- elif action in ('grant_schema', 'revoke_schema') -%}
-- {{ action }} {{ names | join(' ') }}: no schema privilege in Oracle
{%- elif action == 'grant_reads' -%}
begin
    for t in (select object_name from dba_objects where owner = '{{ upper[0] }}' and object_type in ('TABLE', 'VIEW')) loop
        execute immediate 'grant select on {{ quoted[0] }}."' || t.object_name || '" to {{ quoted[1] }}';
    end loop;
end;
/
{%- elif action == 'revoke_reads' -%}
begin
    for t in (
        select table_name from dba_tab_privs
        where owner = '{{ upper[0] }}' and grantee = '{{ upper[1] }}' and privilege = 'SELECT'
    ) loop
        execute immediate 'revoke select on {{ quoted[0] }}."' || t.table_name || '" from {{ quoted[1] }}';
    end loop;
end;
/
{%- else -%}
{{ exceptions.raise_compiler_error("access_statements: unknown action " ~ action) }}
{%- endif -%}
{%- endmacro %}

{#- A statement run only when the data dictionary holds no row (absent) or some row (present) for `condition`. -#}
{% macro oracle_if_absent(view, condition, statement) -%}
{{ oracle_if_count(view, condition, '= 0', statement) }}
{%- endmacro %}

{% macro oracle_if_present(view, condition, statement) -%}
{{ oracle_if_count(view, condition, '> 0', statement) }}
{%- endmacro %}

{% macro oracle_if_count(view, condition, test, statement) -%}
declare
    found number;
begin
    select count(*) into found from {{ view }} where {{ condition }};
    if found {{ test }} then
        execute immediate '{{ statement }}';
    end if;
end;
/
{%- endmacro %}
