#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, starts a customer PostgreSQL, an order
# PostgreSQL and a Redis on loopback (scripts/servers.sh), applies the demo schema and roles, and runs the
# sync daemon on embedded defaults while a small workload changes customers. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target cdcsync

dir=$(mktemp -d /tmp/cdcsync-demo.XXXXXX)
cleanup() {
  trap - INT TERM EXIT
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
  bash "$root/scripts/servers.sh" stop "$dir"
  rm -rf "$dir"
}
trap cleanup INT TERM EXIT

bash scripts/servers.sh start "$dir" --watch $$
. "$dir/env"
echo
echo "customer DB : $CDCSYNC_CUSTOMER_ADMIN"
echo "order DB    : $CDCSYNC_ORDER_ADMIN"
echo "redis       : $CDCSYNC_REDIS_URL"
echo
exec_demo="$root/scripts/demo-run.sh"
if [ -x "$exec_demo" ]; then
  . "$exec_demo"
else
  echo "servers and schema are up; press Ctrl-C to stop them"
  while true; do sleep 1; done
fi
