-- Least privilege on the order server: cdcsync_target reads and writes the reference tables and its
-- progress row, and nothing else: no access to orders or order_lines, no CREATE, no TRUNCATE, owns nothing.
-- order_service is the application's role: it owns its orders and only reads the reference tables.

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cdcsync_target') THEN
    CREATE ROLE cdcsync_target LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'order_service') THEN
    CREATE ROLE order_service LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM cdcsync_target;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA ref TO cdcsync_target, order_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ref TO cdcsync_target;
GRANT SELECT ON ALL TABLES IN SCHEMA ref TO order_service;
REVOKE ALL ON ref.cdc_progress, ref.cdc_table_state FROM order_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.orders, public.order_lines TO order_service;

-- Row values must not reach the server log through cdcsync's statements.
ALTER ROLE cdcsync_target SET log_parameter_max_length_on_error = 0;
ALTER ROLE cdcsync_target SET log_parameter_max_length = 0;
