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

# ThreadSanitizer: the unit tests, and the integration and e2e tests whose threads meet (the replication
# receiver, the applier, the checkpoint keeper, the heartbeat, the reply-deadline watcher, the metrics poller,
# the watchdog thread): the replication stream in-process, then the network faults (deadlines, half-open
# links, resets), the decode-error stop, the watchdog under a slow statement, and the daemon's stop, Redis loss
# and takeover under load, run by the uninstrumented e2e drivers of build/ against the TSan daemon
# (CDCSYNC_BINARY), which inherits TSAN_OPTIONS: a race ends it (exit 66) and fails its test. The drivers only
# start and judge the daemon, so instrumenting them would find nothing and cost minutes of build.
# The rest of the e2e suite runs once, uninstrumented, below; a subset keeps CI under 40 minutes.
CDCSYNC_TSAN_IN_PROCESS='^integration\.ReplicationStreamTest\.'
CDCSYNC_TSAN_DAEMON='^integration\.(FaultsNetwork|FaultsSourceStream|FaultsWatchdog)\.|^integration\.SyncThroughFaults\.(RedisKilled|SigtermUnderLoad|OfTwoDaemons)'
if [ "${CDCSYNC_TSAN:-1}" != 0 ]; then
  echo "== build (ThreadSanitizer)"
  tsan_start=$(date +%s)
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_SANITIZE=thread -DCDCSYNC_BENCH=OFF \
    -DCDCSYNC_WERROR=ON >/dev/null
  cmake --build build-tsan -j "$jobs" --target unit_tests cdcsync stream_integration_tests
  echo "== unit tests and the threaded integration subset under ThreadSanitizer"
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
  # Not the Kafka sink's unit tests: librdkafka (not instrumented) starts its threads with C11 thrd_create,
  # which g++ 12's TSan does not intercept, and its mock cluster crashes inside TSan's allocator. The sink
  # itself runs on the applier thread alone.
  ctest --test-dir build-tsan -L unit -E '^unit\.KafkaSink\.' --output-on-failure -j "$jobs"
  ctest --test-dir build-tsan -R "$CDCSYNC_TSAN_IN_PROCESS" --output-on-failure
  CDCSYNC_BINARY=$PWD/build-tsan/daemon/cdcsync ctest --test-dir build -R "$CDCSYNC_TSAN_DAEMON" --output-on-failure
  unset TSAN_OPTIONS
  echo "ThreadSanitizer stage: $(( $(date +%s) - tsan_start )) s"
fi

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
