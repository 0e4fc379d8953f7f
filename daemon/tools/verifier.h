// `cdcsync verify`: the comparison run over the mapped tables (two passes over hash buckets, see verify.h),
// the repair of what differs, and the report in text and JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/tools/verify.h"
#include "decoders/lsn.h"
#include "sinks/mapping.h"

namespace cdcsync::verify {

// The target did not reach the source snapshot's position in time (is the daemon running?).
struct TargetBehind : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct CompareOptions {
  std::string table;                      // a mapped source or target name (schema.table); empty: every table
  std::chrono::milliseconds wait{60000};  // longest wait for the target to reach the source snapshot
  std::uint64_t rows_per_bucket = 1000;
};

struct TableResult {
  const TableMapping* table = nullptr;
  std::uint64_t source_rows = 0;
  std::uint64_t target_rows = 0;
  std::uint32_t buckets = 0;
  std::set<std::uint32_t> differing;  // buckets whose sums differed in the first pass
  RowDiff diff;
};

struct Report {
  Lsn snapshot_lsn;
  Lsn target_lsn;
  std::vector<TableResult> tables;
  std::size_t mismatched() const;
};

class Verifier {
 public:
  // Throws std::invalid_argument when options.table names no mapped table.
  Verifier(const config::Config& config, CompareOptions options);

  // First pass over all buckets, then a second pass over the differing buckets at a later point: only keys
  // mismatched in both are reported (the first can include changes streamed after the snapshot). Throws
  // TargetBehind.
  Report run();
  // Re-copies the mismatched rows of each table from a fresh source snapshot through the bulk loader; one
  // result per table.
  std::vector<RecopyResult> repair(const Report& report, const LoadObserver& observer = {});

 private:
  Report pass(const Report* earlier);

  const config::Config& config_;
  CompareOptions options_;
  Mapping mapping_;
  std::vector<const TableMapping*> tables_;
};

// "verify: ..." lines: positions, one line per table, and the verdict after `seconds`.
std::string render_text(const Report& report, double seconds);
// The keys (never other values) of the missing, extra and different rows, at most `max_keys` per kind.
std::string render_details(const Report& report, long long max_keys);
// One JSON object (and a newline): the result, and the report before the repair when there was one.
std::string render_json(const Report& report, double seconds, const std::string& pipeline, long long max_keys,
                        const std::optional<Report>& before_repair);

}  // namespace cdcsync::verify
