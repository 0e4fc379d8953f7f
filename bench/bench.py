#!/usr/bin/env python3
"""Driver of bench/run.sh: cdcsync vs PostgreSQL's native logical replication vs pg_recvlogical.

Runs against servers started by scripts/servers.sh (their DIR/env). For each workload and run: fresh source
table, publication and target tables; every consumer's slot is created first; the workload runs while all
consumers are stopped (the backlog accumulates); a marker row (id = -1) is committed last; then each consumer
drains the same backlog in turn and is timed until the marker is visible in its target (pg_recvlogical: until
it passes the marker's LSN, --endpos). Writes one JSON object per measurement to OUT/results.jsonl and a
summary to OUT/summary.md. Everything it starts is stopped in `finally` (and run.sh stops the servers).
Standard library only (psql, pgbench and pg_recvlogical as subprocesses).
"""
import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = f"{PG_BIN}/psql"
PGBENCH = f"{PG_BIN}/pgbench"
RECVLOGICAL = f"{PG_BIN}/pg_recvlogical"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = os.path.dirname(os.path.abspath(__file__))

CHILDREN = []  # Popen objects to stop on the way out


def daemon_env(s):
    """The daemon's environment: the bench's password file, and CDCSYNC_BENCH_DAEMON_TUNABLES as its
    GLIBC_TUNABLES (allocator experiments on the daemon alone, not on the servers)."""
    env = dict(os.environ, PGPASSFILE=s.passfile)
    if os.environ.get("CDCSYNC_BENCH_DAEMON_TUNABLES"):
        env["GLIBC_TUNABLES"] = os.environ["CDCSYNC_BENCH_DAEMON_TUNABLES"]
    return env


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---------------------------------------------------------------------------------------------- servers


def load_env(servers_dir):
    env = {}
    with open(os.path.join(servers_dir, "env")) as f:
        for line in f:
            m = re.match(r"^([A-Z_0-9]+)='(.*)'$", line.strip())
            if m:
                env[m.group(1)] = m.group(2)
    return env


class Servers:
    def __init__(self, servers_dir):
        e = load_env(servers_dir)
        self.env = e
        sock = e["CDCSYNC_PG_ROOT"]  # unix socket directory (local auth: trust) for the admin sessions
        self.cport, self.oport = e["CDCSYNC_CUSTOMER_PORT"], e["CDCSYNC_ORDER_PORT"]
        self.src = f"host={sock} port={self.cport} dbname=customers user=cdcsync_admin"
        self.orders = f"host={sock} port={self.oport} dbname=orders user=cdcsync_admin"
        self.native = f"host={sock} port={self.oport} dbname=native user=cdcsync_admin"
        self.sock = sock
        self.source_conninfo = e["CDCSYNC_SOURCE_CONNINFO"]
        self.target_conninfo = e["CDCSYNC_TARGET_CONNINFO"]
        self.redis = e["CDCSYNC_REDIS_URL"]
        self.passfile = e["CDCSYNC_PGPASSFILE"]
        self.pg_root = e["CDCSYNC_PG_ROOT"]
        self.dir = servers_dir


def sql(conn, text, check=True):
    """Runs SQL in a one-off psql session (ON_ERROR_STOP); returns stdout (unaligned, tuples only)."""
    r = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", conn], input=text, text=True,
                       capture_output=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"psql failed ({conn.split()[-2]}): {r.stderr.strip()}\n--- SQL ---\n{text[:2000]}")
    return r.stdout.strip()


