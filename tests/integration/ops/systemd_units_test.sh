#!/usr/bin/env bash
# deploy/cdcsync.service and deploy/cdcsync@.service: `systemd-analyze verify` accepts both (ExecStart pointed
# at the built binary, since verify checks that the command exists), each keeps the settings operations rely
# on, and `systemd-analyze security --offline=yes` rates each below 2.0 ("OK"). Prints the exposure levels.
#   systemd_units_test.sh REPO_ROOT CDCSYNC_BINARY
set -euo pipefail
root=$1 binary=$2
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed: skipped"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/cdcsync|$binary|" "$root/deploy/cdcsync.service" >"$tmp/cdcsync.service"
sed "s|/usr/bin/cdcsync|$binary|" "$root/deploy/cdcsync@.service" >"$tmp/cdcsync@.service"
cp "$tmp/cdcsync@.service" "$tmp/cdcsync@demo.service"

for unit in cdcsync.service cdcsync@demo.service; do
  out=$(cd "$tmp" && systemd-analyze verify "./$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [ -z "$out" ] || fail "systemd-analyze verify $unit warned: $out"
done

# The settings the daemon and the runbook depend on (exit codes from daemon/core/exit_codes.h).
for unit in cdcsync.service cdcsync@.service; do
  f="$root/deploy/$unit"
  for line in 'Type=notify' 'WatchdogSec=90' 'Restart=on-failure' 'RestartSec=5' 'RestartPreventExitStatus=2 3 4 5' \
              'DynamicUser=yes' 'NoNewPrivileges=yes' 'CapabilityBoundingSet=' 'ProtectSystem=strict' \
              'MemoryDenyWriteExecute=yes' 'SystemCallFilter=@system-service' \
              'SystemCallFilter=~@privileged @resources' 'SystemCallFilter=sched_setscheduler' \
              'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
              'UMask=0077' 'LimitCORE=0' 'KillMode=mixed' 'TimeoutStopSec=60' 'ProtectProc=invisible'; do
    grep -qxF "$line" "$f" || fail "$unit lacks '$line'"
  done
  grep -q '^Environment' "$f" && fail "$unit sets Environment=: secrets belong in LoadCredential="
done
grep -qxF 'ExecStart=/usr/bin/cdcsync run --config /etc/cdcsync/cdcsync.toml' "$root/deploy/cdcsync.service" ||
  fail "cdcsync.service: unexpected ExecStart"
grep -qxF 'ExecStart=/usr/bin/cdcsync run --config /etc/cdcsync/%i.toml' "$root/deploy/cdcsync@.service" ||
  fail "cdcsync@.service: unexpected ExecStart"
# Credentials from systemd's store by name (no path), the name `credential:NAME` resolves from a shell too.
grep -qxF 'LoadCredential=pg_source' "$root/deploy/cdcsync.service" || fail "cdcsync.service: no pg_source credential"
grep -qxF 'LoadCredential=cdcsync.%i.pg_source' "$root/deploy/cdcsync@.service" ||
  fail "cdcsync@.service: no per-instance pg_source credential"
grep -q '^LoadCredential=.*:' "$root/deploy/cdcsync.service" "$root/deploy/cdcsync@.service" &&
  fail "a LoadCredential= names a path: the shell's credential:NAME would not find that file"

if ! systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  echo "systemd-analyze security --offline is not supported by $(systemd-analyze --version | head -1): score not measured"
  exit 0
fi
for unit in cdcsync.service cdcsync@demo.service; do
  report=$(cd "$tmp" && systemd-analyze security --offline=yes "./$unit" 2>&1) || true
  level=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$level" ] || fail "no exposure level for $unit: $report"
  echo "systemd-analyze security --offline=yes $unit: exposure $level"
  awk -v l="$level" 'BEGIN { exit !(l < 2.0) }' || fail "$unit exposure $level is not below 2.0"
done
echo "PASS"
