"""What each workload is: its source and target tables, the rows that exist before the slots, the backlog it
generates while every consumer is stopped, and the marker row committed after it.

To add a workload: write its backlog (a function `(servers, sizes, out_dir) -> None` that changes rows of
`bench.<name>` on the source), add a `Workload` to WORKLOADS, and its sizes to `sizes()`. It is then a value of
`--workloads` and goes through the same slots, drains, checks and summary as the others (runs.drain_all). A
workload measured with the consumer running instead of a backlog (like lag) sets `live = True` and needs its
own measurement in runs.py.
"""
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Optional

from .servers import PGBENCH, PSQL, log, sql


@dataclass
class Workload:
    name: str
    columns: list  # compared by the check, copied by the seed, mapped in cdcsync's config
    source_ddl: str  # CREATE TABLE bench.<name> <source_ddl>
    target_ddl: str  # the same columns, nullable, no identity, without the closing parenthesis
    marker: str  # the row (id = -1) committed after the backlog
    backlog: Optional[Callable] = None  # (servers, sizes, out_dir): the changes, every consumer stopped
    seed: Optional[Callable] = None  # (servers, sizes): rows that exist before the slots, in both targets too
    source_after_create: str = ""  # SQL run on the source right after CREATE TABLE
    live: bool = False  # measured with the consumer running (runs.lag_test), not drained from a backlog
    # An initial load (initial_load.py): `seed` fills the source table with sizes()[rows_key] rows, copied by
    # each consumer into an empty table; no slot, backlog or marker.
    initial_load: bool = False
    rows_key: str = ""


SMALL_SCRIPT = r"""\set r random(1, 100)
\set id random(1, :seed)
\if :r <= 60
UPDATE bench.small SET balance = balance + 1, tier = CASE WHEN tier = 'gold' THEN 'silver' ELSE 'gold' END, updated_at = now() WHERE id = :id;
\elif :r <= 90
INSERT INTO bench.small (full_name, email, tier) VALUES ('New customer ' || :id, 'new' || :id || '@example.com', 'standard');
\else
DELETE FROM bench.small WHERE id = :id;
\endif
"""
LAG_SCRIPT = r"""\set v random(1, 1000000)
INSERT INTO bench.lag (v) VALUES (:v);
"""


def sizes(quick):
    f = 10 if quick else 1
    return {
        "small_changes": 200_000 // f, "small_seed": 500_000 // f,
        "bulk_rows": 1_000_000 // f,
        "wide_rows": 10_000 // f,
        "widexl_rows": 2_000 // f, "hugevalue_mb": 200 // f,
        "lag_rates": [2000], "lag_seconds": 10 if quick else 30,
        "snapshot_rows": 5_000_000 // f, "snapshot_wide_rows": 1_000_000 // f,
    }


def copy_rows(s, w, target_conn):
    cols = ",".join(WORKLOADS[w].columns)
    src = subprocess.Popen([PSQL, "-X", "-q", s.src, "-c", f"\\copy bench.{w} ({cols}) TO STDOUT"],
                           stdout=subprocess.PIPE)
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", target_conn, "-c",
                    f"\\copy bench.{w} ({cols}) FROM STDIN"], stdin=src.stdout, check=True)
    src.stdout.close()
    if src.wait() != 0:
        raise RuntimeError("seed copy failed")


def seed_small(s, sz):
    n = sz["small_seed"]
    sql(s.src, f"""INSERT INTO bench.small (id, full_name, email, tier, balance)
                   SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
                          (ARRAY['standard','silver','gold'])[1 + i % 3], (i * 13.37)::numeric(12,2)
                   FROM generate_series(1, {n}) i;
                   SELECT setval(pg_get_serial_sequence('bench.small', 'id'), {n});
                   VACUUM ANALYZE bench.small;""")
    copy_rows(s, "small", s.orders)
    copy_rows(s, "small", s.native)
    sql(s.orders, "VACUUM ANALYZE bench.small")
    sql(s.native, "VACUUM ANALYZE bench.small")


