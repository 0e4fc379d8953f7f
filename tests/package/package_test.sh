#!/usr/bin/env bash
# The .deb as an admin gets it: built with cpack from this build tree, installed with dpkg -i into a clean
# Debian 12 root made by debootstrap (minbase and systemd, from the apt mirror this machine is configured
# with; then the library dependencies the .deb declares, with apt inside the root), then:
#   - `cdcsync --version` runs there and names the revision;
#   - the installed files are where deploy/README.md says, /etc/cdcsync/cdcsync.toml a conffile;
#   - `systemd-analyze verify` accepts the installed units (the root's own systemd);
#   - the maintainer scripts, with a booted systemd simulated (/run/systemd/system and a systemctl that logs its
#     arguments): install runs daemon-reload and starts nothing; a reinstall (upgrade) try-restarts the units;
#     removal stops them; purge removes the package's files and leaves the admin's credentials alone;
#   - after removal no cdcsync process runs in the root.
# Everything happens in a private mount namespace (unshare -m), so /proc and /run mounts never reach the host.
#   package_test.sh SOURCE_ROOT BUILD_DIR
# Needs root, debootstrap and network access to the apt mirror (exit 77, skipped, otherwise). The debootstrap
# root is cached in BUILD_DIR/package-test/ (a first run downloads ~100 packages).
set -euo pipefail
src=$1 build=$2
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
command -v cpack >/dev/null || skip "cpack is not installed"
unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

work=$build/package-test
mkdir -p "$work"
started=$(date +%s)

