#!/usr/bin/env bash
# Installs everything cdcsync needs to build, test, run the demo and the benchmarks, from Debian 12
# packages only. Idempotent: packages already present are left alone. Prints what it does.
set -euo pipefail

packages=(
  # build
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev clang-format
  # libraries
  libpq-dev rapidjson-dev libhiredis-dev libgtest-dev libgmock-dev libbenchmark-dev libspdlog-dev libfmt-dev
  libcli11-dev libtomlplusplus-dev libsystemd-dev libssl-dev libcpp-httplib-dev librdkafka-dev
  prometheus-cpp-dev
  # servers and tools the tests, the demo and the benchmarks start
  postgresql-15 postgresql-client-15 postgresql-contrib redis-server redis-tools prometheus
  procps iproute2 util-linux systemd kcat
  # the package test (ctest -L package): a clean Debian 12 root
  debootstrap
  # the SNAPSHOT benchmark's third consumer (bench/cdcbench/initial_load.py)
  pgcopydb
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
else
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  # policy-rc.d keeps Debian from starting system-wide postgres/redis services: every server is ours.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