def backlog_small(s, sz, out):
    """pgbench of single-row transactions: 60 % update, 30 % insert, 10 % delete of a random row."""
    env = dict(os.environ, PGOPTIONS="-c synchronous_commit=off")  # generating the backlog only
    script = os.path.join(out, "small.sql")
    with open(script, "w") as f:
        f.write(SMALL_SCRIPT)
    per_client = sz["small_changes"] // 4
    r = subprocess.run([PGBENCH, "-n", "-c", "4", "-j", "2", "-t", str(per_client), "-f", script,
                        "-D", f"seed={sz['small_seed']}", "-h", s.sock, "-p", s.cport, "-U", "cdcsync_admin",
                        "customers"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("pgbench failed: " + r.stderr[-2000:])
    with open(os.path.join(out, "pgbench-small.log"), "a") as f:
        f.write(r.stdout)


def backlog_bulk(s, sz, out):
    """One transaction inserting every row, then one updating all of them."""
    n = sz["bulk_rows"]
    sql(s.src, f"""SET synchronous_commit = off;
        INSERT INTO bench.bulk SELECT i, i % 1000, 'row ' || i || ' ' || md5(i::text), now(), i * 0.01
        FROM generate_series(1, {n}) i;
        UPDATE bench.bulk SET a = a + 1, d = d + 1;""")


def backlog_wide(s, sz, out):
    """~9.6 kB of md5 hex per row, stored out of line uncompressed; then two passes of updates that leave
    it unchanged (unchanged-TOAST in the stream), 100 rows per transaction."""
    n = sz["wide_rows"]
    sql(s.src, f"""SET synchronous_commit = off;
        DO $$ BEGIN
          FOR k IN 0 .. {n} / 100 - 1 LOOP
            INSERT INTO bench.wide
              SELECT i, 0, 'note ' || i, (SELECT string_agg(md5(i::text || '-' || j), '') FROM generate_series(1, 300) j)
              FROM generate_series(k * 100 + 1, k * 100 + 100) i;
            COMMIT;
          END LOOP;
          FOR p IN 1 .. 2 LOOP
            FOR k IN 0 .. {n} / 100 - 1 LOOP
              UPDATE bench.wide SET n = n + 1, note = 'pass ' || p || ' of ' || id
               WHERE id BETWEEN k * 100 + 1 AND k * 100 + 100;
              COMMIT;
            END LOOP;
          END LOOP;
        END $$;""")


def md5_text(n_md5, salt):
    """n_md5 * 32 bytes of md5 hex, different for every `salt`: incompressible for pglz and lz4."""
    return f"(SELECT string_agg(md5(random()::text || {salt} || '-' || j), '') FROM generate_series(1, {n_md5}) j)"


def backlog_widexl(s, sz, out):
    """WIDE-XL: one transaction inserting widexl_rows rows of 1 MiB incompressible text (2 GiB), then one
    updating the value of half of them (1 GiB); memory must not grow with the transaction's bytes."""
    n = sz["widexl_rows"]
    sql(s.src, f"""SET synchronous_commit = off;
        INSERT INTO bench.widexl SELECT i, 0, {md5_text(32768, "i")} FROM generate_series(1, {n}) i;
        UPDATE bench.widexl SET n = 1, body = {md5_text(32768, "id")} WHERE id % 2 = 0;""")


def backlog_hugevalue(s, sz, out):
    """WIDE-XL's single huge value: one transaction with one hugevalue_mb MiB value (a value larger than
    memory.limit_bytes passes, with memory about three times its size)."""
    mb = sz["hugevalue_mb"]
    sql(s.src, f"""SET synchronous_commit = off;
        INSERT INTO bench.hugevalue VALUES (1, {md5_text(mb * 32768, 1)});""")


def seed_snapshot(s, sz):
    """Customers with the demo schema's columns (deploy/sql/customer_schema.sql), a third of them with notes."""
    sql(s.src, f"""SET synchronous_commit = off;
        INSERT INTO bench.snapshot (id, full_name, email, phone, birth_date, address, notes, status, tier, balance,
                                    created_at, updated_at)
        SELECT i, 'Customer ' || i, 'customer' || i || '@example.com', '+1-555-' || lpad((i % 10000000)::text, 7, '0'),
               date '1950-01-01' + (i % 20000), i || ' Main Street, Springfield',
               CASE WHEN i % 3 = 0 THEN 'note ' || md5(i::text) END,
               (ARRAY['active','suspended','closed'])[1 + i % 3], (ARRAY['standard','silver','gold'])[1 + i % 3],
               (i % 100000) * 0.01, timestamptz '2020-01-01' + i * interval '1 second',
               timestamptz '2024-01-01' + i * interval '1 second'
        FROM generate_series(1, {sz['snapshot_rows']}) i""")


WIDE_COLUMNS = (["id"] + [f"i{k}" for k in range(1, 7)] + [f"n{k}" for k in range(1, 5)] +
                [f"t{k}" for k in range(1, 5)] + ["d1"] + [f"s{k}" for k in range(1, 7)] +
                ["doc", "ref", "b1", "b2", "body"])
WIDE_TYPES = (["bigint"] + ["integer"] * 6 + ["numeric(12,2)"] * 4 + ["timestamptz"] * 4 + ["date"] + ["text"] * 6 +
              ["jsonb", "uuid", "boolean", "boolean", "text"])
WIDE_DDL = ", ".join(f"{c} {t}" + (" PRIMARY KEY" if c == "id" else "") for c, t in zip(WIDE_COLUMNS, WIDE_TYPES))


def seed_snapshot_wide(s, sz):
    """32 columns of most kinds (integers, numerics, timestamps, a date, texts, jsonb, uuid, booleans) and a
    320-byte text: about 800 bytes a row."""
    ints = ", ".join(f"(i * {k}) % 100000" for k in range(1, 7))
    nums = ", ".join(f"(i % 10000) * 0.0{k}" for k in range(1, 5))
    stamps = ", ".join(f"timestamptz '2020-01-01' + (i * {k}) * interval '1 second'" for k in range(1, 5))
    texts = ", ".join(f"'text {k} of ' || i" for k in range(1, 7))
    sql(s.src, f"""SET synchronous_commit = off;
        INSERT INTO bench.snapshot_wide SELECT i, {ints}, {nums}, {stamps}, date '2000-01-01' + i % 9000, {texts},
               jsonb_build_object('id', i, 'tags', jsonb_build_array('a', 'b', i % 7)), md5(i::text)::uuid,
               i % 2 = 0, i % 3 = 0, repeat(md5(i::text), 10)
        FROM generate_series(1, {sz['snapshot_wide_rows']}) i""")


WORKLOADS = {w.name: w for w in [
    Workload(
        name="small",
        columns=["id", "full_name", "email", "status", "tier", "balance", "updated_at"],
        source_ddl="""(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, full_name text NOT NULL, email text NOT NULL,
                 status text NOT NULL DEFAULT 'active', tier text NOT NULL DEFAULT 'standard',
                 balance numeric(12,2) NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())""",
        target_ddl="(id bigint PRIMARY KEY, full_name text, email text, status text, tier text, balance numeric(12,2), updated_at timestamptz",
        marker="INSERT INTO bench.small (id, full_name, email) VALUES (-1, 'marker', 'marker')",
        backlog=backlog_small, seed=seed_small),
    Workload(
        name="bulk",
        columns=["id", "a", "b", "c", "d"],
        source_ddl="(id bigint PRIMARY KEY, a integer NOT NULL, b text NOT NULL, c timestamptz NOT NULL, d numeric(12,2) NOT NULL)",
        target_ddl="(id bigint PRIMARY KEY, a integer, b text, c timestamptz, d numeric(12,2)",
        marker="INSERT INTO bench.bulk VALUES (-1, 0, 'marker', now(), 0)",
        backlog=backlog_bulk),
    Workload(
        name="wide",
        columns=["id", "n", "note", "body"],
        source_ddl="(id bigint PRIMARY KEY, n integer NOT NULL, note text NOT NULL, body text NOT NULL)",
        target_ddl="(id bigint PRIMARY KEY, n integer, note text, body text",
        marker="INSERT INTO bench.wide VALUES (-1, 0, 'marker', 'marker')",
        backlog=backlog_wide, source_after_create="ALTER TABLE bench.wide ALTER body SET STORAGE EXTERNAL;"),
    Workload(
        name="widexl",
        columns=["id", "n", "body"],
        source_ddl="(id bigint PRIMARY KEY, n integer NOT NULL, body text NOT NULL)",
        target_ddl="(id bigint PRIMARY KEY, n integer, body text",
        marker="INSERT INTO bench.widexl VALUES (-1, 0, 'marker')",
        backlog=backlog_widexl, source_after_create="ALTER TABLE bench.widexl ALTER body SET STORAGE EXTERNAL;"),
    Workload(
        name="hugevalue",
        columns=["id", "body"],
        source_ddl="(id bigint PRIMARY KEY, body text NOT NULL)",
        target_ddl="(id bigint PRIMARY KEY, body text",
        marker="INSERT INTO bench.hugevalue VALUES (-1, 'marker')",
        backlog=backlog_hugevalue,
        source_after_create="ALTER TABLE bench.hugevalue ALTER body SET STORAGE EXTERNAL;"),
    Workload(
        name="lag",
        columns=["id", "v", "src_ts"],
        source_ddl="(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v integer NOT NULL, src_ts timestamptz NOT NULL DEFAULT clock_timestamp())",
        target_ddl="(id bigint PRIMARY KEY, v integer, src_ts timestamptz, applied_at timestamptz NOT NULL DEFAULT clock_timestamp()",
        marker="INSERT INTO bench.lag (id, v) VALUES (-1, 0)",
        live=True),
    Workload(
        name="snapshot",
        columns=["id", "full_name", "email", "phone", "birth_date", "address", "notes", "status", "tier", "balance",
                 "created_at", "updated_at"],
        source_ddl="(id bigint PRIMARY KEY, full_name text NOT NULL, email text NOT NULL, phone text, "
                   "birth_date date, address text, notes text, status text NOT NULL DEFAULT 'active', "
                   "tier text NOT NULL DEFAULT 'standard', balance numeric(12,2) NOT NULL DEFAULT 0, "
                   "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())",
        target_ddl="(id bigint PRIMARY KEY, full_name text, email text, phone text, birth_date date, address text, "
                   "notes text, status text, tier text, balance numeric(12,2), created_at timestamptz, "
                   "updated_at timestamptz",
        marker="", seed=seed_snapshot, initial_load=True, rows_key="snapshot_rows"),
    Workload(
        name="snapshot_wide", columns=WIDE_COLUMNS, source_ddl=f"({WIDE_DDL})", target_ddl=f"({WIDE_DDL}",
        marker="", seed=seed_snapshot_wide, initial_load=True, rows_key="snapshot_wide_rows"),
]}


def fresh_tables(s, w):
    wl = WORKLOADS[w]
    sql(s.src, f"DROP PUBLICATION IF EXISTS bench_{w}; DROP TABLE IF EXISTS bench.{w};"
               f"CREATE TABLE bench.{w} {wl.source_ddl};"
               + wl.source_after_create
               + f"GRANT SELECT ON bench.{w} TO cdcsync_source; CREATE PUBLICATION bench_{w} FOR TABLE bench.{w};")
    sql(s.orders, f"DROP TABLE IF EXISTS bench.{w}; CREATE TABLE bench.{w} {wl.target_ddl}, "
                  f"_cdc_lsn pg_lsn NOT NULL DEFAULT '0/0');"
                  f"GRANT SELECT, INSERT, UPDATE, DELETE ON bench.{w} TO cdcsync_target;")
    sql(s.native, f"DROP TABLE IF EXISTS bench.{w}; CREATE TABLE bench.{w} {wl.target_ddl});")
    if w == "lag":
        for conn in (s.orders, s.native):
            sql(conn, LAG_COMMITTED_DDL)


# When each lag row's target transaction commits, for both consumers alike: a deferred constraint trigger runs
# at the commit (after the insert that sets applied_at) and notes the time in bench.lag_committed. applied_at
# alone favours a consumer that inserts each change as it arrives, before the source's COMMIT message (native's
# apply worker); the row is visible only once its target transaction commits. ENABLE ALWAYS: native's apply
# worker runs with session_replication_role = replica. SECURITY DEFINER: cdcsync's role may not write the side
# table.
LAG_COMMITTED_DDL = """
DROP TABLE IF EXISTS bench.lag_committed;
CREATE UNLOGGED TABLE bench.lag_committed (id bigint NOT NULL, at timestamptz NOT NULL);
CREATE OR REPLACE FUNCTION bench.lag_committed() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog AS $$
BEGIN
  INSERT INTO bench.lag_committed VALUES (NEW.id, clock_timestamp());
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER lag_committed AFTER INSERT ON bench.lag DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION bench.lag_committed();
ALTER TABLE bench.lag ENABLE ALWAYS TRIGGER lag_committed;
"""


def seed(s, w, sz):
    """Rows that exist before the slots: the targets get the same rows directly (not part of the backlog)."""
    if WORKLOADS[w].seed:
        WORKLOADS[w].seed(s, sz)


def table_changes(s, w):
    v = sql(s.src, f"SELECT pg_stat_force_next_flush(); SELECT n_tup_ins + n_tup_upd + n_tup_del "
                   f"FROM pg_stat_user_tables WHERE relid = 'bench.{w}'::regclass")
    return int(v.splitlines()[-1])


def run_workload(s, w, sz, out):
    """The backlog (all consumers stopped). Returns the number of row changes it made (+1 for the marker), the
    marker's LSN and the backlog's WAL."""
    before = table_changes(s, w)
    t0 = time.monotonic()
    WORKLOADS[w].backlog(s, sz, out)
    changes = table_changes(s, w) - before
    secs = time.monotonic() - t0
    sql(s.src, WORKLOADS[w].marker)
    marker_lsn = sql(s.src, "SELECT pg_current_wal_lsn()")
    wal = sql(s.src, "SELECT pg_size_pretty(pg_current_wal_lsn() - min(restart_lsn)) FROM pg_replication_slots")
    log(f"{w}: {changes} changes generated in {secs:.1f} s; backlog {wal} of WAL; marker before {marker_lsn}")
    return changes + 1, marker_lsn, wal


def digest(conn, w):
    cols = ", ".join(WORKLOADS[w].columns)
    return sql(conn, f"SET timezone = 'UTC'; SELECT count(*) || ' rows, md5 ' || "
                     f"coalesce(md5(string_agg(md5(ROW({cols})::text), '' ORDER BY id)), '-') FROM bench.{w}")


def storage(conn, w):
    """The target table's size and, for WIDE, how its large values are stored (pg_column_compression)."""
    size = sql(conn, f"SELECT round(pg_total_relation_size('bench.{w}') / 1048576.0, 1) || ' MB'")
    if w != "wide":
        return size
    methods = sql(conn, "SELECT string_agg(m || ' ' || n, ', ' ORDER BY m) FROM (SELECT "
                        "coalesce(pg_column_compression(body)::text, 'uncompressed') AS m, count(*) AS n "
                        "FROM bench.wide GROUP BY 1) x")
    return f"{size} ({methods})"