# 1. The package, from this build tree.
rm -f "$build"/cdcsync_*.deb
(cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack -G DEB"; }
deb=$(ls "$build"/cdcsync_*.deb)
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
# The Prometheus server runs elsewhere (the client library, libprometheus-cpp-core, is a dependency).
dpkg-deb -f "$deb" Depends Recommends Suggests | sed 's/^[A-Za-z]*: //' | tr ',|' '\n\n' | sed 's/(.*)//; s/ //g' |
  grep -qx 'prometheus' && fail "the package depends on, recommends or suggests the Prometheus server"
for script in postinst prerm postrm conffiles; do
  dpkg-deb -I "$deb" "$script" >/dev/null || fail "the package has no $script"
done
[ "$(dpkg-deb -I "$deb" conffiles)" = "/etc/cdcsync/cdcsync.toml" ] || fail "conffiles: $(dpkg-deb -I "$deb" conffiles)"

# 2. A clean Debian 12 root with systemd (for systemd-analyze) and the libraries the package declares it needs
#    (apt in the root resolves them, virtual packages such as libspdlog1.10-fmt9 included; debootstrap's
#    --include cannot). Built once per dependency list and copied fresh for each run, so every run installs
#    into an untouched root.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^$' | paste -sd' ' -)
base=$work/bookworm-base
stamp="$base/.cdcsync-deps"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$deps" ]; then
  rm -rf "$base"
  mkdir -p "$work/debs"
  echo "debootstrap --variant=minbase --include=systemd bookworm from $mirror, then apt-get install $deps"
  debootstrap --variant=minbase --include=systemd --cache-dir="$work/debs" bookworm "$base" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  unshare -m --propagation private sh -c '
    set -e
    mount -t proc proc "$1/proc"
    chroot "$1" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $2 && apt-get clean"
  ' sh "$base" "$deps" >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt-get install in the root"; }
  echo "$deps" >"$stamp"
fi
root=$work/root
rm -rf "$root"
cp -a "$base" "$root"
cp "$deb" "$root/tmp/cdcsync.deb"

# 3. Inside the root, in a private mount namespace.
cat >"$root/tmp/inside.sh" <<'INSIDE'
#!/bin/sh
set -eu
fail() { echo "FAIL (in the Debian 12 root): $*" >&2; exit 1; }
log=/tmp/systemctl.log
# A booted systemd, as the maintainer scripts see it: /run/systemd/system, and systemctl recording its calls.
mkdir -p /run/systemd/system
mv /usr/bin/systemctl /usr/bin/systemctl.real
printf '#!/bin/sh\necho "$*" >>%s\n' "$log" >/usr/bin/systemctl
chmod 0755 /usr/bin/systemctl

# Install: daemon-reload, nothing started or enabled.
: >"$log"
dpkg -i /tmp/cdcsync.deb >/tmp/dpkg-install.log 2>&1 || { cat /tmp/dpkg-install.log; fail "dpkg -i"; }
grep -qx -- '--system daemon-reload' "$log" || fail "install did not run daemon-reload: $(cat "$log")"
grep -Eq '(^| )(start|enable|restart|try-restart)( |$)' "$log" && fail "install started or enabled something: $(cat "$log")"
/usr/bin/cdcsync --version | grep -Eq '^cdcsync [0-9]+\.[0-9]+\.[0-9]+ \(revision [^ )]+\)$' ||
  fail "cdcsync --version: $(/usr/bin/cdcsync --version 2>&1)"
echo "in the root: $(/usr/bin/cdcsync --version)"
for f in /usr/bin/cdcsync /usr/lib/systemd/system/cdcsync.service /usr/lib/systemd/system/cdcsync@.service \
  /etc/cdcsync/cdcsync.toml /usr/share/doc/cdcsync/examples/cdcsync.example.toml /usr/share/doc/cdcsync/LICENSE \
  /usr/share/doc/cdcsync/CHANGELOG.md /usr/share/doc/cdcsync/docs/runbooks.md /usr/share/cdcsync/dashboards/alerts.yml \
  /usr/share/cdcsync/sql/customer_roles.sql; do
  [ -e "$f" ] || fail "$f is not installed"
done
[ "$(stat -c %a /etc/credstore)" = 700 ] || fail "/etc/credstore is not 0700"
[ -z "$(ls /etc/systemd/system/multi-user.target.wants/ 2>/dev/null | grep cdcsync || true)" ] || fail "a unit was enabled"

# The installed units, as the root's systemd reads them.
cp /usr/lib/systemd/system/cdcsync@.service /tmp/cdcsync@demo.service
for unit in /usr/lib/systemd/system/cdcsync.service /tmp/cdcsync@demo.service; do
  out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
  [ -z "$(echo "$out" | grep cdcsync || true)" ] || fail "systemd-analyze verify $unit warned: $out"
done
echo "in the root: systemd-analyze verify accepts cdcsync.service and cdcsync@.service ($(systemd-analyze --version | head -1))"

# Upgrade (the same version again: dpkg runs the upgrade paths): the running units restart, nothing else.
: >"$log"
dpkg -i /tmp/cdcsync.deb >/tmp/dpkg-upgrade.log 2>&1 || { cat /tmp/dpkg-upgrade.log; fail "dpkg -i (upgrade)"; }
grep -q "^try-restart cdcsync.service cdcsync@\*.service$" "$log" || fail "upgrade did not try-restart the units: $(cat "$log")"
grep -Eq '(^| )stop( |$)' "$log" && fail "upgrade stopped the units: $(cat "$log")"

# Removal: the units stopped first; purge removes the package's files, keeps the admin's credentials.
echo secret >/etc/credstore/pg_source
: >"$log"
dpkg --purge cdcsync >/tmp/dpkg-purge.log 2>&1 || { cat /tmp/dpkg-purge.log; fail "dpkg --purge"; }
grep -q "^stop cdcsync.service cdcsync@\*.service$" "$log" || fail "removal did not stop the units: $(cat "$log")"
for f in /usr/bin/cdcsync /usr/lib/systemd/system/cdcsync.service /etc/cdcsync/cdcsync.toml; do
  [ ! -e "$f" ] || fail "$f is left after the purge"
done
[ -f /etc/credstore/pg_source ] || fail "the purge removed the admin's credential"
echo "in the root: install (daemon-reload, nothing started), upgrade (try-restart), purge (stop) as intended"
INSIDE
chmod 0755 "$root/tmp/inside.sh"
unshare -m --propagation private sh -c '
  set -e
  mount -t proc proc "$1/proc"
  mount -t tmpfs tmpfs "$1/run"
  chroot "$1" /tmp/inside.sh
' sh "$root" || fail "the checks inside the Debian 12 root"

# 4. Nothing left running from the root (a process whose root directory is it).
for p in /proc/[0-9]*; do
  if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then
    fail "process $(basename "$p") ($(tr '\0' ' ' <"$p/cmdline")) still runs in the root"
  fi
done
echo "nothing runs in the root after removal"
echo "PASS ($(($(date +%s) - started)) s)"
