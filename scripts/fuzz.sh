#!/usr/bin/env bash
# Builds the fuzz targets with clang in build-fuzz and runs each; exits non-zero on a crash.
#   pgoutput_fuzz: the pgoutput decoder and assembler (seeds: tests/fuzz/corpus/pgoutput)
#   copy_binary_fuzz: COPY's binary encoders (seeds: tests/fuzz/corpus/copy_binary)
#   debezium_fuzz: the Debezium encoder's value encodings (seeds: tests/fuzz/corpus/debezium)
#
#   scripts/fuzz.sh [--seconds N]      run each target for N seconds (default 30)
#   scripts/fuzz.sh --seed             rewrite tests/fuzz/corpus/pgoutput/ from the captured fixtures
#
# New inputs found go to build-fuzz/corpus/pgoutput (not committed); a crashing input is written to
# build-fuzz/fuzz-artifacts/ and can be replayed with: build-fuzz/tests/fuzz/pgoutput/pgoutput_fuzz FILE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=30
seed=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=1; shift ;;
    *) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

seeds=tests/fuzz/corpus/pgoutput
if [ "$seed" = 1 ]; then
  # Two seeds per fixture (chunks of 16 and 2 changes): the options byte (see pgoutput_fuzz.cpp) then length:u16-framed messages.
  python3 - "$seeds" tests/unit/decoders/fixtures/pgoutput/*.pgoutput <<'PY'
import os, re, struct, sys
out, files = sys.argv[1], sys.argv[2:]
os.makedirs(out, exist_ok=True)
for path in files:
    version, streaming, messages, run = 1, 0, [], 0
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("# options:"):
            version = int(re.search(r"proto_version=(\d)", line).group(1))
            streaming = 1 if "streaming=on" in line else 0
        elif line and not line.startswith("#"):
            m = bytes.fromhex(line.split("\t")[1])
            # Long runs of inserts add bytes, not structure: keep three of each run.
            run = run + 1 if m[:1] == b"I" else 0
            if run <= 3:
                messages.append(m)
    for chunk in (16, 2):
        data = bytes([(version - 1) | streaming << 2 | (chunk - 1) << 4])
        for m in messages:
            data += struct.pack(">H", min(len(m), 0xFFFF)) + m[:0xFFFF]
        name = os.path.basename(path).replace(".pgoutput", "") + f"-chunk{chunk}"
        open(os.path.join(out, name), "wb").write(data)
PY
  echo "fuzz.sh: seeds written to $seeds"
  exit 0
fi

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not installed" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCSYNC_FUZZ=ON \
  -DCDCSYNC_INTEGRATION=OFF -DCDCSYNC_BENCH=OFF >/dev/null
cmake --build build-fuzz -j 2 --target pgoutput_fuzz copy_binary_fuzz debezium_fuzz

mkdir -p build-fuzz/corpus/pgoutput build-fuzz/fuzz-artifacts
echo "== fuzzing the pgoutput decoder and assembler for $seconds s"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-fuzz/tests/fuzz/pgoutput/pgoutput_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 \
  -print_final_stats=1 -artifact_prefix=build-fuzz/fuzz-artifacts/ build-fuzz/corpus/pgoutput "$seeds"

mkdir -p build-fuzz/corpus/copy_binary
echo "== fuzzing COPY's binary encoders for $seconds s"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-fuzz/tests/fuzz/copy_binary/copy_binary_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix=build-fuzz/fuzz-artifacts/ build-fuzz/corpus/copy_binary \
  tests/fuzz/corpus/copy_binary

mkdir -p build-fuzz/corpus/debezium
echo "== fuzzing the Debezium encoder for $seconds s"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build-fuzz/tests/fuzz/debezium/debezium_fuzz -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix=build-fuzz/fuzz-artifacts/ build-fuzz/corpus/debezium \
  tests/fuzz/corpus/debezium
