-- Least privilege on the customer server: cdcsync_source may open a logical replication connection and
-- read the published columns (SELECT is needed only for the initial snapshot, resync and verify); it owns
-- nothing, reads no unpublished table and no unpublished column. Password: set by the DBA
-- (ALTER ROLE ... PASSWORD), stored by cdcsync's host in a pgpass file or systemd credential.
-- pg_hba.conf: a "hostssl customers cdcsync_source <daemon-ip>/32 scram-sha-256" line, and no
-- "replication" line for this role (that keyword would allow a physical copy of the whole cluster).

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdcsync_source') THEN
    CREATE ROLE cdcsync_source LOGIN REPLICATION NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM cdcsync_source;
GRANT USAGE ON SCHEMA public TO cdcsync_source;
GRANT SELECT (id, full_name, status, tier, balance, updated_at) ON public.customers TO cdcsync_source;
GRANT SELECT (customer_id, points, level, updated_at) ON public.loyalty_accounts TO cdcsync_source;
-- ctid (where a row lies in the table's heap, not data): the initial snapshot and resync cut a table into
-- ranges of blocks to copy them in parallel; without it they cut by key ranges from pg_stats instead.
GRANT SELECT (ctid) ON public.customers, public.loyalty_accounts TO cdcsync_source;
-- Row-level security must halt replication rather than filter rows silently: cdcsync connects with
-- options=-crow_security=off, which fails loudly if a policy would apply.