class Session:
    """A persistent psql session for cheap polling (one connection, no fork per query)."""

    def __init__(self, conn):
        self.p = subprocess.Popen([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=0", conn],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True, bufsize=1, start_new_session=True)
        CHILDREN.append(self.p)

    def query(self, q):
        self.p.stdin.write(q.strip().rstrip(";") + ";\n\\echo __EOQ__\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                raise RuntimeError("polling psql session ended")
            line = line.rstrip("\n")
            if line == "__EOQ__":
                return out
            out.append(line)

    def value(self, q):
        rows = self.query(q)
        return rows[0] if rows and rows[0] != "" else None

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=5)
        except Exception:
            self.p.kill()
        if self.p in CHILDREN:
            CHILDREN.remove(self.p)


# ---------------------------------------------------------------------------------------------- /proc


def proc_cpu(pid):
    """utime + stime of a process (all its threads), seconds; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_ctxsw(pid):
    """Context switches (voluntary + involuntary) summed over the process's threads: one per sleep/wake-up."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
    except OSError:
        return None
    return total


def proc_runqueue_wait_s(pid):
    """Seconds the process's threads spent runnable but waiting for a CPU (/proc/PID/task/*/schedstat)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e9


class Sampler:
    """Keeps the last CPU reading of named pids (a process may exit before the final sample)."""

    def __init__(self):
        self.pids = {}   # name -> pid
        self.first = {}  # name -> cpu at first sight
        self.last = {}   # name -> last cpu seen
        self.hwm = {}
        self.ctxsw_first = {}
        self.rqwait_first = {}
        self.rqwait = {}  # name -> seconds waiting for a CPU since first sight
        self.ctxsw = {}  # name -> context switches since first sight

    def add(self, name, pid):
        if name in self.pids or not pid:
            return
        self.pids[name] = int(pid)
        c = proc_cpu(pid)
        self.first[name] = c if c is not None else 0.0
        self.last[name] = self.first[name]
        self.ctxsw_first[name] = proc_ctxsw(pid) or 0
        self.rqwait_first[name] = proc_runqueue_wait_s(pid) or 0.0

    def sample(self):
        for name, pid in self.pids.items():
            c = proc_cpu(pid)
            if c is not None:
                self.last[name] = c
            h = proc_hwm_kb(pid)
            if h is not None:
                self.hwm[name] = h
            x = proc_ctxsw(pid)
            if x is not None:
                self.ctxsw[name] = x - self.ctxsw_first.get(name, 0)
            q = proc_runqueue_wait_s(pid)
            if q is not None:
                self.rqwait[name] = round(q - self.rqwait_first.get(name, 0.0), 3)

    def cpu(self, name):
        """CPU seconds since the process was born (processes started for the drain)."""
        return round(self.last[name], 3) if name in self.last else None


# ---------------------------------------------------------------------------------------------- workloads

SMALL_COLS = ["id", "full_name", "email", "status", "tier", "balance", "updated_at"]
BULK_COLS = ["id", "a", "b", "c", "d"]
WIDE_COLS = ["id", "n", "note", "body"]
LAG_COLS = ["id", "v", "src_ts"]

TABLE_DDL = {
    "small": """(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, full_name text NOT NULL, email text NOT NULL,
                 status text NOT NULL DEFAULT 'active', tier text NOT NULL DEFAULT 'standard',
                 balance numeric(12,2) NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now())""",
    "bulk": "(id bigint PRIMARY KEY, a integer NOT NULL, b text NOT NULL, c timestamptz NOT NULL, d numeric(12,2) NOT NULL)",
    "wide": "(id bigint PRIMARY KEY, n integer NOT NULL, note text NOT NULL, body text NOT NULL)",
    "lag": "(id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v integer NOT NULL, src_ts timestamptz NOT NULL DEFAULT clock_timestamp())",
}
TARGET_DDL = {  # same columns, nullable, no identity; cdcsync's tables add the LSN guard
    "small": "(id bigint PRIMARY KEY, full_name text, email text, status text, tier text, balance numeric(12,2), updated_at timestamptz",
    "bulk": "(id bigint PRIMARY KEY, a integer, b text, c timestamptz, d numeric(12,2)",
    "wide": "(id bigint PRIMARY KEY, n integer, note text, body text",
    "lag": "(id bigint PRIMARY KEY, v integer, src_ts timestamptz, applied_at timestamptz NOT NULL DEFAULT clock_timestamp()",
}
COLS = {"small": SMALL_COLS, "bulk": BULK_COLS, "wide": WIDE_COLS, "lag": LAG_COLS}
MARKER = {  # the row committed after the workload
    "small": "INSERT INTO bench.small (id, full_name, email) VALUES (-1, 'marker', 'marker')",
    "bulk": "INSERT INTO bench.bulk VALUES (-1, 0, 'marker', now(), 0)",
    "wide": "INSERT INTO bench.wide VALUES (-1, 0, 'marker', 'marker')",
    "lag": "INSERT INTO bench.lag (id, v) VALUES (-1, 0)",
}

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
        "lag_rate": 2000, "lag_seconds": 10 if quick else 30,
    }


def setup_once(s):
    sql(s.src, "CREATE SCHEMA IF NOT EXISTS bench; GRANT USAGE ON SCHEMA bench TO cdcsync_source;")
    sql(s.orders, "CREATE SCHEMA IF NOT EXISTS bench; GRANT USAGE ON SCHEMA bench TO cdcsync_target;")
    if sql(s.orders, "SELECT 1 FROM pg_database WHERE datname = 'native'") != "1":
        sql(s.orders, "CREATE DATABASE native")
    sql(s.native, "CREATE SCHEMA IF NOT EXISTS bench")
    # The subscription's conninfo: the admin role with a copy of the pgpass file the server's OS user can read.
    native_pass = os.path.join(s.pg_root, "native.pgpass")
    with open(s.passfile) as f, open(native_pass, "w") as g:
        g.write(f.read())
    os.chmod(native_pass, 0o600)
    if os.getuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(native_pass, pw.pw_uid, pw.pw_gid)
    s.native_pass = native_pass
    # The launcher starts an apply worker at most once per wal_retrieve_retry_interval (5 s): a subscription
    # enabled within 5 s of the previous workload's would wait for it, and its drain would count the wait.
    sql(s.orders, "ALTER SYSTEM SET wal_retrieve_retry_interval = '100ms'")
    # Both consumers' targets live on the order server; with the default max_wal_size (1 GB) a checkpoint
    # triggered by one drain's WAL would land in the middle of the next drain (full-page images, flushes).
    # Each drain starts right after a CHECKPOINT instead (one_workload), with room for its whole WAL.
    sql(s.orders, "ALTER SYSTEM SET max_wal_size = '8GB'")
    # A fresh server has no WAL segments to recycle: the first drain's backend would zero-fill every new
    # 16 MB segment itself (about 1 s of CPU per BULK drain), the later drains reuse recycled ones. A server
    # that has run for a while recycles; so does this one from the start.
    sql(s.orders, "ALTER SYSTEM SET wal_init_zero = off")
    # Still, the first drain would create every WAL segment it writes (the file and its blocks), and a
    # CHECKPOINT then hands them to the next drain to recycle: whoever drains first would pay for all. A
    # server that has run for a while has them; this one writes and recycles 1.5 GB of WAL once, and keeps it.
    sql(s.orders, "ALTER SYSTEM SET min_wal_size = '2GB'")
    sql(s.orders, "SELECT pg_reload_conf()")
    started = time.time()
    sql(s.orders, "CREATE TABLE public.bench_warm AS SELECT g, repeat('x', 300) AS pad "
                  "FROM generate_series(1, 4000000) g; DROP TABLE public.bench_warm; CHECKPOINT")
    log(f"order server: WAL segments written and recycled in {time.time() - started:.1f} s")
    for k, v in ORDER_SETTINGS.items():
        sql(s.orders, f"ALTER SYSTEM SET {k} = '{v}'")
    if ORDER_SETTINGS:
        sql(s.orders, "SELECT pg_reload_conf()")
        # A setting read only at server start (wal_buffers, shared_buffers): restart the order server.
        if sql(s.orders, "SELECT count(*) FROM pg_settings WHERE pending_restart") != "0":
            servers_sh = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "servers.sh")
            subprocess.run(["bash", servers_sh, "pg-stop", s.dir, "order", "fast"], check=True,
                           stdout=subprocess.DEVNULL)
            env = dict(os.environ)
            if env.get("CDCSYNC_BENCH_ORDER_PRELOAD"):  # run.sh --order-fsync-delay-us
                env["LD_PRELOAD"] = env["CDCSYNC_BENCH_ORDER_PRELOAD"]
            subprocess.run(["bash", servers_sh, "pg-start", s.dir, "order"], check=True, stdout=subprocess.DEVNULL,
                           env=env)
            log("order server restarted for " + ", ".join(ORDER_SETTINGS))


def fresh_tables(s, w):
    sql(s.src, f"DROP PUBLICATION IF EXISTS bench_{w}; DROP TABLE IF EXISTS bench.{w};"
               f"CREATE TABLE bench.{w} {TABLE_DDL[w]};"
               + ("ALTER TABLE bench.wide ALTER body SET STORAGE EXTERNAL;" if w == "wide" else "")
               + f"GRANT SELECT ON bench.{w} TO cdcsync_source; CREATE PUBLICATION bench_{w} FOR TABLE bench.{w};")
    sql(s.orders, f"DROP TABLE IF EXISTS bench.{w}; CREATE TABLE bench.{w} {TARGET_DDL[w]}, "
                  f"_cdc_lsn pg_lsn NOT NULL DEFAULT '0/0');"
                  f"GRANT SELECT, INSERT, UPDATE, DELETE ON bench.{w} TO cdcsync_target;")
    sql(s.native, f"DROP TABLE IF EXISTS bench.{w}; CREATE TABLE bench.{w} {TARGET_DDL[w]});")


def copy_rows(s, w, target_conn):
    cols = ",".join(COLS[w])
    src = subprocess.Popen([PSQL, "-X", "-q", s.src, "-c", f"\\copy bench.{w} ({cols}) TO STDOUT"],
                           stdout=subprocess.PIPE)
    subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", target_conn, "-c",
                    f"\\copy bench.{w} ({cols}) FROM STDIN"], stdin=src.stdout, check=True)
    src.stdout.close()
    if src.wait() != 0:
        raise RuntimeError("seed copy failed")


def seed(s, w, sz):
    """Rows that exist before the slots: the targets get the same rows directly (not part of the backlog)."""
    if w != "small":
        return
    n = sz["small_seed"]
    sql(s.src, f"""INSERT INTO bench.small (id, full_name, email, tier, balance)
                   SELECT i, 'Customer ' || i, 'customer' || i || '@example.com',
                          (ARRAY['standard','silver','gold'])[1 + i % 3], (i * 13.37)::numeric(12,2)
                   FROM generate_series(1, {n}) i;
                   SELECT setval(pg_get_serial_sequence('bench.small', 'id'), {n});
                   VACUUM ANALYZE bench.small;""")
    copy_rows(s, w, s.orders)
    copy_rows(s, w, s.native)
    sql(s.orders, "VACUUM ANALYZE bench.small")
    sql(s.native, "VACUUM ANALYZE bench.small")


def table_changes(s, w):
    v = sql(s.src, f"SELECT pg_stat_force_next_flush(); SELECT n_tup_ins + n_tup_upd + n_tup_del "
                   f"FROM pg_stat_user_tables WHERE relid = 'bench.{w}'::regclass")
    return int(v.splitlines()[-1])


def run_workload(s, w, sz, out):
    """The backlog (all consumers stopped). Returns the number of row changes it made."""
    env = dict(os.environ, PGOPTIONS="-c synchronous_commit=off")  # generating the backlog only
    before = table_changes(s, w)
    t0 = time.monotonic()
    if w == "small":
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
    elif w == "bulk":
        n = sz["bulk_rows"]
        sql(s.src, f"""SET synchronous_commit = off;
            INSERT INTO bench.bulk SELECT i, i % 1000, 'row ' || i || ' ' || md5(i::text), now(), i * 0.01
            FROM generate_series(1, {n}) i;
            UPDATE bench.bulk SET a = a + 1, d = d + 1;""")
    elif w == "wide":
        n = sz["wide_rows"]
        # ~9.6 kB of md5 hex per row, stored out of line uncompressed; then two passes of updates that leave
        # it unchanged (unchanged-TOAST in the stream), 100 rows per transaction.
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
    changes = table_changes(s, w) - before
    secs = time.monotonic() - t0
    sql(s.src, MARKER[w])
    marker_lsn = sql(s.src, "SELECT pg_current_wal_lsn()")
    wal = sql(s.src, "SELECT pg_size_pretty(pg_current_wal_lsn() - min(restart_lsn)) FROM pg_replication_slots")
    log(f"{w}: {changes} changes generated in {secs:.1f} s; backlog {wal} of WAL; marker before {marker_lsn}")
    return changes + 1, marker_lsn, wal


# ---------------------------------------------------------------------------------------------- consumers


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


SOURCE_EXTRA = {}  # --source: extra [source] keys for cdcsync (streaming = "on", proto_version = 2, ...)
TARGET_EXTRA = {}  # --target: extra [target] keys for cdcsync (toast_compression = "server", ...)
ORDER_SETTINGS = {}  # --order-config: ALTER SYSTEM on the order server (native's database included)


def toml_value(v):
    return v if v.isdigit() or v in ("true", "false") else f'"{v}"'


def cdcsync_config(s, w, tag, batch, metrics_port):
    cols = ", ".join(f'{c} = "{c}"' for c in COLS[w])
    batch_lines = "\n".join(f"{k} = {v}" for k, v in batch.items())
    source_lines = "".join(f"\n{k} = {toml_value(v)}" for k, v in SOURCE_EXTRA.items())
    target_lines = "".join(f"\n{k} = {toml_value(v)}" for k, v in TARGET_EXTRA.items())
    return f"""pipeline = "bench_{w}_{tag}"

[source]
conninfo    = "{s.source_conninfo}"
publication = "bench_{w}"
slot        = "cdcsync_{w}_{tag}"
create_slot = false{source_lines}

[snapshot]
mode = "never"

[target]
conninfo = "{s.target_conninfo}"{target_lines}

[checkpoint]
redis = "{s.redis}"

[metrics]
listen = "127.0.0.1:{metrics_port}"

[batch]
{batch_lines}

[[tables]]
source  = "bench.{w}"
target  = "bench.{w}"
key     = ["id"]
columns = {{ {cols} }}
deletes = "hard"
"""


def stop_child(p, sig=signal.SIGTERM, timeout=30):
    """Stops a child and returns its rusage (os.wait4) or None."""
    if p.returncode is not None:
        return None
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            if p in CHILDREN:
                CHILDREN.remove(p)
            return ru
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    pid, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p in CHILDREN:
        CHILDREN.remove(p)
    return ru


def scrape_metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except Exception:
        return None


def histogram_quantiles(text, name, qs=(0.5, 0.99), scale=1000, unit="ms"):
    """Quantiles from a Prometheus histogram's cumulative buckets (linear inside a bucket)."""
    if not text:
        return None
    buckets = []
    for line in text.splitlines():
        m = re.match(rf'^{name}_bucket\{{.*le="([^"]+)".*\}}\s+(\S+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, float(m.group(2))))
    if not buckets:
        return None
    buckets.sort()
    total = buckets[-1][1]
    if total == 0:
        return None
    res = {}
    for q in qs:
        rank, prev_le, prev_c = q * total, 0.0, 0.0
        for le, c in buckets:
            if c >= rank:
                if le == float("inf"):
                    res[q] = prev_le
                else:
                    res[q] = prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-9))
                break
            prev_le, prev_c = le, c
    return {f"p{int(q * 100)}_{unit}": round(v * scale, 1) for q, v in res.items()} | {"count": int(total)}


def wait_marker(poll_target, sampler, discover, timeout, alive=None, marker_id=-1, table=None):
    """Polls every 10 ms until the marker row is visible; samples /proc meanwhile. Returns seconds or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        discover()
        sampler.sample()
        if poll_target.value(f"SELECT 1 FROM bench.{table} WHERE id = {marker_id}") == "1":
            t = time.monotonic() - t0
            sampler.sample()
            return t
        if alive is not None and not alive():
            return None
        time.sleep(0.01)
    return None


def drain_cdcsync(s, w, tag, out, batch, changes, timeout, profile=False):
    port = free_port()
    cfg = os.path.join(out, f"cdcsync-{w}-{tag}.toml")
    with open(cfg, "w") as f:
        f.write(cdcsync_config(s, w, tag, batch, port))
    logf = open(os.path.join(out, f"cdcsync-{w}-{tag}.log"), "w")
    src_poll, tgt_poll = Session(s.src), Session(s.orders)
    sampler = Sampler()
    perf_procs = []
    load0 = loadavg()
    wal0 = sql(s.orders, "SELECT pg_current_wal_lsn()")
    io0 = sql(s.orders, IO_STATS)
    p = subprocess.Popen([CDCSYNC, "run", "--config", cfg], stdout=logf, stderr=subprocess.STDOUT,
                         start_new_session=True, env=daemon_env(s))
    CHILDREN.append(p)
    sampler.add("cdcsync", p.pid)
    if profile:
        perf_procs.append(start_perf(p.pid, os.path.join(out, f"perf-cdcsync-{w}.data")))

    def discover():
        if "walsender" not in sampler.pids:
            pid = src_poll.value(f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'cdcsync_{w}_{tag}'")
            sampler.add("walsender", pid)
            if pid and profile:
                perf_procs.append(start_perf(int(pid), os.path.join(out, f"perf-walsender-cdcsync-{w}.data")))
        if "target" not in sampler.pids:
            pid = tgt_poll.value("SELECT pid FROM pg_stat_activity WHERE usename = 'cdcsync_target' "
                                 "AND application_name = 'cdcsync' AND datname = 'orders'")
            sampler.add("target", pid)
            if pid and profile:
                perf_procs.append(start_perf(int(pid), os.path.join(out, f"perf-target-{w}.data")))

    try:
        secs = wait_marker(tgt_poll, sampler, discover, timeout, alive=lambda: p.poll() is None, table=w)
        wal_mb = target_wal_mb(s.orders, wal0)
        metrics = scrape_metrics(port)
    finally:
        for pp in perf_procs:
            stop_child(pp, signal.SIGINT, timeout=60)
        ru = stop_child(p)
        logf.close()
        src_poll.close()
        tgt_poll.close()
    io = io_delta(s.orders, io0)
    if secs is None:
        tail = open(os.path.join(out, f"cdcsync-{w}-{tag}.log")).read()[-3000:]
        raise RuntimeError(f"cdcsync did not reach the marker of {w} (exit {p.returncode}); log tail:\n{tail}")
    res = result_row(w, "cdcsync", tag, secs, changes, sampler, "cdcsync", load0)
    res["cdcsync_vmhwm_mb"] = round(sampler.hwm.get("cdcsync", 0) / 1024, 1)
    res["cdcsync_maxrss_mb"] = round(ru.ru_maxrss / 1024, 1) if ru else None
    res["cdcsync_cpu_s_at_exit"] = round(ru.ru_utime + ru.ru_stime, 3) if ru else None
    res["cdcsync_exit"] = p.returncode
    res["batch"] = batch
    res["target_wal_mb"] = wal_mb
    res.update(io)
    if metrics:
        with open(os.path.join(out, f"metrics-{w}-{tag}.txt"), "w") as f:
            f.write(metrics)
        res["batch_rows_hist"] = histogram_quantiles(metrics, "cdcsync_batch_rows", scale=1, unit="rows")
        res["apply_seconds_hist"] = histogram_quantiles(metrics, "cdcsync_apply_duration_seconds")
    return res


def drain_native(s, w, tag, out, changes, timeout, profile=False):
    src_poll, tgt_poll = Session(s.src), Session(s.native)
    sampler = Sampler()
    perf_procs = []
    load0 = loadavg()
    wal0 = sql(s.native, "SELECT pg_current_wal_lsn()")
    io0 = sql(s.native, IO_STATS)
    sql(s.native, f"ALTER SUBSCRIPTION native_{w}_{tag} ENABLE")

    def discover():
        if "walsender" not in sampler.pids:
            pid = src_poll.value(f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'native_{w}_{tag}'")
            sampler.add("walsender", pid)
            if pid and profile:
                perf_procs.append(start_perf(int(pid), os.path.join(out, f"perf-walsender-native-{w}.data")))
        if "target" not in sampler.pids:
            pid = tgt_poll.value(
                f"SELECT pid FROM pg_stat_subscription WHERE subname = 'native_{w}_{tag}' AND relid IS NULL")
            sampler.add("target", pid)
            if pid and profile:
                perf_procs.append(start_perf(int(pid), os.path.join(out, f"perf-native-apply-{w}.data")))

    try:
        secs = wait_marker(tgt_poll, sampler, discover, timeout, table=w)
        wal_mb = target_wal_mb(s.native, wal0)
    finally:
        for pp in perf_procs:
            stop_child(pp, signal.SIGINT, timeout=60)
        sql(s.native, f"ALTER SUBSCRIPTION native_{w}_{tag} DISABLE")
        src_poll.close()
        tgt_poll.close()
    io = io_delta(s.native, io0)
    if secs is None:
        raise RuntimeError(f"native logical replication did not reach the marker of {w}")
    res = result_row(w, "native", tag, secs, changes, sampler, None, load0)
    res["target_wal_mb"] = wal_mb
    res.update(io)
    return res


def drain_recvlogical(s, w, tag, out, changes, marker_lsn, timeout):
    src_poll = Session(s.src)
    sampler = Sampler()
    load0 = loadavg()
    t0 = time.monotonic()
    p = subprocess.Popen([RECVLOGICAL, "-d", s.src, "-S", f"recv_{w}_{tag}", "--start", "--no-loop",
                          "-o", "proto_version=1", "-o", f"publication_names=bench_{w}", "-f", "/dev/null",
                          f"--endpos={marker_lsn}"], start_new_session=True,
                         stderr=open(os.path.join(out, f"recvlogical-{w}-{tag}.log"), "w"))
    CHILDREN.append(p)
    sampler.add("consumer", p.pid)
    ru = None
    try:
        while time.monotonic() - t0 < timeout:
            if "walsender" not in sampler.pids:
                sampler.add("walsender", src_poll.value(
                    f"SELECT active_pid FROM pg_replication_slots WHERE slot_name = 'recv_{w}_{tag}'"))
            sampler.sample()
            pid, status, r = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                secs = time.monotonic() - t0
                p.returncode = os.waitstatus_to_exitcode(status)
                CHILDREN.remove(p)
                ru = r
                break
            time.sleep(0.01)
        else:
            secs = None
    finally:
        if p.returncode is None:
            stop_child(p)
        src_poll.close()
    if secs is None or p.returncode != 0:
        raise RuntimeError(f"pg_recvlogical did not reach the marker of {w} (exit {p.returncode})")
    res = result_row(w, "pg_recvlogical", tag, secs, changes, sampler, None, load0)
    res["consumer_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 3)
    return res


def target_wal_mb(conn, wal0):
    """WAL the order cluster wrote during the drain (both targets live on it; one consumer runs at a time)."""
    return round(float(sql(conn, f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{wal0}')")) / 2**20, 1)


IO_STATS = ("SELECT w.wal_write || ' ' || w.wal_sync || ' ' || w.wal_buffers_full || ' ' || b.buffers_backend "
            "|| ' ' || b.buffers_backend_fsync FROM pg_stat_wal w, pg_stat_bgwriter b")
IO_NAMES = ("wal_writes", "wal_syncs", "wal_buffers_full", "buffers_backend", "buffers_backend_fsync")


def io_delta(conn, io0):
    """The order cluster's WAL writes and syncs and the buffers backends wrote themselves during the drain
    (pg_stat_wal, pg_stat_bgwriter: cluster-wide). Read once the consumer has stopped: a backend reports its
    statistics when it exits, otherwise only every so often while idle."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and sql(conn, "SELECT count(*) FROM pg_stat_activity WHERE "
                                                    "application_name = 'cdcsync' OR backend_type = "
                                                    "'logical replication worker'") != "0":
        time.sleep(0.05)
    io1 = sql(conn, IO_STATS).split()
    return {f"target_{k}": int(b) - int(a) for k, a, b in zip(IO_NAMES, io0.split(), io1)}


