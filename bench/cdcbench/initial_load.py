"""The SNAPSHOT workloads: an initial load of a large table into an empty one. Each consumer copies the same
source table into its own empty target table, one after the other (run 1: in the order given, run 2 the
reverse), each right after a CHECKPOINT of both servers:

- cdcsync: `cdcsync run --config` with `create_slot = true` and `snapshot.mode = "initial"` (a new slot, its
  exported snapshot, the bulk loader), timed from its start until its log says "snapshot complete";
- native: PostgreSQL's tablesync, `CREATE SUBSCRIPTION ... WITH (copy_data = true)`, timed from the CREATE
  until the table is in state 'r' (ready) in pg_subscription_rel;
- pgcopydb: `pgcopydb copy table-data --table-jobs 2` of that one table (its filters), timed until it exits.

Rows/s is the table's rows over those seconds; cdcsync's peak RSS is its VmHWM. Each target is then checked
against the source (count and md5 over every row). The source table is seeded once per invocation and kept
between runs (its rows are not what is measured)."""
import os
import re
import shutil
import subprocess
import time

from .consumers import CDCSYNC, daemon_env, toml_value
from .sampling import Sampler
from .servers import CHILDREN, Session, free_port, loadavg, log, sql, stop_child
from .workloads import WORKLOADS, digest

SNAPSHOT_EXTRA = {}  # --snapshot: extra [snapshot] keys for cdcsync (parallel = 4, truncate = true, rebuild_indexes = true, ...)
LOAD_TIMEOUT_S = 1800


def ensure_source(s, w, sz):
    """The source table with its rows, seeded once (kept when it already holds them)."""
    wl = WORKLOADS[w]
    rows = sz[wl.rows_key]
    exists = sql(s.src, f"SELECT to_regclass('bench.{w}') IS NOT NULL") == "t"
    if exists and sql(s.src, f"SELECT count(*) FROM bench.{w}") == str(rows):
        return rows
    t0 = time.monotonic()
    sql(s.src, f"DROP PUBLICATION IF EXISTS bench_{w}; DROP TABLE IF EXISTS bench.{w};"
               f"CREATE TABLE bench.{w} {wl.source_ddl}; GRANT SELECT ON bench.{w} TO cdcsync_source;"
               f"CREATE PUBLICATION bench_{w} FOR TABLE bench.{w};")
    wl.seed(s, sz)
    sql(s.src, f"VACUUM ANALYZE bench.{w}; CHECKPOINT")
    log(f"{w}: {rows:,} source rows seeded in {time.monotonic() - t0:.1f} s "
        f"({sql(s.src, f'SELECT pg_size_pretty(pg_table_size(%s))' % repr('bench.' + w))})")
    return rows


def fresh_target(s, w, consumer):
    """An empty target table without autovacuum: the autovacuum of the previous consumer's freshly loaded table
    (5M inserted rows pass autovacuum_vacuum_insert_threshold) would otherwise read and write it during the
    next consumer's load."""
    wl = WORKLOADS[w]
    if consumer == "cdcsync":
        grant = "SELECT, INSERT, UPDATE, DELETE" + (", TRUNCATE" if SNAPSHOT_EXTRA.get("truncate") == "true" else "")
        sql(s.orders, f"DROP TABLE IF EXISTS bench.{w}; CREATE TABLE bench.{w} {wl.target_ddl}, "
                      f"_cdc_lsn pg_lsn NOT NULL DEFAULT '0/0') WITH (autovacuum_enabled = false); GRANT {grant} ON bench.{w} TO cdcsync_target;")
        if SNAPSHOT_EXTRA.get("rebuild_indexes") == "true":
            # The opt-in's privileges: the role owns the table and may create its indexes in the schema.
            sql(s.orders, f"ALTER TABLE bench.{w} OWNER TO cdcsync_target; GRANT CREATE ON SCHEMA bench TO cdcsync_target;")
    else:
        conn = s.native if consumer == "native" else s.pgcopydb
        sql(conn, f"CREATE SCHEMA IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.{w}; "
                  f"CREATE TABLE bench.{w} {wl.target_ddl}) WITH (autovacuum_enabled = false);")


