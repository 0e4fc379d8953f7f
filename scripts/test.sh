#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): installs what is needed, builds (warnings are
# errors: CDCSYNC_WERROR=ON), starts real PostgreSQL x2 and Redis through ctest's "servers" fixture, runs every
# test; then the unit tests again in an AddressSanitizer + UndefinedBehaviorSanitizer build, short fuzz runs of
# the protocol decoder and of the binary COPY encoders, and the daemon in a Release build as a user or a
# package builds it (-Werror off, the Release default).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
jobs=$(nproc)

bash scripts/install-deps.sh

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCDCSYNC_SANITIZE=ON -DCDCSYNC_INTEGRATION=OFF \
  -DCDCSYNC_BENCH=OFF -DCDCSYNC_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs" --target unit_tests

echo "== unit tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j "$jobs"

echo "== build (Release, the daemon only)"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCDCSYNC_INTEGRATION=OFF -DCDCSYNC_BENCH=OFF \
  >/dev/null
cmake --build build-release -j "$jobs" --target cdcsync

if [ -x scripts/fuzz.sh ]; then
  echo "== short fuzz run"
  bash scripts/fuzz.sh --seconds "${CDCSYNC_FUZZ_SECONDS:-30}"
fi

echo "== all tests (unit, integration against real servers, end-to-end)"
ctest --test-dir build --output-on-failure -LE long
echo "test.sh: finished in $(( $(date +%s) - start )) s"
