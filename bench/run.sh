#!/usr/bin/env bash
# cdcsync vs PostgreSQL's native logical replication vs pg_recvlogical, on throwaway servers.
#
#   bash bench/run.sh [--quick] [--runs N] [--workloads small,bulk,wide,lag,snapshot,snapshot_wide]
#                     [--consumers cdcsync,native,pg_recvlogical,pgcopydb]
#                     [--batch max_rows=20000,max_wait_ms=20,...] [--source streaming=on,proto_version=2]
#                     [--target toast_compression=server] [--snapshot parallel=4,truncate=true]
#                     [--order-config default_toast_compression=lz4]
#                     [--bulk-rows N] [--lag-rates 2000,5000] [--lag-find-max 2000,4000,...] [--lag-seconds N]
#                     [--order-fsync-delay-us N] [--target-socket] [--profile] [--out DIR] [--no-build]
#
# Builds cdcsync (build-bench/, RelWithDebInfo), starts a customer PostgreSQL 15, an order PostgreSQL 15 (with a
# second database "native" for the native subscriber) and a Redis with fsync on (scripts/servers.sh --durable),
# runs bench/bench.py (see bench/README.md for what it measures) and stops everything it started, also on
# Ctrl-C. Raw results go to bench/results/raw/<date>-<quick|full>/ (results.jsonl, summary.md, logs, configs;
# not tracked by git); the summary to commit, bench/results/<date>-<quick|full>.json (the environment and every
# figure), is written from them at the end by bench/summarize.py.
# --profile also records cdcsync and its target backend with `perf record` during the drains (slower numbers:
# use it for the profile, not for the table). --order-fsync-delay-us N makes every fsync of the order server
# N microseconds slower (bench/slow_fsync.c, preloaded), as on a network volume. --target-socket: cdcsync reaches
# the order server over its unix socket, as when it runs beside it (default: TCP over loopback). The SNAPSHOT workloads
# (snapshot: 5M customers; snapshot_wide: 1M rows of 32 columns) time an initial load into an empty table by
# cdcsync, native tablesync and pgcopydb (bench/cdcbench/initial_load.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
args="$*"

quick=0 runs="" build=1 out="" pass=() fsync_delay=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; pass+=(--quick); shift ;;
    --runs) runs=$2; shift 2 ;;
    --workloads|--consumers|--batch|--source|--target|--snapshot|--order-config|--bulk-rows|--lag-rates|--lag-seconds|--lag-find-max) pass+=("$1" "$2"); shift 2 ;;
    --profile|--target-socket) pass+=("$1"); shift ;;
    --order-fsync-delay-us) fsync_delay=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$runs" ] || { if [ "$quick" = 1 ]; then runs=1; else runs=2; fi; }
# The settings the results in bench/README.md were measured with (override with --batch).
if ! printf '%s\n' "${pass[@]+"${pass[@]}"}" | grep -qx -- --batch; then
  pass+=(--batch "${CDCSYNC_BENCH_BATCH:-max_rows=20000,max_wait_ms=20,max_txn_chunk_rows=10000,queue_max_bytes=16777216}")
fi

for tool in pgbench pg_recvlogical psql redis-server python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (bash scripts/install-deps.sh)" >&2; exit 1; }
done

if [ "$build" = 1 ]; then
  cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_INTEGRATION=OFF >/dev/null
  cmake --build build-bench -j2 --target cdcsync
fi
bin=${CDCSYNC_BENCH_BIN:-$root/build-bench/daemon/cdcsync}  # another build of cdcsync: CDCSYNC_BENCH_BIN
[ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; exit 1; }

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$root/bench/results/raw/$stamp-$([ "$quick" = 1 ] && echo quick || echo full)
mkdir -p "$out"
dir=$(mktemp -d /tmp/cdcsync-bench.XXXXXX)
driver=""
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$driver" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$driver" 2>/dev/null || true
  fi
  bash "$root/scripts/servers.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
  echo "date: $(date -Is)"
  echo "command: bash bench/run.sh $args (batch: ${pass[*]})"
  echo "git: $(git rev-parse --short HEAD) ($(git status --porcelain -- daemon sinks decoders checkpoints | wc -l) files changed in daemon/sinks/decoders/checkpoints)"
  echo "cpus: $(nproc); memory: $(free -m | awk '/Mem:/ {print $2 " MB"}')"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'); kernel: $(uname -r); $(lscpu | grep -i '^Hypervisor vendor' | tr -s ' ')"
  echo "uptime at start: $(uptime)"
  echo "postgres: $(/usr/lib/postgresql/15/bin/postgres --version)"
} | tee "$out/environment.txt"

bash scripts/servers.sh start "$dir" --durable --watch $$
if [ -n "$fsync_delay" ]; then
  mkdir -p "$root/build-bench"
  cc -shared -fPIC -O2 -o "$root/build-bench/slow_fsync.so" bench/slow_fsync.c -ldl
  export CDCSYNC_BENCH_ORDER_PRELOAD="$root/build-bench/slow_fsync.so" CDCSYNC_FSYNC_DELAY_US=$fsync_delay
  bash scripts/servers.sh pg-stop "$dir" order fast
  LD_PRELOAD=$CDCSYNC_BENCH_ORDER_PRELOAD bash scripts/servers.sh pg-start "$dir" order
  echo "order server: every fsync $fsync_delay us slower (bench/slow_fsync.c)" | tee -a "$out/environment.txt"
fi
python3 "$root/bench/bench.py" --servers "$dir" --cdcsync "$bin" --out "$out" --runs "$runs" "${pass[@]}" &
driver=$!
wait "$driver"
driver=""
echo "uptime at end: $(uptime)" | tee -a "$out/environment.txt"
echo "results: $out"
python3 "$root/bench/summarize.py" "$out" --into "$root/bench/results" | sed 's/^/summary: /'
