#!/usr/bin/env bash
# Throwaway servers for tests, the demo and benchmarks: a "customer" PostgreSQL 15 cluster (wal_level=logical),
# a separate "order" PostgreSQL 15 cluster and a Redis, on free loopback ports, in temporary directories.
#
#   scripts/servers.sh start DIR [--watch PID | --watch-parent] [--durable] [--no-schema]
#       Starts all three, applies deploy/sql (demo schema and least-privilege roles) and writes DIR/env
#       (KEY='value' lines: ports, conninfos, PGPASSFILE). With --watch, everything is stopped as soon as PID
#       exits, so an interrupted test run leaves nothing behind. --durable keeps fsync on (benchmarks).
#   scripts/servers.sh stop DIR                       stops everything started in DIR (by pid)
#   scripts/servers.sh pg-stop DIR customer|order [fast|immediate]
#   scripts/servers.sh pg-start DIR customer|order
#   scripts/servers.sh redis-stop DIR [nosave|kill]    redis-start DIR
#   scripts/servers.sh psql DIR customer|order [psql args...]   (as the admin role)
#
# As root, PostgreSQL runs as the unprivileged "postgres" user (created by Debian's postgresql package).
# Never touches a system-wide server or a fixed port.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
ADMIN=cdcsync_admin

log() { printf 'servers: %s\n' "$*" >&2; }
die() { printf 'servers: error: %s\n' "$*" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  die "no free loopback port found"
}

rand_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

load_env() {
  [ -f "$1/env" ] || die "$1/env not found: were the servers started with 'start $1'?"
  # shellcheck disable=SC1091
  . "$1/env"
}

pg_conf() {  # data_dir port sockdir role
  local data=$1 port=$2 sock=$3 role=$4 durable=$5
  {
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = '$sock'"
    echo "max_connections = 100"
    echo "shared_buffers = 128MB"
    echo "password_encryption = scram-sha-256"
    echo "log_min_messages = warning"
    echo "log_line_prefix = '%m [%p] %u@%d '"
    if [ "$durable" = 0 ]; then echo "fsync = off"; echo "full_page_writes = off"; fi
    if [ "$role" = customer ]; then
      echo "wal_level = logical"
      echo "max_replication_slots = 20"
      echo "max_wal_senders = 20"
      echo "max_prepared_transactions = 10"
      echo "max_slot_wal_keep_size = -1"
    else
      echo "wal_level = replica"
      echo "max_prepared_transactions = 10"
    fi
  } >>"$data/postgresql.conf"
}

pg_start_one() {  # name
  local name=$1 data_var port_var
  data_var="CDCSYNC_${name^^}_DATA"; port_var="CDCSYNC_${name^^}_PORT"
  local data=${!data_var} port=${!port_var}
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null ||
    { tail -n 20 "$data/server.log" >&2; die "$name PostgreSQL did not start (log: $data/server.log)"; }
  log "$name PostgreSQL 15 up on 127.0.0.1:$port ($data)"
}

pg_stop_one() {  # name mode
  local name=$1 mode=${2:-fast} data_var
  data_var="CDCSYNC_${name^^}_DATA"
  local data=${!data_var}
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null 2>&1 || {
      local pid; pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    }
  fi
}

redis_start() {
  mkdir -p "$CDCSYNC_REDIS_DIR"
  redis-server --port "$CDCSYNC_REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
    --dir "$CDCSYNC_REDIS_DIR" --appendonly yes --appendfsync everysec --save '' \
    --daemonize yes --pidfile "$CDCSYNC_REDIS_DIR/redis.pid" --logfile "$CDCSYNC_REDIS_DIR/redis.log" \
    >/dev/null
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$CDCSYNC_REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
      log "Redis up on 127.0.0.1:$CDCSYNC_REDIS_PORT"; return 0
    fi
    sleep 0.1
  done
  die "Redis did not start (log: $CDCSYNC_REDIS_DIR/redis.log)"
}

redis_stop() {  # mode: save|nosave|kill
  local mode=${1:-nosave} pidf="$CDCSYNC_REDIS_DIR/redis.pid" pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  if [ "$mode" = kill ]; then
    kill -9 "$pid" 2>/dev/null || true
  else
    redis-cli -h 127.0.0.1 -p "$CDCSYNC_REDIS_PORT" shutdown "$mode" >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  fi
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$pidf"
}

psql_admin() {  # name db args...
  local name=$1 db=$2; shift 2
  local port_var="CDCSYNC_${name^^}_PORT"
  PGPASSFILE=$CDCSYNC_PGPASSFILE "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    "host=127.0.0.1 port=${!port_var} user=$ADMIN dbname=$db" "$@"
}