def cdcsync_snapshot_config(s, w, tag, port):
    cols = ", ".join(f'{c} = "{c}"' for c in WORKLOADS[w].columns)
    extra = "".join(f"\n{k} = {toml_value(v)}" for k, v in SNAPSHOT_EXTRA.items())
    return f"""pipeline = "bench_{w}_{tag}"

[source]
conninfo    = "{s.source_conninfo}"
publication = "bench_{w}"
slot        = "cdcsync_{w}_{tag}"
create_slot = true

[snapshot]
mode = "initial"{extra}

[target]
conninfo = "{s.target_conninfo}"

[checkpoint]
redis = "{s.redis}"

[metrics]
listen = "127.0.0.1:{port}"

[[tables]]
source  = "bench.{w}"
target  = "bench.{w}"
key     = ["id"]
columns = {{ {cols} }}
deletes = "hard"
"""


def row(w, consumer, tag, secs, rows, load0, cpu=None):
    return {"kind": "initial_load", "workload": w, "consumer": consumer, "run": tag, "seconds": round(secs, 3), "changes": rows,
            "rows": rows, "changes_per_s": round(rows / secs), "walsender_cpu_share": None,
            "consumer_cpu_s": cpu, "loadavg_before": load0, "loadavg_after": loadavg()}


def load_cdcsync(s, w, tag, out, rows):
    port = free_port()
    cfg = os.path.join(out, f"cdcsync-{w}-{tag}.toml")
    with open(cfg, "w") as f:
        f.write(cdcsync_snapshot_config(s, w, tag, port))
    log_path = os.path.join(out, f"cdcsync-{w}-{tag}.log")
    logf = open(log_path, "w")
    load0 = loadavg()
    sampler = Sampler()
    t0 = time.monotonic()
    p = subprocess.Popen([CDCSYNC["bin"], "run", "--config", cfg], stdout=logf, stderr=subprocess.STDOUT,
                         start_new_session=True, env=daemon_env(s))
    CHILDREN.append(p)
    sampler.add("cdcsync", p.pid)
    secs = None
    try:
        while time.monotonic() - t0 < LOAD_TIMEOUT_S and p.poll() is None:
            sampler.sample()
            with open(log_path) as f:
                text = f.read()
            if "snapshot complete" in text:
                secs = time.monotonic() - t0
                sampler.sample()
                break
            time.sleep(0.01)
    finally:
        ru = stop_child(p)
        logf.close()
        sql(s.src, f"SELECT pg_drop_replication_slot('cdcsync_{w}_{tag}') FROM pg_replication_slots "
                   f"WHERE slot_name = 'cdcsync_{w}_{tag}' AND NOT active", check=False)
    if secs is None:
        raise RuntimeError(f"cdcsync never completed the snapshot of {w}; log tail:\n" + open(log_path).read()[-3000:])
    r = row(w, "cdcsync", tag, secs, rows, load0, sampler.cpu("cdcsync"))
    r["cdcsync_vmhwm_mb"] = round(sampler.hwm.get("cdcsync", 0) / 1024, 1)
    r["cdcsync_maxrss_mb"] = round(ru.ru_maxrss / 1024, 1) if ru else None
    r["snapshot"] = dict(SNAPSHOT_EXTRA)
    parts = re.findall(r"rows in (\d+) part\(s\)[^,]*, (\w+)", open(log_path).read())
    if parts:
        r["parts"], r["format"] = int(parts[0][0]), parts[0][1]
    return r


