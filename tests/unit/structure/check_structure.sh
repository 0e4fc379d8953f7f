#!/usr/bin/env bash
# The layering of the tree, checked (ctest: unit.structure.layers). Usage: check_structure.sh [ROOT]
#
# Include rules (a project header is named from the root, e.g. "decoders/lsn.h"; <...> system and
# third-party headers are always allowed):
#   decoders/         includes only decoders/                       (the bottom layer)
#   checkpoints/      includes only decoders/, checkpoints/
#   sinks/            includes only decoders/, checkpoints/, sinks/
#   daemon/config/    includes only decoders/, daemon/config/ and the sinks' two plain-data headers it validates
#                     against, sinks/policy.h and sinks/kafka_properties.h (no sink, no core)
#   daemon/core/      never includes daemon/ops/, daemon/tools/, daemon/commands/
#   daemon/ops/, daemon/tools/   never include daemon/commands/
#   nothing outside daemon/ includes daemon/ (tests/ and bench/ excepted)
# Size rule: no file in decoders/, sinks/, checkpoints/, daemon/ over MAX_LINES lines, except those listed in
# OVERSIZED below.
# Every violation is listed as `file:line: rule`; exit 1 if any.
set -euo pipefail
root=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../../..}" && pwd)
cd "$root"

MAX_LINES=700
# Includes allowed against the rules, as "file header": none, and none should be added.
INCLUDE_EXCEPTIONS=()
# Files allowed over MAX_LINES: none, and none should be added (split the file instead).
OVERSIZED=()

failures=0
fail() {
  echo "$1"
  failures=$((failures + 1))
}

# Which project directories a file may include from; empty = no restriction beyond the global rules.
allowed_for() {
  case $1 in
    decoders/*) echo "decoders/" ;;
    checkpoints/*) echo "decoders/ checkpoints/" ;;
    sinks/*) echo "decoders/ checkpoints/ sinks/" ;;
    daemon/config/*) echo "decoders/ daemon/config/ =sinks/policy.h =sinks/kafka_properties.h" ;;
    *) echo "" ;;
  esac
}

# Project directories a file must never include from.
forbidden_for() {
  case $1 in
    daemon/core/*) echo "daemon/ops/ daemon/tools/ daemon/commands/" ;;
    daemon/ops/* | daemon/tools/*) echo "daemon/commands/" ;;
    daemon/* | tests/* | bench/*) echo "" ;;
    *) echo "daemon/" ;;
  esac
}

# The header an #include names, as a path from the root: "x.h" next to the including file if it is there.
resolve() {
  local file=$1 inc=$2 dir=${1%/*}
  if [ "$dir" != "$file" ] && [ -e "$dir/$inc" ]; then
    inc="$dir/$inc"
  fi
  while [[ $inc == ./* ]]; do inc=${inc#./}; done
  while [[ $inc =~ ^(.*/)?[^/]+/\.\./(.*)$ ]]; do inc="${BASH_REMATCH[1]}${BASH_REMATCH[2]}"; done
  echo "$inc"
}

is_exception() {
  local e
  for e in "${INCLUDE_EXCEPTIONS[@]}"; do [ "$e" = "$1" ] && return 0; done
  return 1
}

is_project_header() {
  case $1 in
    decoders/* | checkpoints/* | sinks/* | daemon/*) return 0 ;;
    *) return 1 ;;
  esac
}

check_includes() {
  local file=$1 allowed forbidden lineno inc target ok a
  allowed=$(allowed_for "$file")
  forbidden=$(forbidden_for "$file")
  while IFS=: read -r lineno inc; do
    target=$(resolve "$file" "$inc")
    is_project_header "$target" || continue
    is_exception "$file $target" && continue
    if [ -n "$allowed" ]; then
      ok=0
      for a in $allowed; do
        case $a in
          =*) [ "$target" = "${a#=}" ] && ok=1 ;;
          *) case $target in "$a"*) ok=1 ;; esac ;;
        esac
      done
      [ "$ok" = 1 ] || fail "$file:$lineno: includes $target; this file may include only: $allowed (and system headers)"
    fi
    for a in $forbidden; do
      case $target in
        "$a"*) fail "$file:$lineno: includes $target; this file must not include $a" ;;
      esac
    done
  done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' "$file" |
           sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1:\2/')
}

sources=$(git -C "$root" ls-files -co --exclude-standard -- '*.h' '*.hpp' '*.cpp' '*.cc' '*.c' 2>/dev/null ||
          find . -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' -o -name '*.c' \) |
            sed 's#^\./##')
checked=0
for file in $sources; do
  case $file in build*/* | */build*/*) continue ;; esac
  [ -f "$file" ] || continue
  check_includes "$file"
  checked=$((checked + 1))
done

for file in $sources; do
  case $file in
    decoders/* | sinks/* | checkpoints/* | daemon/*) ;;
    *) continue ;;
  esac
  [ -f "$file" ] || continue
  lines=$(wc -l <"$file")
  listed=0
  for o in "${OVERSIZED[@]}"; do [ "$o" = "$file" ] && listed=1; done
  if [ "$lines" -gt "$MAX_LINES" ] && [ "$listed" = 0 ]; then
    fail "$file:1: $lines lines, over $MAX_LINES: split it (OVERSIZED in $0 lists only today's files)"
  elif [ "$lines" -le "$MAX_LINES" ] && [ "$listed" = 1 ]; then
    echo "note: $file is $lines lines now: take it off OVERSIZED in $0"
  fi
done
for o in "${OVERSIZED[@]}"; do
  [ -e "$o" ] || echo "note: $o no longer exists: take it off OVERSIZED in $0"
done
for e in "${INCLUDE_EXCEPTIONS[@]}"; do
  grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]${e#* }[\">]" "${e%% *}" 2>/dev/null ||
    echo "note: ${e%% *} no longer includes ${e#* }: take it off INCLUDE_EXCEPTIONS in $0"
done

if [ "$failures" -gt 0 ]; then
  echo "structure: $failures violation(s) in $checked files (rules: the top of $0)"
  exit 1
fi
echo "structure: $checked files follow the include and size rules"