def result_row(w, consumer, tag, secs, changes, sampler, own, load0):
    ws = sampler.cpu("walsender")
    tgt = sampler.cpu("target")
    own_cpu = sampler.cpu(own) if own else None
    row = {
        "workload": w, "consumer": consumer, "run": tag, "seconds": round(secs, 3), "changes": changes,
        "changes_per_s": round(changes / secs), "walsender_cpu_s": ws,
        "walsender_cpu_share": round(ws / secs, 3) if ws is not None else None,
        "target_backend_cpu_s": tgt, "consumer_cpu_s": own_cpu,
        "context_switches": dict(sampler.ctxsw),
        "runqueue_wait_s": dict(sampler.rqwait),
        "loadavg_before": load0, "loadavg_after": loadavg(),
    }
    total = (own_cpu or 0) + (tgt or 0)
    if consumer != "pg_recvlogical":
        row["cpu_s_per_million"] = round(total / changes * 1e6, 2)
    return row


def start_perf(pid, path):
    p = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", os.environ.get("CDCSYNC_BENCH_PERF_HZ", "499"), "--call-graph", "dwarf,16384",
                          "-o", path, "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    CHILDREN.append(p)
    return p


# ---------------------------------------------------------------------------------------------- checks


def digest(conn, w):
    cols = ", ".join(COLS[w])
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