def load_native(s, w, tag, rows):
    poll = Session(s.native)
    load0 = loadavg()
    t0 = time.monotonic()
    try:
        sql(s.native, f"CREATE SUBSCRIPTION native_{w}_{tag} CONNECTION 'host=127.0.0.1 port={s.cport} "
                      f"dbname=customers user=cdcsync_admin passfile={s.native_pass}' PUBLICATION bench_{w} "
                      f"WITH (copy_data = true, slot_name = 'native_{w}_{tag}')")
        secs = None
        while time.monotonic() - t0 < LOAD_TIMEOUT_S:
            state = poll.value(f"SELECT string_agg(r.srsubstate::text, '') FROM pg_subscription_rel r JOIN "
                               f"pg_subscription s ON s.oid = r.srsubid WHERE s.subname = 'native_{w}_{tag}'")
            if state == "r":
                secs = time.monotonic() - t0
                break
            time.sleep(0.01)
    finally:
        poll.close()
        sql(s.native, f"DROP SUBSCRIPTION IF EXISTS native_{w}_{tag}", check=False)
    if secs is None:
        raise RuntimeError(f"native tablesync of {w} never reached state r")
    return row(w, "native", tag, secs, rows, load0)


def load_pgcopydb(s, w, tag, out, rows):
    filters = os.path.join(out, f"pgcopydb-{w}.ini")
    with open(filters, "w") as f:
        f.write(f"[include-only-table]\nbench.{w}\n")
    work = os.path.join(out, f"pgcopydb-{w}-{tag}")
    load0 = loadavg()
    t0 = time.monotonic()
    r = subprocess.run(["pgcopydb", "copy", "table-data", "--source",
                        f"postgres://cdcsync_admin@127.0.0.1:{s.cport}/customers", "--target",
                        f"postgres://cdcsync_admin@127.0.0.1:{s.oport}/pgcopydb", "--dir", work,
                        "--table-jobs", "2", "--filters", filters],
                       capture_output=True, text=True, env=daemon_env(s))
    secs = time.monotonic() - t0
    with open(os.path.join(out, f"pgcopydb-{w}-{tag}.log"), "w") as f:
        f.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise RuntimeError(f"pgcopydb failed ({r.returncode}): {r.stderr[-2000:]}")
    return row(w, "pgcopydb", tag, secs, rows, load0)


def initial_load_test(s, w, tag, sz, out, consumers, results, append_result):
    log(f"== {w} (run {tag}), load average {loadavg()}")
    rows = ensure_source(s, w, sz)
    check = {"workload": w, "run": tag, "kind": "check", "source": digest(s.src, w)}
    for c in consumers:
        fresh_target(s, w, c)
        sql(s.src, "CHECKPOINT")
        sql(s.orders, "CHECKPOINT")
        if c == "cdcsync":
            r = load_cdcsync(s, w, tag, out, rows)
        elif c == "native":
            r = load_native(s, w, tag, rows)
        elif c == "pgcopydb":
            if shutil.which("pgcopydb") is None:
                log("   pgcopydb: not installed (Debian package pgcopydb), skipped")
                continue
            r = load_pgcopydb(s, w, tag, out, rows)
        else:
            log(f"   {c}: not a consumer of initial loads, skipped")
            continue
        results.append(r)
        append_result(out, r)
        log(f"   {c:15s} {r['seconds']:8.2f} s  {r['changes_per_s']:>9,} rows/s  "
            f"{'peak RSS ' + str(r['cdcsync_vmhwm_mb']) + ' MB  ' if 'cdcsync_vmhwm_mb' in r else ''}"
            f"load {r['loadavg_before']}")
        check[c] = digest({"cdcsync": s.orders, "native": s.native, "pgcopydb": s.pgcopydb}[c], w)
    check["ok"] = all(check[c] == check["source"] for c in ("cdcsync", "native", "pgcopydb") if c in check)
    results.append(check)
    append_result(out, check)
    log(f"   check: {'OK' if check['ok'] else 'MISMATCH'} (source {check['source']})")