cmd_start() {
  local dir=$1; shift
  local watch="" durable=0 schema=1
  while [ $# -gt 0 ]; do
    case $1 in
      --watch) watch=$2; shift 2 ;;
      --watch-parent) watch=$PPID; shift ;;
      --durable) durable=1; shift ;;
      --no-schema) schema=0; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  command -v redis-server >/dev/null || die "redis-server not installed (run scripts/install-deps.sh)"
  [ -x "$PG_BIN/initdb" ] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/install-deps.sh)"
  if [ "$(id -u)" = 0 ]; then id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user"; fi

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/env" ] && cmd_stop "$dir" 2>/dev/null || true

  local pgroot; pgroot=$(mktemp -d /tmp/cdcsync-pg.XXXXXX)
  chmod 0755 "$pgroot"
  local admin_pw; admin_pw=$(rand_secret)
  local src_pw; src_pw=$(rand_secret)
  local tgt_pw; tgt_pw=$(rand_secret)
  local pwfile="$pgroot/pwfile"
  printf '%s\n' "$admin_pw" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown -R postgres "$pgroot"

  local cport oport rport
  cport=$(pick_port); oport=$(pick_port)
  while [ "$oport" = "$cport" ]; do oport=$(pick_port); done
  rport=$(pick_port)
  while [ "$rport" = "$cport" ] || [ "$rport" = "$oport" ]; do rport=$(pick_port); done

  local passfile="$dir/pgpass"
  umask 077
  {
    echo "127.0.0.1:$cport:*:$ADMIN:$admin_pw"
    echo "127.0.0.1:$oport:*:$ADMIN:$admin_pw"
    echo "127.0.0.1:$cport:*:cdcsync_source:$src_pw"
    echo "127.0.0.1:$oport:*:cdcsync_target:$tgt_pw"
  } >"$passfile"
  chmod 0600 "$passfile"
  umask 022

  cat >"$dir/env" <<EOF
CDCSYNC_SERVERS_DIR='$dir'
CDCSYNC_PG_ROOT='$pgroot'
CDCSYNC_PG_BIN='$PG_BIN'
CDCSYNC_CUSTOMER_DATA='$pgroot/customer'
CDCSYNC_ORDER_DATA='$pgroot/order'
CDCSYNC_CUSTOMER_PORT='$cport'
CDCSYNC_ORDER_PORT='$oport'
CDCSYNC_REDIS_PORT='$rport'
CDCSYNC_REDIS_DIR='$dir/redis'
CDCSYNC_REDIS_URL='redis://127.0.0.1:$rport/0'
CDCSYNC_PGPASSFILE='$passfile'
CDCSYNC_ADMIN_USER='$ADMIN'
CDCSYNC_CUSTOMER_ADMIN='host=127.0.0.1 port=$cport dbname=customers user=$ADMIN passfile=$passfile'
CDCSYNC_ORDER_ADMIN='host=127.0.0.1 port=$oport dbname=orders user=$ADMIN passfile=$passfile'
CDCSYNC_SOURCE_CONNINFO='host=127.0.0.1 port=$cport dbname=customers user=cdcsync_source passfile=$passfile'
CDCSYNC_TARGET_CONNINFO='host=127.0.0.1 port=$oport dbname=orders user=cdcsync_target passfile=$passfile'
EOF
  load_env "$dir"

  local name
  for name in customer order; do
    local data="$pgroot/$name"
    as_pg "$PG_BIN/initdb" -D "$data" -U "$ADMIN" --pwfile="$pwfile" -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 >"$pgroot/initdb-$name.log" 2>&1 ||
      { cat "$pgroot/initdb-$name.log" >&2; die "initdb failed for $name"; }
    local port_var="CDCSYNC_${name^^}_PORT"
    pg_conf "$data" "${!port_var}" "$pgroot" "$name" "$durable"
  done
  rm -f "$pwfile"
  pg_start_one customer
  pg_start_one order
  redis_start

  if [ -n "$watch" ]; then
    # The reaper: stops everything once the watched process is gone (test runner interrupted or done).
    setsid nohup bash -c "while kill -0 $watch 2>/dev/null && [ -f '$dir/env' ]; do sleep 1; done; \
      [ -f '$dir/env' ] && '$here/servers.sh' stop '$dir'" >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/reaper.pid"
  fi

  if [ "$schema" = 1 ]; then
    psql_admin customer postgres -c "CREATE DATABASE customers"
    psql_admin order postgres -c "CREATE DATABASE orders"
    psql_admin customer customers -f "$root/deploy/sql/customer_schema.sql"
    psql_admin customer customers -f "$root/deploy/sql/customer_roles.sql"
    psql_admin order orders -f "$root/deploy/sql/order_schema.sql"
    psql_admin order orders -f "$root/deploy/sql/order_roles.sql"
    psql_admin customer customers -c "ALTER ROLE cdcsync_source PASSWORD '$src_pw'"
    psql_admin order orders -c "ALTER ROLE cdcsync_target PASSWORD '$tgt_pw'"
    log "demo schema and roles applied (deploy/sql)"
  fi
  log "env written to $dir/env"
}

cmd_stop() {
  local dir=$1
  [ -f "$dir/env" ] || return 0
  load_env "$dir"
  if [ -f "$dir/reaper.pid" ]; then
    local rp; rp=$(cat "$dir/reaper.pid"); rm -f "$dir/reaper.pid"
    [ "$rp" != "$PPID" ] && kill "$rp" 2>/dev/null || true
  fi
  pg_stop_one customer immediate
  pg_stop_one order immediate
  redis_stop nosave
  rm -rf "$CDCSYNC_PG_ROOT" "$CDCSYNC_REDIS_DIR"
  rm -f "$dir/env"
  log "stopped servers of $dir"
}

main() {
  [ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
  local cmd=$1 dir=$2; shift 2
  case $cmd in
    start) cmd_start "$dir" "$@" ;;
    stop) cmd_stop "$dir" ;;
    pg-stop) load_env "$dir"; pg_stop_one "$1" "${2:-fast}" ;;
    pg-start) load_env "$dir"; pg_start_one "$1" ;;
    redis-stop) load_env "$dir"; redis_stop "${1:-nosave}" ;;
    redis-start) load_env "$dir"; redis_start ;;
    psql)
      load_env "$dir"; local name=$1; shift
      local db=customers; [ "$name" = order ] && db=orders
      psql_admin "$name" "$db" "$@" ;;
    *) die "unknown command $cmd" ;;
  esac
}

main "$@"
