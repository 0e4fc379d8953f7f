"""The consumers: cdcsync as deployed, PostgreSQL's native subscription, pg_recvlogical. Each drains the
backlog of one workload and is timed from its start until the marker is visible in its target (pg_recvlogical:
until it exits at --endpos); returns one result row."""
import os
import re
import signal
import subprocess
import time
import urllib.request

from .sampling import Sampler, start_perf
from .servers import CHILDREN, RECVLOGICAL, Session, free_port, loadavg, sql, stop_child
from .workloads import WORKLOADS

SOURCE_EXTRA = {}  # --source: extra [source] keys for cdcsync (streaming = "on", proto_version = 2, ...)
TARGET_EXTRA = {}  # --target: extra [target] keys for cdcsync (toast_compression = "server", ...)
CDCSYNC = {"bin": None}  # --cdcsync: the binary


def daemon_env(s):
    """The daemon's environment: the bench's password file, and CDCSYNC_BENCH_DAEMON_TUNABLES as its
    GLIBC_TUNABLES (allocator experiments on the daemon alone, not on the servers)."""
    env = dict(os.environ, PGPASSFILE=s.passfile)
    if os.environ.get("CDCSYNC_BENCH_DAEMON_TUNABLES"):
        env["GLIBC_TUNABLES"] = os.environ["CDCSYNC_BENCH_DAEMON_TUNABLES"]
    return env


def toml_value(v):
    return v if v.isdigit() or v in ("true", "false") else f'"{v}"'


def cdcsync_config(s, w, tag, batch, metrics_port):
    cols = ", ".join(f'{c} = "{c}"' for c in WORKLOADS[w].columns)
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


def start_cdcsync(s, w, tag, out, batch):
    """cdcsync run --config, as deployed (Redis checkpoints, scram over TCP, metrics endpoint). Returns the
    process, its metrics port and its open log file."""
    port = free_port()
    cfg = os.path.join(out, f"cdcsync-{w}-{tag}.toml")
    with open(cfg, "w") as f:
        f.write(cdcsync_config(s, w, tag, batch, port))
    logf = open(os.path.join(out, f"cdcsync-{w}-{tag}.log"), "w")
    p = subprocess.Popen([CDCSYNC["bin"], "run", "--config", cfg], stdout=logf, stderr=subprocess.STDOUT,
                         start_new_session=True, env=daemon_env(s))
    CHILDREN.append(p)
    return p, port, logf


def scrape_metrics(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except Exception:
        return None


def histogram_quantiles(text, name, qs=(0.5, 0.99), scale=1000, unit="ms", label=None):
    """Quantiles from a Prometheus histogram's cumulative buckets (linear inside a bucket); `label`, e.g.
    'stage="commit"': the series with it."""
    if not text:
        return None
    buckets = []
    for line in text.splitlines():
        m = re.match(rf'^{name}_bucket\{{.*le="([^"]+)".*\}}\s+(\S+)', line)
        if m and (label is None or label in line):
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


STAGES = ("receipt", "source_sent", "handoff", "batch_wait", "statements", "progress_row", "commit", "commit_flushed", "mirror")


def stage_quantiles(text):
    """cdcsync_stage_seconds: p50 and p99 of each stage in microseconds (stages never observed left out)."""
    res = {}
    for st in STAGES:
        q = histogram_quantiles(text, "cdcsync_stage_seconds", scale=1e6, unit="us", label=f'stage="{st}"')
        if q:
            res[st] = q
    return res


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


def drain_cdcsync(s, w, tag, out, batch, changes, timeout, profile=False):
    src_poll, tgt_poll = Session(s.src), Session(s.orders)
    sampler = Sampler()
    perf_procs = []
    load0 = loadavg()
    wal0 = sql(s.orders, "SELECT pg_current_wal_lsn()")
    io0 = sql(s.orders, IO_STATS)
    p, port, logf = start_cdcsync(s, w, tag, out, batch)
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
    # The apply worker is a backend: its VmHWM includes the shared buffers it touched.
    res["apply_worker_vmhwm_mb"] = round(sampler.hwm.get("target", 0) / 1024, 1)
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
