#!/usr/bin/env bash
# Captures real pgoutput messages from a throwaway PostgreSQL 15 into tests/unit/decoders/fixtures/pgoutput/.
#
#   scripts/capture-pgoutput.sh [SCENARIO...]      default: every *.sql there except setup.sql
#
# Each scenario NAME.sql starts with a line "-- options: proto_version=N [streaming=on] [binary=true]
# [two_phase=on] [work_mem=64kB]". For each one: a fresh slot (two_phase as asked) is created, the SQL runs,
# and pg_logical_slot_get_binary_changes() output is written to NAME.pgoutput, one message a line:
# "LSN<TAB>hex bytes", after "#" header lines recording the options. LSNs, xids and timestamps differ from
# run to run; the unit tests assert only what the SQL determines and what must hold between messages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
fixtures=$root/tests/unit/decoders/fixtures/pgoutput
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

dir=$(mktemp -d /tmp/cdcsync-capture.XXXXXX)
cleanup() { bash "$here/servers.sh" stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
bash "$here/servers.sh" start "$dir" --watch $$
# shellcheck disable=SC1091
. "$dir/env"
export CDCSYNC_CUSTOMER_ADMIN PGPASSFILE=$CDCSYNC_PGPASSFILE
export PATH=$PG_BIN:$PATH

sql() { psql -X -q -v ON_ERROR_STOP=1 "$CDCSYNC_CUSTOMER_ADMIN" "$@"; }

sql -f "$fixtures/setup.sql" >/dev/null
version=$(sql -At -c "SHOW server_version")

scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for f in "$fixtures"/*.sql; do
    n=$(basename "$f" .sql)
    [ "$n" = setup ] || scenarios+=("$n")
  done
fi

for name in "${scenarios[@]}"; do
  file=$fixtures/$name.sql
  [ -f "$file" ] || { echo "capture: no scenario $file" >&2; exit 1; }
  header=$(grep -m1 '^-- options:' "$file" | sed 's/^-- options://')
  proto=1 streaming=off binary=false two_phase=off work_mem=""
  for kv in $header; do
    case $kv in
      proto_version=*) proto=${kv#*=} ;;
      streaming=*) streaming=${kv#*=} ;;
      binary=*) binary=${kv#*=} ;;
      two_phase=*) two_phase=${kv#*=} ;;
      work_mem=*) work_mem=${kv#*=} ;;
      *) echo "capture: $name: unknown option $kv" >&2; exit 1 ;;
    esac
  done
  slot=capture_$name
  twophase_slot=false; [ "$two_phase" = on ] && twophase_slot=true
  sql -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput', false, $twophase_slot)" >/dev/null
  sql -f "$file" >/dev/null

  opts="'proto_version', '$proto', 'publication_names', 'cdcsync_fixture', 'messages', 'true'"
  [ "$streaming" = on ] && opts+=", 'streaming', 'on'"
  [ "$binary" = true ] && opts+=", 'binary', 'true'"
  [ "$two_phase" = on ] && opts+=", 'two_phase', 'on'"
  set_mem=""
  [ -n "$work_mem" ] && set_mem="SET logical_decoding_work_mem = '$work_mem';"
  {
    echo "# captured from PostgreSQL $version by scripts/capture-pgoutput.sh from $name.sql"
    echo "# options: proto_version=$proto streaming=$streaming binary=$binary two_phase=$two_phase"
    sql -At -F $'\t' -c "$set_mem SELECT lsn, encode(data, 'hex') FROM pg_logical_slot_get_binary_changes('$slot', NULL, NULL, $opts)"
  } >"$fixtures/$name.pgoutput.tmp"
  mv "$fixtures/$name.pgoutput.tmp" "$fixtures/$name.pgoutput"
  sql -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  echo "capture: $name: $(grep -vc '^#' "$fixtures/$name.pgoutput") messages"
done
