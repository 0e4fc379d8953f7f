// SkipApplied: the exactly-once skip of source transactions a sink's progress already holds.
#include "sinks/skip_applied.h"

namespace cdcsync {

bool applied_before(const TransactionInfo& info, const std::optional<Progress>& progress) {
  if (!progress || !progress->end_lsn.valid()) return false;
  if (info.end_lsn.valid()) return info.end_lsn <= progress->end_lsn;
  // A first chunk knows its commit record's position only: it committed before the progress point.
  return info.final_lsn.valid() && info.final_lsn < progress->end_lsn;
}

void SkipApplied::check_continuation(const Batch& batch, bool in_txn) const {
  if (!batch.empty() && !batch.transactions.front().first_chunk && !in_txn && !skipping_) {
    throw PermanentError("", batch.transactions.front().info.final_lsn, "",
                         "a continuation chunk arrived without the start of its source transaction");
  }
}

bool SkipApplied::skip(const Transaction& t, const std::optional<Progress>& progress) {
  if (t.first_chunk) {
    const bool skip = applied_before(t.info, progress);
    skipping_ = skip && !t.last_chunk;
    return skip;
  }
  const bool skip = skipping_;
  if (t.last_chunk) skipping_ = false;
  return skip;
}

SkipApplied::Selection SkipApplied::select(const Batch& batch, const std::optional<Progress>& progress) {
  Selection s;
  for (const auto& t : batch.transactions) {
    if (skip(t, progress)) {
      if (t.last_chunk) ++s.skipped;
      continue;
    }
    s.apply.push_back(&t);
    if (t.last_chunk) s.last_whole = &t.info;
  }
  return s;
}

}  // namespace cdcsync