# ---------------------------------------------------------------------------------------------- main


def one_workload(s, w, tag, sz, out, consumers, batch, results, profile):
    log(f"== {w} (run {tag}), load average {loadavg()}")
    fresh_tables(s, w)
    seed(s, w, sz)
    # Every consumer's slot first, so the whole workload is backlog for each of them.
    sql(s.src, f"SELECT pg_create_logical_replication_slot('cdcsync_{w}_{tag}', 'pgoutput')")
    sql(s.native, f"CREATE SUBSCRIPTION native_{w}_{tag} CONNECTION 'host=127.0.0.1 port={s.cport} dbname=customers "
                  f"user=cdcsync_admin passfile={s.native_pass}' PUBLICATION bench_{w} "
                  f"WITH (enabled = false, create_slot = true, copy_data = false, slot_name = 'native_{w}_{tag}')")
    subprocess.run([RECVLOGICAL, "-d", s.src, "-S", f"recv_{w}_{tag}", "--create-slot", "-P", "pgoutput"],
                   check=True)
    try:
        changes, marker_lsn, wal = run_workload(s, w, sz, out)
        timeout = 900
        for c in consumers:
            # Both servers start every drain alike: no checkpoint of the workload's writes (the source's) or
            # of the previous drain's (the order server's) lands inside it.
            sql(s.src, "CHECKPOINT")
            sql(s.orders, "CHECKPOINT")
            if c == "cdcsync":
                r = drain_cdcsync(s, w, tag, out, batch, changes, timeout, profile=profile)
            elif c == "native":
                r = drain_native(s, w, tag, out, changes, timeout, profile=profile)
            else:
                r = drain_recvlogical(s, w, tag, out, changes, marker_lsn, timeout)
            r["backlog_wal"] = wal
            results.append(r)
            with open(os.path.join(out, "results.jsonl"), "a") as f:
                f.write(json.dumps(r) + "\n")
            log(f"   {c:15s} {r['seconds']:8.2f} s  {r['changes_per_s']:>9,} changes/s  walsender "
                f"{r['walsender_cpu_share']}  load {r['loadavg_before']}")
        src_digest = digest(s.src, w)
        check = {"workload": w, "run": tag, "kind": "check", "source": src_digest}
        if "cdcsync" in consumers:
            check["cdcsync"] = digest(s.orders, w)
        if "native" in consumers:
            check["native"] = digest(s.native, w)
        check["ok"] = all(check.get(c) == src_digest for c in ("cdcsync", "native") if c in check)
        for c, conn in (("cdcsync", s.orders), ("native", s.native)):
            if c in consumers:
                check[f"{c}_storage"] = storage(conn, w)
        results.append(check)
        with open(os.path.join(out, "results.jsonl"), "a") as f:
            f.write(json.dumps(check) + "\n")
        log(f"   check: {'OK' if check['ok'] else 'MISMATCH'} (source {src_digest})")
    finally:
        sql(s.native, f"DROP SUBSCRIPTION IF EXISTS native_{w}_{tag}", check=False)
        sql(s.src, f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   f"WHERE slot_name IN ('cdcsync_{w}_{tag}', 'recv_{w}_{tag}', 'native_{w}_{tag}') AND NOT active",
            check=False)
        sql(s.src, "CHECKPOINT", check=False)


