"""The servers a run measures against (started by scripts/servers.sh), psql, and the children to stop."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PSQL = f"{PG_BIN}/psql"
PGBENCH = f"{PG_BIN}/pgbench"
RECVLOGICAL = f"{PG_BIN}/pg_recvlogical"
REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

CHILDREN = []  # Popen objects to stop on the way out
ORDER_SETTINGS = {}  # --order-config: ALTER SYSTEM on the order server (native's database included)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


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
        self.pgcopydb = f"host={sock} port={self.oport} dbname=pgcopydb user=cdcsync_admin"
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


def setup_once(s):
    """The bench's schemas, native's database and password file, and the order server's settings."""
    sql(s.src, "CREATE SCHEMA IF NOT EXISTS bench; GRANT USAGE ON SCHEMA bench TO cdcsync_source;")
    sql(s.orders, "CREATE SCHEMA IF NOT EXISTS bench; GRANT USAGE ON SCHEMA bench TO cdcsync_target;")
    if sql(s.orders, "SELECT 1 FROM pg_database WHERE datname = 'native'") != "1":
        sql(s.orders, "CREATE DATABASE native")
    sql(s.native, "CREATE SCHEMA IF NOT EXISTS bench")
    if sql(s.orders, "SELECT 1 FROM pg_database WHERE datname = 'pgcopydb'") != "1":
        sql(s.orders, "CREATE DATABASE pgcopydb")  # pgcopydb's target in the SNAPSHOT workloads
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
    # Each drain starts right after a CHECKPOINT instead (runs.drain_all), with room for its whole WAL.
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
            servers_sh = os.path.join(REPO, "scripts", "servers.sh")
            subprocess.run(["bash", servers_sh, "pg-stop", s.dir, "order", "fast"], check=True,
                           stdout=subprocess.DEVNULL)
            env = dict(os.environ)
            if env.get("CDCSYNC_BENCH_ORDER_PRELOAD"):  # run.sh --order-fsync-delay-us
                env["LD_PRELOAD"] = env["CDCSYNC_BENCH_ORDER_PRELOAD"]
            subprocess.run(["bash", servers_sh, "pg-start", s.dir, "order"], check=True, stdout=subprocess.DEVNULL,
                           env=env)
            log("order server restarted for " + ", ".join(ORDER_SETTINGS))


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


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


def stop_all_children():
    """Everything still running that the bench started (on the way out, also on error and Ctrl-C)."""
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
