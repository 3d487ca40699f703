-- The storage layout's number, and the claim's check of it (docs/upgrading.md, "The storage
-- layout"). Additive only: two functions, and nothing reads them but this release's claim.
--
-- Issue 22 replaces the `jobs` table's hot path with a layout built around vacuum, and that
-- change cannot be additive: a worker that claims from the old layout must not keep claiming
-- once the migration has moved the jobs. So from this release on, every claim names the layout
-- its code was written for, and the database refuses a claim that names another one. A later
-- migration that changes the layout redefines jobqueue_storage_layout() in the same
-- transaction as its move, and from that commit on every claim of an older worker is refused
-- with JQ002: the worker stops claiming and says so in one line, instead of acting on tables
-- it does not know.

-- Layout 1: one `jobs` table; a job's row is claimed and finished in place. STABLE, not
-- IMMUTABLE: a worker's prepared claim must not keep a folded 1 after a migration changes it.
CREATE OR REPLACE FUNCTION jobqueue_storage_layout() RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$ SELECT 1 $$;

-- The claim's gate: true when `p_known` (the layout the claiming code was written for) is the
-- database's. Otherwise JQ002, whose message names both numbers, so the worker's one line can
-- say which side to upgrade. NULL passes: tools and tests that claim without a layout.
CREATE OR REPLACE FUNCTION jobqueue_layout_gate(p_known integer) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
    current_layout integer := jobqueue_storage_layout();
BEGIN
    IF p_known IS NOT NULL AND p_known <> current_layout THEN
        RAISE EXCEPTION 'the database has storage layout %, this worker knows layout %',
                        current_layout, p_known
            USING ERRCODE = 'JQ002',
                  HINT = CASE WHEN current_layout > p_known
                              THEN 'run the release that migrated the database'
                              ELSE 'run jobqueue migrate with this release' END;
    END IF;
    RETURN true;
END
$$;
