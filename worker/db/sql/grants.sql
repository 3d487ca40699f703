-- The least a component's database role needs (docs/security.md), granted by the schema's
-- owner after it migrates (`jobqueue migrate` with JOBQUEUE_DB_RUNTIME_ROLE and
-- JOBQUEUE_DB_READONLY_ROLE). The role's name travels in the setting jobqueue.grant_role, as a
-- DO block takes no parameter; %I quotes it. Default privileges give the same rights on what
-- later migrations create. Every statement is idempotent.

-- name: set_grant_role
-- params: $1 role
SELECT set_config('jobqueue.grant_role', $1, false);

-- name: grant_runtime
-- The API and the workers: data rights only (no CREATE, no TRUNCATE, no ownership).
DO $$
DECLARE
    grantee text := current_setting('jobqueue.grant_role');
    schema_name text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, grantee);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
                   schema_name, grantee);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I',
                   schema_name, grantee);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', schema_name, grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', schema_name, grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                   'GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', schema_name, grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT EXECUTE ON FUNCTIONS TO %I',
                   schema_name, grantee);
END
$$;

-- name: grant_readonly
-- The controller's depth probe: reads everything; its one write is its own log of scaling
-- decisions (scaling_decisions, which the console's scaling page shows).
DO $$
DECLARE
    grantee text := current_setting('jobqueue.grant_role');
    schema_name text := current_schema();
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', schema_name, grantee);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', schema_name, grantee);
    EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA %I TO %I', schema_name, grantee);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                   schema_name, grantee);
    EXECUTE format('GRANT INSERT, DELETE ON scaling_decisions TO %I', grantee);
    EXECUTE format('GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO %I', schema_name, grantee);
END
$$;