def lag_test(s, tag, sz, out, batch, results, consumers):
    """A fixed rate with the consumer running: source commit → target insert, per row."""
    rate, secs = sz["lag_rate"], sz["lag_seconds"]
    script = os.path.join(out, "lag.sql")
    with open(script, "w") as f:
        f.write(LAG_SCRIPT)
    fresh_tables(s, "lag")
    for c in [c for c in consumers if c in ("cdcsync", "native")]:
        log(f"== lag at {rate} tx/s for {secs} s: {c} (run {tag}), load average {loadavg()}")
        first_id = int(sql(s.src, "SELECT coalesce(max(id), 0) FROM bench.lag")) + 1
        sql(s.src, "DELETE FROM bench.lag WHERE id < 0")
        proc, port, logf = None, None, None
        if c == "cdcsync":
            sql(s.src, f"SELECT pg_create_logical_replication_slot('cdcsync_lag_{tag}', 'pgoutput')")
            port = free_port()
            cfg = os.path.join(out, f"cdcsync-lag-{tag}.toml")
            with open(cfg, "w") as f:
                f.write(cdcsync_config(s, "lag", tag, batch, port))
            logf = open(os.path.join(out, f"cdcsync-lag-{tag}.log"), "w")
            proc = subprocess.Popen([CDCSYNC, "run", "--config", cfg], stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=daemon_env(s))
            CHILDREN.append(proc)
            conn = s.orders
        else:
            sql(s.native, f"CREATE SUBSCRIPTION native_lag_{tag} CONNECTION 'host=127.0.0.1 port={s.cport} "
                          f"dbname=customers user=cdcsync_admin passfile={s.native_pass}' PUBLICATION bench_lag "
                          f"WITH (copy_data = false, slot_name = 'native_lag_{tag}')")
            conn = s.native
        poll = Session(conn)
        sampler = Sampler()
        try:
            # Warm up: a row must arrive before the clock starts.
            sql(s.src, "INSERT INTO bench.lag (id, v) VALUES (-2, 0)")
            if wait_marker(poll, sampler, lambda: None, 60, marker_id=-2, table="lag") is None:
                raise RuntimeError(f"{c}: the warm-up row never arrived")
            load0 = loadavg()
            # Durable source commits (synchronous_commit = on: a logical walsender only sends flushed WAL) at
            # ~300-500 fsyncs/s on this disk: 2000 tx/s needs group commit, hence 32 clients.
            r = subprocess.run([PGBENCH, "-n", "-c", "32", "-j", "2", "-R", str(rate), "-T", str(secs), "-f", script,
                                "-h", s.sock, "-p", s.cport, "-U", "cdcsync_admin", "customers"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("pgbench failed: " + r.stderr[-2000:])
            tps = re.search(r"tps = ([0-9.]+)", r.stdout)
            sched_lag = re.search(r"rate limit schedule lag: avg ([0-9.]+) \(max ([0-9.]+)\) ms", r.stdout)
            sql(s.src, MARKER["lag"])
            if wait_marker(poll, sampler, lambda: None, 120, table="lag") is None:
                raise RuntimeError(f"{c}: the marker never arrived")
            metrics = scrape_metrics(port) if port else None
        finally:
            poll.close()
            if proc:
                stop_child(proc)
                logf.close()
                sql(s.src, f"SELECT pg_drop_replication_slot('cdcsync_lag_{tag}')", check=False)
            else:
                sql(s.native, f"DROP SUBSCRIPTION IF EXISTS native_lag_{tag}", check=False)
        q = sql(conn, f"""SELECT count(*), round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1),
                                 round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY x)::numeric, 1),
                                 round(1000 * max(x)::numeric, 1)
                          FROM (SELECT extract(epoch FROM applied_at - src_ts) AS x FROM bench.lag
                                WHERE id >= {first_id}) t""").split("|")
        row = {"workload": "lag", "consumer": c, "run": tag, "rate": rate, "seconds": secs,
               "pgbench_tps": float(tps.group(1)) if tps else None,
               "pgbench_schedule_lag_ms": sched_lag.group(0) if sched_lag else None,
               "rows": int(q[0]), "p50_ms": float(q[1]), "p99_ms": float(q[2]), "max_ms": float(q[3]),
               "loadavg_before": load0, "loadavg_after": loadavg()}
        if c == "cdcsync":
            row["batch"] = batch
            if metrics:
                with open(os.path.join(out, f"metrics-lag-{tag}.txt"), "w") as f:
                    f.write(metrics)
                row["histogram_end_to_end"] = histogram_quantiles(metrics, "cdcsync_end_to_end_latency_seconds")
        results.append(row)
        with open(os.path.join(out, "results.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
        log(f"   {c}: {row['rows']} rows at {row['pgbench_tps']} tx/s: p50 {row['p50_ms']} ms, "
            f"p99 {row['p99_ms']} ms, max {row['max_ms']} ms")


def summary(results, out, header):
    lines = [header, "",
             "| workload | run | consumer | changes | seconds | changes/s | vs native | walsender CPU share | "
             "consumer CPU s | target backend CPU s | CPU s per 1M changes | target WAL MB | target WAL syncs / buffers "
             "written by backends | peak RSS MB | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    native = {(r["workload"], r["run"]): r for r in results if r.get("consumer") == "native" and "changes_per_s" in r}
    for r in results:
        if "changes_per_s" not in r:
            continue
        n = native.get((r["workload"], r["run"]))
        ratio = f"{r['changes_per_s'] / n['changes_per_s']:.2f}×" if n else ""
        lines.append(f"| {r['workload']} | {r['run']} | {r['consumer']} | {r['changes']:,} | {r['seconds']} | "
                     f"{r['changes_per_s']:,} | {ratio} | {r['walsender_cpu_share']} | {r.get('consumer_cpu_s')} | "
                     f"{r.get('target_backend_cpu_s') or ''} | {r.get('cpu_s_per_million', '')} | {r.get('target_wal_mb', '')} | "
                     f"{r.get('target_wal_syncs', '')} / {r.get('target_buffers_backend', '')} | "
                     f"{r.get('cdcsync_vmhwm_mb', '')} | {r['loadavg_before']} |")
    lines += ["", "| lag | run | consumer | rate tx/s (achieved) | rows | p50 ms | p99 ms | max ms | metrics histogram | load avg |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("workload") == "lag":
            h = r.get("histogram_end_to_end")
            hs = f"p50 {h['p50_ms']} / p99 {h['p99_ms']} ms" if h else ""
            lines.append(f"| lag | {r['run']} | {r['consumer']} | {r['rate']} ({r['pgbench_tps']}) | {r['rows']:,} | "
                         f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {hs} | {r['loadavg_before']} |")
    lines += ["", "| check | run | result | source | cdcsync | native | cdcsync's table | native's table |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("kind") == "check":
            lines.append(f"| {r['workload']} | {r['run']} | {'OK' if r['ok'] else 'MISMATCH'} | {r['source']} | "
                         f"{r.get('cdcsync', '')} | {r.get('native', '')} | {r.get('cdcsync_storage', '')} | "
                         f"{r.get('native_storage', '')} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


def main():
    global CDCSYNC
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", required=True)
    ap.add_argument("--cdcsync", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workloads", default="small,bulk,wide,lag")
    ap.add_argument("--consumers", default="cdcsync,native,pg_recvlogical")
    ap.add_argument("--batch", default="", help="batch.* overrides: max_rows=20000,max_wait_ms=20,...")
    ap.add_argument("--source", default="", help="extra [source] keys for cdcsync: streaming=on,proto_version=2")
    ap.add_argument("--target", default="", help="extra [target] keys for cdcsync: toast_compression=server")
    ap.add_argument("--order-config", default="",
                    help="ALTER SYSTEM on the order server, for both consumers: default_toast_compression=lz4")
    ap.add_argument("--profile", action="store_true", help="perf record cdcsync, its target backend, native's apply worker and each walsender")
    ap.add_argument("--bulk-rows", type=int, default=0, help="rows of BULK's transactions (default 1M, --quick 100k)")
    a = ap.parse_args()
    CDCSYNC = a.cdcsync
    batch = {}
    for kv in filter(None, a.batch.split(",")):
        k, v = kv.split("=")
        batch[k.strip()] = int(v)
    for kv in filter(None, a.source.split(",")):
        k, v = kv.split("=")
        SOURCE_EXTRA[k.strip()] = v.strip()
    for kv in filter(None, a.target.split(",")):
        k, v = kv.split("=")
        TARGET_EXTRA[k.strip()] = v.strip()
    for kv in filter(None, a.order_config.split(",")):
        k, v = kv.split("=")
        ORDER_SETTINGS[k.strip()] = v.strip()
    os.makedirs(a.out, exist_ok=True)
    s = Servers(a.servers)
    setup_once(s)
    sz = sizes(a.quick)
    if a.bulk_rows:
        sz["bulk_rows"] = a.bulk_rows
    results = []
    # Names (slots, pipelines, subscriptions) unique per invocation: progress rows and Redis checkpoints of an
    # earlier invocation on the same servers never meet a new slot.
    run_id = format(int(time.time()) % 46656, "x")
    workloads = a.workloads.split(",")
    consumers = a.consumers.split(",")
    try:
        for run in range(1, a.runs + 1):
            # Alternate who drains first (the first one may read the WAL from disk, the others from cache).
            order = consumers if run % 2 == 1 else list(reversed(consumers))
            for w in workloads:
                if w == "lag":
                    lag_test(s, f"r{run}_{run_id}", sz, a.out, batch, results, order)
                else:
                    one_workload(s, w, f"r{run}_{run_id}", sz, a.out, order, batch, results, a.profile)
    finally:
        for p in list(CHILDREN):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in list(CHILDREN):
            try:
                p.wait(timeout=10)
            except Exception:
                p.kill()
        header = (f"## {time.strftime('%Y-%m-%d %H:%M %Z')} — {'quick' if a.quick else 'full'}, {a.runs} run(s), "
                  f"batch {batch or 'defaults'}, {os.cpu_count()} CPUs")
        if results:
            summary(results, a.out, header)


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # run.sh starts us in the background (SIGINT ignored)
    try:
        main()
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
