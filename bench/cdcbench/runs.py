"""One measured run of a workload. drain_all: every consumer's slot first, the backlog with all of them
stopped, then each drains it in turn after a CHECKPOINT of both servers, and both targets are checked against
the source. lag_test: a fixed rate with the consumer running, source statement time to target insert time."""
import json
import os
import re
import subprocess

from .consumers import (drain_cdcsync, drain_native, drain_recvlogical, histogram_quantiles, stage_quantiles,
                        scrape_metrics, start_cdcsync, wait_marker)
from .initial_load import initial_load_test
from .sampling import Sampler
from .servers import PGBENCH, RECVLOGICAL, Session, log, loadavg, sql, stop_child
from .workloads import LAG_SCRIPT, WORKLOADS, digest, fresh_tables, run_workload, seed, storage

DRAIN_TIMEOUT_S = 900


def append_result(out, row):
    with open(os.path.join(out, "results.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")


def create_slots(s, w, tag):
    """Every consumer's slot first, so the whole workload is backlog for each of them."""
    sql(s.src, f"SELECT pg_create_logical_replication_slot('cdcsync_{w}_{tag}', 'pgoutput')")
    sql(s.native, f"CREATE SUBSCRIPTION native_{w}_{tag} CONNECTION 'host=127.0.0.1 port={s.cport} dbname=customers "
                  f"user=cdcsync_admin passfile={s.native_pass}' PUBLICATION bench_{w} "
                  f"WITH (enabled = false, create_slot = true, copy_data = false, slot_name = 'native_{w}_{tag}')")
    subprocess.run([RECVLOGICAL, "-d", s.src, "-S", f"recv_{w}_{tag}", "--create-slot", "-P", "pgoutput"],
                   check=True)


def check_targets(s, w, tag, consumers):
    """count(*) and md5 over every row of each target against the source, and each target table's size."""
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
    return check


def drain_all(s, w, tag, sz, out, consumers, batch, results, profile):
    log(f"== {w} (run {tag}), load average {loadavg()}")
    fresh_tables(s, w)
    seed(s, w, sz)
    create_slots(s, w, tag)
    try:
        changes, marker_lsn, wal = run_workload(s, w, sz, out)
        for c in consumers:
            # Both servers start every drain alike: no checkpoint of the workload's writes (the source's) or
            # of the previous drain's (the order server's) lands inside it.
            sql(s.src, "CHECKPOINT")
            sql(s.orders, "CHECKPOINT")
            if c == "cdcsync":
                r = drain_cdcsync(s, w, tag, out, batch, changes, DRAIN_TIMEOUT_S, profile=profile)
            elif c == "native":
                r = drain_native(s, w, tag, out, changes, DRAIN_TIMEOUT_S, profile=profile)
            else:
                r = drain_recvlogical(s, w, tag, out, changes, marker_lsn, DRAIN_TIMEOUT_S)
            r["backlog_wal"] = wal
            results.append(r)
            append_result(out, r)
            log(f"   {c:15s} {r['seconds']:8.2f} s  {r['changes_per_s']:>9,} changes/s  walsender "
                f"{r['walsender_cpu_share']}  load {r['loadavg_before']}")
        check = check_targets(s, w, tag, consumers)
        results.append(check)
        append_result(out, check)
        log(f"   check: {'OK' if check['ok'] else 'MISMATCH'} (source {check['source']})")
    finally:
        sql(s.native, f"DROP SUBSCRIPTION IF EXISTS native_{w}_{tag}", check=False)
        sql(s.src, f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                   f"WHERE slot_name IN ('cdcsync_{w}_{tag}', 'recv_{w}_{tag}', 'native_{w}_{tag}') AND NOT active",
            check=False)
        sql(s.src, "CHECKPOINT", check=False)


def lag_percentiles(conn, first_id, until="applied_at", join=""):
    """count, p50, p99 and max in ms of `until` − src_ts over the run's rows."""
    return sql(conn, f"""SELECT count(*), round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY x)::numeric, 1),
                                round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY x)::numeric, 1),
                                round(1000 * max(x)::numeric, 1)
                         FROM (SELECT extract(epoch FROM {until} - src_ts) AS x FROM bench.lag {join}
                               WHERE lag.id >= {first_id}) t""").split("|")


def lag_test(s, tag, sz, out, batch, results, consumers):
    """Fixed rates with the consumer running: source commit → target insert, per row."""
    script = os.path.join(out, "lag.sql")
    with open(script, "w") as f:
        f.write(LAG_SCRIPT)
    fresh_tables(s, "lag")
    for rate in sz["lag_rates"]:
        for c in [c for c in consumers if c in ("cdcsync", "native")]:
            results.append(lag_one(s, f"{tag}_{rate}", rate, sz["lag_seconds"], c, out, batch, script))


def lag_find_max(s, tag, sz, out, batch, results, consumers):
    """The highest steady rate of sz["lag_find_max"] (ascending) each consumer keeps with p99 < 100 ms: rates are
    tried in turn until one misses (p99 ≥ 100 ms, or pgbench fell 5 % short of the rate: the source could not
    take it)."""
    script = os.path.join(out, "lag.sql")
    with open(script, "w") as f:
        f.write(LAG_SCRIPT)
    fresh_tables(s, "lag")
    for c in [c for c in consumers if c in ("cdcsync", "native")]:
        best, stopped = None, None
        for rate in sz["lag_find_max"]:
            row = lag_one(s, f"{tag}_max{rate}", rate, sz["lag_seconds"], c, out, batch, script)
            row["search"] = "lag_find_max"
            results.append(row)
            if row["p99_ms"] >= 100 or (row["pgbench_tps"] or 0) < 0.95 * rate:
                stopped = f"{rate} tx/s: p99 {row['p99_ms']} ms at {row['pgbench_tps']} tx/s achieved"
                break
            best = rate
        res = {"workload": "lag_max", "consumer": c, "run": tag, "max_rate": best, "stopped_at": stopped,
               "loadavg": loadavg()}
        results.append(res)
        append_result(out, res)
        log(f"   {c}: highest steady rate with p99 < 100 ms: {best} tx/s (stopped at {stopped})")


def lag_one(s, tag, rate, secs, c, out, batch, script):
    """One consumer at one rate; returns its row."""
    log(f"== lag at {rate} tx/s for {secs} s: {c} (run {tag}), load average {loadavg()}")
    first_id = int(sql(s.src, "SELECT coalesce(max(id), 0) FROM bench.lag")) + 1
    sql(s.src, "DELETE FROM bench.lag WHERE id < 0")
    proc, port, logf = None, None, None
    if c == "cdcsync":
        sql(s.src, f"SELECT pg_create_logical_replication_slot('cdcsync_lag_{tag}', 'pgoutput')")
        proc, port, logf = start_cdcsync(s, "lag", tag, out, batch)
        conn = s.orders
    else:
        sql(s.native, f"CREATE SUBSCRIPTION native_lag_{tag} CONNECTION 'host=127.0.0.1 port={s.cport} "
                      f"dbname=customers user=cdcsync_admin passfile={s.native_pass}' PUBLICATION bench_lag "
                      f"WITH (copy_data = false, slot_name = 'native_lag_{tag}')")
        conn = s.native
    # The markers of an earlier rate are still in the target (their delete on the source was not streamed).
    sql(conn, "DELETE FROM bench.lag WHERE id < 0")
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
        sql(s.src, WORKLOADS["lag"].marker)
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
    q = lag_percentiles(conn, first_id)
    # Until the row's target transaction committed (workloads.LAG_COMMITTED_DDL), for both consumers.
    cq = lag_percentiles(conn, first_id, "lag_committed.at", "JOIN bench.lag_committed USING (id)")
    # When the slow rows came: the 100 ms slices of the run holding the most rows over 5 ms (a periodic stall
    # shows as evenly spaced slices).
    slow = sql(conn, f"""SELECT coalesce(string_agg(format('%s s:%s', t / 10.0, n), ' ' ORDER BY t), '') FROM (
                           SELECT t, count(*) AS n FROM (
                             SELECT floor(extract(epoch FROM src_ts - first) * 10)::int AS t,
                                    extract(epoch FROM applied_at - src_ts) AS x
                             FROM bench.lag, (SELECT min(src_ts) AS first FROM bench.lag WHERE id >= {first_id}) f
                             WHERE id >= {first_id}) r
                           WHERE x > 0.005 GROUP BY t ORDER BY n DESC LIMIT 12) top""")
    row = {"workload": "lag", "consumer": c, "run": tag, "rate": rate, "seconds": secs,
           "pgbench_tps": float(tps.group(1)) if tps else None,
           "pgbench_schedule_lag_ms": sched_lag.group(0) if sched_lag else None,
           "rows": int(q[0]), "p50_ms": float(q[1]), "p99_ms": float(q[2]), "max_ms": float(q[3]),
           "committed_p50_ms": float(cq[1]), "committed_p99_ms": float(cq[2]), "committed_max_ms": float(cq[3]),
           "loadavg_before": load0, "loadavg_after": loadavg(), "slow_slices": slow}
    if c == "cdcsync":
        row["batch"] = batch
        if metrics:
            with open(os.path.join(out, f"metrics-lag-{tag}.txt"), "w") as f:
                f.write(metrics)
            row["histogram_end_to_end"] = histogram_quantiles(metrics, "cdcsync_end_to_end_latency_seconds")
            row["stages_us"] = stage_quantiles(metrics)
    append_result(out, row)
    log(f"   {c}: rows over 5 ms in the 12 slowest 100 ms slices of the run (s from its start: rows): {slow}")
    log(f"   {c}: {row['rows']} rows at {row['pgbench_tps']} tx/s: p50 {row['p50_ms']} ms, "
        f"p99 {row['p99_ms']} ms, max {row['max_ms']} ms; until its target commit p50 {row['committed_p50_ms']} "
        f"p99 {row['committed_p99_ms']} max {row['committed_max_ms']} ms")
    if row.get("stages_us"):
        log("   stages p50/p99 us: " + ", ".join(f"{k} {v.get('p50_us')}/{v.get('p99_us')}"
                                                for k, v in row["stages_us"].items()))
    return row


def measure(s, w, tag, sz, out, consumers, batch, results, profile):
    """One run of workload w: drained from a backlog, measured live (lag), or an initial load (snapshot)."""
    if WORKLOADS[w].initial_load:
        initial_load_test(s, w, tag, sz, out, consumers, results, append_result)
    elif WORKLOADS[w].live and sz.get("lag_find_max"):
        lag_find_max(s, tag, sz, out, batch, results, consumers)
    elif WORKLOADS[w].live:
        lag_test(s, tag, sz, out, batch, results, consumers)
    else:
        drain_all(s, w, tag, sz, out, consumers, batch, results, profile)
