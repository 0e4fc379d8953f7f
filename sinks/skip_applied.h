// Exactly-once on replay: which source transactions (and chunks of them) a sink skips because its durable
// progress already holds them. The one rule every sink with a progress record follows (PostgresSink,
// KafkaSink); pure logic.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "sinks/sink.h"

namespace cdcsync {

// A source transaction is in `progress` when its end LSN is at or below the progress's. A first chunk knows
// only its commit record's position (final_lsn): it is in the progress when it committed before that point.
bool applied_before(const TransactionInfo& info, const std::optional<Progress>& progress);

// Walks a sink's batches in order and says which transactions to skip. A chunked source transaction is judged
// at its first chunk; the verdict holds for its later chunks, across batches, until its last one.
class SkipApplied {
 public:
  // Throws PermanentError when `batch` starts with a continuation chunk while no source transaction is open:
  // neither being applied (`in_txn`) nor being skipped.
  void check_continuation(const Batch& batch, bool in_txn) const;
  // true: `t` (a whole transaction or a chunk) is not applied.
  bool skip(const Transaction& t, const std::optional<Progress>& progress);
  // The open source transaction is given up (a rollback, a lost connection): its next chunk is not skipped.
  void reset() { skipping_ = false; }

  // A batch's transactions to apply, in order; the last of them that ends its source transaction; and how
  // many source transactions were skipped whole.
  struct Selection {
    std::vector<const Transaction*> apply;
    const TransactionInfo* last_whole = nullptr;
    std::uint64_t skipped = 0;
  };
  Selection select(const Batch& batch, const std::optional<Progress>& progress);

 private:
  bool skipping_ = false;  // the open source transaction was applied before: drop its chunks
};

}  // namespace cdcsync
