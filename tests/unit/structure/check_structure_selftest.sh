#!/usr/bin/env bash
# check_structure.sh must fail on a planted violation of each rule, and pass on a tree that follows them
# (ctest: unit.structure.catches_violations).
set -euo pipefail
checker="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/check_structure.sh"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{decoders,checkpoints,sinks,daemon/config,daemon/core,daemon/ops,daemon/tools,daemon/commands,tests}

# A tree that follows the rules.
printf '#include <string>\n' >"$tree/decoders/lsn.h"
printf '#include "decoders/lsn.h"\n#include "lsn.h"\n' >"$tree/decoders/change.h"
printf '#include "decoders/lsn.h"\n' >"$tree/checkpoints/store.h"
printf '#include "checkpoints/store.h"\n#include "decoders/change.h"\n' >"$tree/sinks/sink.h"
printf '#include "decoders/lsn.h"\n#include "sinks/policy.h"\n' >"$tree/daemon/config/config.h"
printf '#include "daemon/config/config.h"\n#include "sinks/sink.h"\n' >"$tree/daemon/core/pipeline.h"
printf '#include "daemon/core/pipeline.h"\n' >"$tree/daemon/ops/probe.h"
printf '#include "daemon/core/pipeline.h"\n' >"$tree/daemon/tools/verify.h"
printf '#include "daemon/tools/verify.h"\n#include "daemon/ops/probe.h"\n' >"$tree/daemon/commands/run.cpp"
printf '#include "daemon/commands/run.cpp"\n' >"$tree/tests/run_test.cpp"
out=$(bash "$checker" "$tree") || { echo "a clean tree failed:"; echo "$out"; exit 1; }

# One violation of each rule.
printf '#include "sinks/sink.h"\n' >>"$tree/decoders/lsn.h"
printf '#include "sinks/sink.h"\n' >>"$tree/checkpoints/store.h"
printf '#include "daemon/core/pipeline.h"\n' >>"$tree/sinks/sink.h"
printf '#include "sinks/sink.h"\n' >>"$tree/daemon/config/config.h"
printf '#include "daemon/ops/probe.h"\n' >>"$tree/daemon/core/pipeline.h"
printf '#include "daemon/commands/run.cpp"\n' >>"$tree/daemon/tools/verify.h"
printf '#include "daemon/commands/run.cpp"\n' >>"$tree/daemon/ops/probe.h"
seq 1 701 | sed 's#.*#// line#' >"$tree/sinks/big.cpp"

if out=$(bash "$checker" "$tree"); then
  echo "planted violations passed:"; echo "$out"; exit 1
fi
status=0
for expected in "decoders/lsn.h:2: includes sinks/sink.h" "checkpoints/store.h:2: includes sinks/sink.h" \
  "sinks/sink.h:3: includes daemon/core/pipeline.h" "daemon/config/config.h:3: includes sinks/sink.h" \
  "daemon/core/pipeline.h:3: includes daemon/ops/probe.h" "daemon/tools/verify.h:2: includes daemon/commands/run.cpp" \
  "daemon/ops/probe.h:2: includes daemon/commands/run.cpp" "sinks/big.cpp:1: 701 lines"; do
  grep -qF "$expected" <<<"$out" || { echo "not reported: $expected"; status=1; }
done
grep -q "structure: 9 violation(s)" <<<"$out" || { echo "expected 9 violations (sinks/sink.h breaks two rules):"; status=1; }
echo "$out"
exit $status
