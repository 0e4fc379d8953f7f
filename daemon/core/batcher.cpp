// Batcher: whole transactions into batches by rows, bytes and time.
#include "daemon/core/batcher.h"

#include <algorithm>

namespace cdcsync {

using std::chrono::milliseconds;

void Batcher::add(Transaction&& txn, std::size_t bytes, Clock::time_point now) {
  if (batch_.empty()) started_ = now;
  last_arrival_ = now;
  rows_ += txn.changes.size();
  bytes_ += bytes;
  if (txn.info.commit_time_us != 0 && txn.info.sent_time_us != 0 && options_.catch_up_lag.count() > 0) {
    // Both times by the source's clock: no skew between hosts can make a caught-up stream look behind.
    const std::chrono::microseconds behind{txn.info.sent_time_us - txn.info.commit_time_us};
    catching_up_ = behind >= options_.catch_up_lag;
  }
  batch_.transactions.push_back(std::move(txn));
}

bool Batcher::due(bool queue_empty, Clock::time_point now) const {
  if (batch_.empty()) return false;
  if (rows_ >= options_.max_rows || bytes_ >= options_.max_bytes || !batch_.transactions.back().last_chunk) {
    return true;
  }
  if (catching_up_) {
    return (queue_empty && now >= last_arrival_ + options_.max_wait) ||
           now >= started_ + options_.catch_up_lag;
  }
  return queue_empty || now >= started_ + options_.max_wait;
}

milliseconds Batcher::time_left(Clock::time_point now) const {
  const auto until = std::min(last_arrival_ + options_.max_wait, started_ + options_.catch_up_lag);
  return std::max(milliseconds(0), std::chrono::ceil<milliseconds>(until - now));
}

void Batcher::reset() {
  batch_.transactions.clear();
  rows_ = 0;
  bytes_ = 0;
}

}  // namespace cdcsync
