// Batcher: groups whole source transactions, as the applier takes them from the queue, into the next Batch,
// and says when that batch is due. Pure logic: the caller passes the time.
//
// A batch is due when it reaches max_rows or max_bytes (a transaction is never split: one larger than a
// bound is a batch of its own), when it ends in a chunk of a larger transaction, or by time:
//   - caught up: as soon as nothing more is queued, or max_wait after it started;
//   - catching up (the newest transaction taken was sent catch_up_lag or more after its commit, both times
//     by the source's clock): when nothing arrived for max_wait and nothing is queued, or catch_up_lag after
//     it started. Bigger batches cost the target less per change; the delay they add is at most the lag that
//     started them.
#pragma once

#include <chrono>
#include <cstddef>

#include "decoders/change.h"
#include "sinks/sink.h"

namespace cdcsync {

struct BatcherOptions {
  std::size_t max_rows = 5000;
  std::size_t max_bytes = 16u << 20;  // decoded bytes, as the queue counts them
  std::chrono::milliseconds max_wait{50};
  std::chrono::milliseconds catch_up_lag{1000};  // 0: never catching up
};

class Batcher {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Batcher(BatcherOptions options) : options_(options) {}

  // Adds the next transaction (or chunk) taken at `now`; `bytes` is what the queue counted for it.
  void add(Transaction&& txn, std::size_t bytes, Clock::time_point now);

  // Whether the open batch is to be applied at `now`. `queue_empty`: nothing is queued behind the last
  // transaction taken (or nothing was taken this turn).
  bool due(bool queue_empty, Clock::time_point now) const;

  // Catching up with an open batch: how long until it is due by time alone (no arrival for max_wait, or
  // catch_up_lag since it started); zero once it is.
  std::chrono::milliseconds time_left(Clock::time_point now) const;

  // True when the newest transaction taken was sent catch_up_lag or more after its commit. It stays so
  // across batches until a transaction with both times says otherwise.
  bool catching_up() const { return catching_up_; }

  bool empty() const { return batch_.empty(); }
  std::size_t rows() const { return rows_; }
  std::size_t bytes() const { return bytes_; }

  // The open batch, applied in place by the caller; `reset` then starts the next one (keeping its memory).
  Batch& batch() { return batch_; }
  void reset();

 private:
  BatcherOptions options_;
  Batch batch_;
  std::size_t rows_ = 0;
  std::size_t bytes_ = 0;
  Clock::time_point started_{};       // when the open batch took its first transaction
  Clock::time_point last_arrival_{};  // when it took its last one
  bool catching_up_ = false;
};

}  // namespace cdcsync
