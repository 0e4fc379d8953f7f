#!/usr/bin/env bash
# The README's main command: installs what is needed, builds, starts a customer PostgreSQL, an order
# PostgreSQL and a Redis on free loopback ports (scripts/servers.sh), applies the demo schema and roles,
# and runs `cdcsync run` on embedded defaults while a small workload changes customers (PII included).
# Every few seconds it shows what arrived in the order DB: the mapped columns, never the PII.
# Ctrl-C stops everything and leaves no process behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target cdcsync

dir=$(mktemp -d /tmp/cdcsync-demo.XXXXXX)
daemon_pid=""
cleanup() {
  trap - INT TERM EXIT
  echo
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  bash "$root/scripts/servers.sh" stop "$dir" || true
  rm -rf "$dir"
}
trap cleanup INT TERM EXIT

bash scripts/servers.sh start "$dir" --watch $$
# shellcheck disable=SC1091
. "$dir/env"

metrics_port=$(( 20000 + RANDOM % 40000 ))
cat >"$dir/cdcsync.toml" <<EOF
pipeline = "customers-to-orders"

[source]
conninfo    = "$CDCSYNC_SOURCE_CONNINFO"
publication = "cdcsync_customers"
slot        = "cdcsync_customers_orders"
create_slot = true

[target]
conninfo = "$CDCSYNC_TARGET_CONNINFO"

[checkpoint]
redis = "$CDCSYNC_REDIS_URL"

[metrics]
listen = "127.0.0.1:$metrics_port"

[[tables]]
source  = "public.customers"
target  = "ref.customer"
key     = ["id"]
columns = { id = "customer_id", full_name = "display_name", status = "status", tier = "tier" }
deletes = "soft"
EOF

csql() { PGPASSFILE=$CDCSYNC_PGPASSFILE psql -X -q -v ON_ERROR_STOP=1 "$CDCSYNC_CUSTOMER_ADMIN" "$@"; }
osql() { PGPASSFILE=$CDCSYNC_PGPASSFILE psql -X -q -v ON_ERROR_STOP=1 "$CDCSYNC_ORDER_ADMIN" "$@"; }

echo "== seeding 1000 customers (with email, phone, birth date, address: PII that stays in the customer DB)"
csql -c "INSERT INTO customers (full_name, email, phone, birth_date, address, notes, tier, balance)
         SELECT 'Customer ' || i, 'customer' || i || '@example.com', '+34 600 ' || lpad(i::text, 6, '0'),
                date '1970-01-01' + (i * 7) % 15000, i || ' Main Street', 'VIP notes ' || i,
                (ARRAY['standard','silver','gold'])[1 + i % 3], (i * 13.37)::numeric(12,2)
         FROM generate_series(1, 1000) i"

echo "== config: $dir/cdcsync.toml"
echo "== starting: build/daemon/cdcsync run --config $dir/cdcsync.toml   (metrics: http://127.0.0.1:$metrics_port/metrics)"
# Its own session: Ctrl-C reaches this script, which stops the daemon with one SIGTERM.
setsid build/daemon/cdcsync run --config "$dir/cdcsync.toml" &
daemon_pid=$!

round=0
while kill -0 "$daemon_pid" 2>/dev/null; do
  sleep 3
  round=$((round + 1))
  csql -c "BEGIN;
           INSERT INTO customers (full_name, email, phone, tier)
             SELECT 'New ' || $round || '-' || i, 'new' || $round || '-' || i || '@example.com', '+1 555 0100', 'standard'
             FROM generate_series(1, 5) i;
           UPDATE customers SET tier = 'gold', updated_at = now() WHERE id = (SELECT max(id) FROM customers) - 7;
           UPDATE customers SET phone = '+1 555 0199' WHERE id % 97 = $round % 97;
           DELETE FROM customers WHERE id = $round * 11;
           COMMIT;"
  echo
  echo "== round $round: order DB ref.customer (no email, no phone, no address ever reaches it)"
  osql -c "SELECT count(*) FILTER (WHERE NOT _cdc_deleted) AS live, count(*) FILTER (WHERE _cdc_deleted) AS deleted,
                  count(*) FILTER (WHERE tier = 'gold' AND NOT _cdc_deleted) AS gold FROM ref.customer"
  osql -c "SELECT customer_id, display_name, status, tier, _cdc_lsn, _cdc_deleted
           FROM ref.customer ORDER BY _cdc_lsn DESC, customer_id DESC LIMIT 4"
  osql -At -c "SELECT 'progress: applied up to ' || end_lsn || ', confirmed ' || acked_lsn FROM ref.cdc_progress"
done
wait "$daemon_pid" || echo "cdcsync exited with $?"
