#!/usr/bin/env python3
"""Driver of bench/run.sh: cdcsync vs PostgreSQL's native logical replication vs pg_recvlogical.

Runs against servers started by scripts/servers.sh (their DIR/env). For each workload and run: fresh source
table, publication and target tables; every consumer's slot is created first; the workload runs while all
consumers are stopped (the backlog accumulates); a marker row (id = -1) is committed last; then each consumer
drains the same backlog in turn and is timed until the marker is visible in its target (pg_recvlogical: until
it passes the marker's LSN, --endpos). Writes one JSON object per measurement to OUT/results.jsonl and a
summary to OUT/summary.md. Everything it starts is stopped in `finally` (and run.sh stops the servers).
Standard library only (psql, pgbench and pg_recvlogical as subprocesses). The code is in cdcbench/ (see its
__init__.py); a workload is added in cdcbench/workloads.py.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdcbench import consumers, initial_load, servers  # noqa: E402
from cdcbench.report import summary  # noqa: E402
from cdcbench.runs import measure  # noqa: E402
from cdcbench.servers import Servers, log, setup_once, stop_all_children  # noqa: E402
from cdcbench.workloads import WORKLOADS, sizes  # noqa: E402


def key_values(text, into, convert=lambda v: v.strip()):
    for kv in filter(None, text.split(",")):
        k, v = kv.split("=")
        into[k.strip()] = convert(v)
    return into


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--servers", required=True)
    ap.add_argument("--cdcsync", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--workloads", default="small,bulk,wide,lag", help="any of " + ",".join(WORKLOADS))
    ap.add_argument("--consumers", default="cdcsync,native,pg_recvlogical",
                    help="drains: cdcsync, native, pg_recvlogical; initial loads: cdcsync, native, pgcopydb")
    ap.add_argument("--batch", default="", help="batch.* overrides: max_rows=20000,max_wait_ms=20,...")
    ap.add_argument("--source", default="", help="extra [source] keys for cdcsync: streaming=on,proto_version=2")
    ap.add_argument("--target", default="", help="extra [target] keys for cdcsync: toast_compression=server")
    ap.add_argument("--target-socket", action="store_true",
                    help="cdcsync reaches the order server over its unix socket, as when it runs beside it (native's "
                         "apply worker runs inside it); default: TCP over loopback")
    ap.add_argument("--snapshot", default="", help="extra [snapshot] keys for cdcsync (the SNAPSHOT workloads): "
                                                   "parallel=4,truncate=true")
    ap.add_argument("--order-config", default="",
                    help="ALTER SYSTEM on the order server, for both consumers: default_toast_compression=lz4")
    ap.add_argument("--profile", action="store_true", help="perf record cdcsync, its target backend, native's apply worker and each walsender")
    ap.add_argument("--lag-rates", default="", help="lag: rates in tx/s, each measured in turn (default 2000)")
    ap.add_argument("--lag-find-max", default="",
                    help="lag: instead of --lag-rates, the highest of these ascending rates each consumer keeps with p99 < 100 ms")
    ap.add_argument("--lag-seconds", type=int, default=0, help="lag: seconds per rate (default 30, --quick 10)")
    ap.add_argument("--bulk-rows", type=int, default=0, help="rows of BULK's transactions (default 1M, --quick 100k)")
    a = ap.parse_args()
    unknown = [w for w in a.workloads.split(",") if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload {', '.join(unknown)} (known: {', '.join(WORKLOADS)})")
    return a


def main():
    a = parse_args()
    consumers.CDCSYNC["bin"] = a.cdcsync
    batch = key_values(a.batch, {}, int)
    key_values(a.source, consumers.SOURCE_EXTRA)
    key_values(a.target, consumers.TARGET_EXTRA)
    key_values(a.snapshot, initial_load.SNAPSHOT_EXTRA)
    key_values(a.order_config, servers.ORDER_SETTINGS)
    os.makedirs(a.out, exist_ok=True)
    s = Servers(a.servers)
    if a.target_socket:
        s.target_conninfo = s.target_conninfo.replace("host=127.0.0.1", f"host={s.sock}")
    setup_once(s)
    sz = sizes(a.quick)
    if a.bulk_rows:
        sz["bulk_rows"] = a.bulk_rows
    if a.lag_rates:
        sz["lag_rates"] = [int(r) for r in a.lag_rates.split(",")]
    if a.lag_find_max:
        sz["lag_find_max"] = [int(r) for r in a.lag_find_max.split(",")]
    if a.lag_seconds:
        sz["lag_seconds"] = a.lag_seconds
    results = []
    # Names (slots, pipelines, subscriptions) unique per invocation: progress rows and Redis checkpoints of an
    # earlier invocation on the same servers never meet a new slot.
    run_id = format(int(time.time()) % 46656, "x")
    try:
        for run in range(1, a.runs + 1):
            # Alternate who drains first (the first one may read the WAL from disk, the others from cache).
            order = a.consumers.split(",")
            if run % 2 == 0:
                order.reverse()
            for w in a.workloads.split(","):
                measure(s, w, f"r{run}_{run_id}", sz, a.out, order, batch, results, a.profile)
    finally:
        stop_all_children()
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
