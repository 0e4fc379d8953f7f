// The checkpoint store's side of a pipeline session, on a thread of its own: it mirrors the durable position
// to the store (Redis) and renews the pipeline's lease, so that a slow or unreachable store never holds up
// applying to the order DB, which is the authority for progress. Only the confirmation to the source waits
// for the mirror: PipelineStatus::confirmed_lsn moves when the store has taken a position.
//
// The lease still fences. Once this session holds the lease, lease_valid() is false from the moment the
// lease expires without a renewal, counted from when the last successful renewal was sent (Redis expires it
// no earlier): the applier starts no batch then, and goes on when a renewal (or a new acquisition, nobody
// else having taken it meanwhile) succeeds. A session that started while the store was unreachable holds no
// lease (the target's writer lock alone keeps it the only writer) until the keeper takes one.
//
// Errors the keeper cannot ride out (LeaseLost: another instance holds the lease; CheckpointFatal: the store
// refuses us) are kept for the applier, which rethrows them (rethrow_if_failed).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "checkpoints/checkpoint_store.h"
#include "daemon/core/first_error.h"
#include "daemon/core/pipeline.h"
#include "decoders/lsn.h"

namespace cdcsync {

class CheckpointKeeper {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::chrono::milliseconds lease_ttl{10000};
    std::chrono::milliseconds lease_renew{3000};
    // A mirror the store did not take is tried again after this long.
    std::chrono::milliseconds mirror_retry{200};
  };

  // `lease_renewed_at`: when the lease this session holds was last taken or renewed; nullopt when the
  // session holds none (the store was unreachable at its start).
  CheckpointKeeper(CheckpointStore& store, LeaseToken token, Options options, PipelineStatus& status,
                   std::optional<Clock::time_point> lease_renewed_at);
  ~CheckpointKeeper();  // stops the thread
  CheckpointKeeper(const CheckpointKeeper&) = delete;
  CheckpointKeeper& operator=(const CheckpointKeeper&) = delete;

  // `lsn` is durable in the target: mirror it (a newer post replaces an older one not yet mirrored).
  void post(Lsn lsn);
  // False while the lease this session held has expired without a renewal: start nothing.
  bool lease_valid(Clock::time_point now) const;
  void rethrow_if_failed() const { error_.rethrow_if_failed(); }

  // Stops the thread (an exchange with the store in flight ends at its timeout), then mirrors what was
  // posted and not yet mirrored once, on the caller's thread (a graceful stop).
  void finish();

 private:
  void loop();
  // One attempt; false when the store was unreachable. Throws LeaseLost when another instance holds it.
  bool mirror(Lsn lsn);
  void renew();
  // Takes the lapsed lease again, when nobody else holds it (false otherwise), and warns when the checkpoint
  // went with it; `known`: the position the next mirror writes.
  bool retake_lease(Lsn known);
  void store_reachable(bool ok, const char* what);

  CheckpointStore& store_;
  const LeaseToken token_;
  const Options options_;
  PipelineStatus& status_;

  // When the held lease expires unless renewed (steady clock ticks); kNoLease before one is held. Read by
  // the applier on every turn, hence an atomic.
  static constexpr Clock::rep kNoLease = Clock::duration::max().count();
  std::atomic<Clock::rep> lease_expires_{kNoLease};

  bool checkpoint_gone_ = false;  // the last retake_lease() found no checkpoint (the keeper's thread only)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  Lsn posted_;
  FirstError error_;
  std::thread thread_;  // last: started once everything above is set
};

}  // namespace cdcsync
