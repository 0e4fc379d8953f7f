#!/usr/bin/env bash
# The README's test command, and what CI runs (.ci/run): installs what is needed, builds (warnings are
# errors: CDCSYNC_WERROR=ON), starts real PostgreSQL x2 and Redis through ctest's "servers" fixture, runs every
# test; meanwhile builds, in the background, an AddressSanitizer + UndefinedBehaviorSanitizer build, a
# ThreadSanitizer build and the daemon in a Release build as a user or a package builds it (-Werror off, the
# Release default); then runs the unit tests again under both sanitizers, a threaded subset of the integration
# and e2e tests under ThreadSanitizer, and short fuzz runs of the protocol decoder and of the encoders.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
jobs=$(nproc)

bash scripts/install-deps.sh

echo "== build (RelWithDebInfo)"
build_start=$(date +%s)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
echo "build: $(( $(date +%s) - build_start )) s"

# The other builds (ASan + UBSan, ThreadSanitizer, Release) run in the background at SCHED_IDLE while the whole
# suite runs on build/: the suite mostly waits on its servers and daemons, and an idle-policy compiler only
# takes a core nobody else wants (a waking test process preempts it at once). Their output goes to
# build-logs/background-builds.log, shown if one fails.
CDCSYNC_TSAN_IN_PROCESS='^integration\.ReplicationStreamTest\.'
CDCSYNC_TSAN_DAEMON='^integration\.(FaultsNetwork|FaultsSourceStream|FaultsWatchdog)\.|^integration\.SyncThroughFaults\.(RedisKilled|SigtermUnderLoad|OfTwoDaemons)'
tsan=${CDCSYNC_TSAN:-1}
mkdir -p build-logs
bg_log=build-logs/background-builds.log
idle=(nice -n 19)
if chrt -i 0 true 2>/dev/null; then idle=(chrt -i 0 nice -n 19); fi
echo "== builds in the background (${idle[*]}): ASan + UBSan, ThreadSanitizer, Release -> $bg_log"
(
  set -euo pipefail
  bg_start=$(date +%s)
  echo "== build (ASan + UBSan)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCDCSYNC_SANITIZE=ON -DCDCSYNC_INTEGRATION=OFF \
    -DCDCSYNC_BENCH=OFF -DCDCSYNC_WERROR=ON >/dev/null
  "${idle[@]}" cmake --build build-asan -j "$jobs" --target unit_tests
  if [ "$tsan" != 0 ]; then
    echo "== build (ThreadSanitizer)"
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_SANITIZE=thread \
      -DCDCSYNC_BENCH=OFF -DCDCSYNC_WERROR=ON >/dev/null
    "${idle[@]}" cmake --build build-tsan -j "$jobs" --target unit_tests cdcsync stream_integration_tests
  fi
  echo "== build (Release, the daemon only)"
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DCDCSYNC_INTEGRATION=OFF -DCDCSYNC_BENCH=OFF \
    >/dev/null
  "${idle[@]}" cmake --build build-release -j "$jobs" --target cdcsync
  echo "background builds: $(( $(date +%s) - bg_start )) s"
) >"$bg_log" 2>&1 &
bg=$!
# A failing suite stops the builds too.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
trap 'kill_tree $bg' EXIT

echo "== all tests (unit, integration against real servers, end-to-end)"
suite_start=$(date +%s)
ctest --test-dir build --output-on-failure -LE long
echo "whole suite: $(( $(date +%s) - suite_start )) s"

echo "== waiting for the background builds"
if ! wait "$bg"; then
  cat "$bg_log"
  echo "test.sh: a background build failed (above; $bg_log)" >&2
  exit 1
fi
trap - EXIT
tail -n 1 "$bg_log"

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
# The rest of the e2e suite ran once, uninstrumented, above; a subset keeps CI under 40 minutes.
if [ "$tsan" != 0 ]; then
  echo "== unit tests and the threaded integration subset under ThreadSanitizer"
  tsan_start=$(date +%s)
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"
  # Not the Kafka sink's unit tests: librdkafka (not instrumented) starts its threads with C11 thrd_create,
  # which g++ 12's TSan does not intercept, and its mock cluster crashes inside TSan's allocator. The sink
  # itself runs on the applier thread alone.
  ctest --test-dir build-tsan -L unit -E '^unit\.KafkaSink\.' --output-on-failure -j "$jobs"
  ctest --test-dir build-tsan -R "$CDCSYNC_TSAN_IN_PROCESS" --output-on-failure
  CDCSYNC_BINARY=$PWD/build-tsan/daemon/cdcsync ctest --test-dir build -R "$CDCSYNC_TSAN_DAEMON" --output-on-failure
  unset TSAN_OPTIONS
  echo "ThreadSanitizer tests: $(( $(date +%s) - tsan_start )) s"
fi

if [ -x scripts/fuzz.sh ]; then
  echo "== short fuzz run"
  bash scripts/fuzz.sh --seconds "${CDCSYNC_FUZZ_SECONDS:-30}"
fi

echo "test.sh: finished in $(( $(date +%s) - start )) s"
