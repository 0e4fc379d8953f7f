// CheckpointKeeper: the mirror to the checkpoint store and the lease, off the applier's thread.
#include "daemon/core/checkpoint_keeper.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/core/errors.h"

namespace cdcsync {

CheckpointKeeper::CheckpointKeeper(CheckpointStore& store, LeaseToken token, Options options,
                                   PipelineStatus& status, std::optional<Clock::time_point> lease_renewed_at)
    : store_(store), token_(std::move(token)), options_(options), status_(status) {
  if (lease_renewed_at) lease_expires_ = (*lease_renewed_at + options_.lease_ttl).time_since_epoch().count();
  thread_ = std::thread([this] {
    try {
      loop();
    } catch (...) {
      error_.set(std::current_exception());
    }
  });
}

CheckpointKeeper::~CheckpointKeeper() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CheckpointKeeper::post(Lsn lsn) {
  {
    std::lock_guard lock(mu_);
    if (lsn <= posted_) return;
    posted_ = lsn;
  }
  cv_.notify_all();
}

bool CheckpointKeeper::lease_valid(Clock::time_point now) const {
  return now.time_since_epoch().count() < lease_expires_.load(std::memory_order_acquire);
}

void CheckpointKeeper::finish() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  error_.rethrow_if_failed();
  Lsn last;
  {
    std::lock_guard lock(mu_);
    last = posted_;
  }
  if (last > status_.confirmed_lsn.load()) mirror(last);
}

void CheckpointKeeper::loop() {
  auto next_mirror = Clock::now();
  // The first renewal comes at once: the lease was taken at the session's start, which may lie some time
  // back (a long start, an initial snapshot).
  auto next_renew = Clock::now();
  std::unique_lock lock(mu_);
  while (!stop_) {
    const bool to_mirror = posted_ > status_.confirmed_lsn.load();
    const auto wake = to_mirror ? std::min(next_mirror, next_renew) : next_renew;
    if (cv_.wait_until(lock, wake,
                       [&] { return stop_ || (!to_mirror && posted_ > status_.confirmed_lsn.load()); })) {
      if (stop_) return;
    }
    const Lsn want = posted_;
    const auto now = Clock::now();
    lock.unlock();
    if (want > status_.confirmed_lsn.load() && now >= next_mirror) {
      if (!mirror(want)) next_mirror = Clock::now() + options_.mirror_retry;
    }
    if (Clock::now() >= next_renew) {
      renew();
      next_renew = Clock::now() + options_.lease_renew;
    }
    lock.lock();
  }
}

bool CheckpointKeeper::mirror(Lsn lsn) {
  try {
    Advance result = store_.advance(token_, lsn);
    // The lease lapsed while nobody renewed it (the store was unreachable for longer than its TTL, a long
    // start): take it again when nobody else holds it.
    if (result == Advance::LeaseLost && retake_lease(lsn)) result = store_.advance(token_, lsn);
    if (result == Advance::LeaseLost) {
      throw LeaseLost("the pipeline's lease is held by another instance: stepping down");
    }
    store_reachable(true, "");
    Lsn confirmed = status_.confirmed_lsn.load();
    while (lsn > confirmed && !status_.confirmed_lsn.compare_exchange_weak(confirmed, lsn)) {
    }
    return true;
  } catch (const CheckpointUnavailable& e) {
    store_reachable(false, e.what());
    return false;
  }
}

void CheckpointKeeper::renew() {
  const auto sent = Clock::now();
  try {
    // Renew, or take it when nobody holds it (it lapsed while the store was unreachable, or the session
    // started without it).
    if (store_.renew_lease(token_, options_.lease_ttl)) {
      lease_expires_.store((sent + options_.lease_ttl).time_since_epoch().count(), std::memory_order_release);
      store_reachable(true, "");
      return;
    }
    Lsn known;
    {
      std::lock_guard lock(mu_);
      known = std::max(posted_, status_.confirmed_lsn.load());
    }
    if (!retake_lease(known))
      throw LeaseLost("the pipeline's lease is held by another instance: stepping down");
    store_reachable(true, "");
    // A checkpoint that went with the lease is written again now, not at the next change (there may be none
    // for a long while): until then a restart would find only the target's progress.
    if (checkpoint_gone_ && known.valid()) mirror(known);
  } catch (const CheckpointUnavailable& e) {
    store_reachable(false, e.what());
  }
}

bool CheckpointKeeper::retake_lease(Lsn known) {
  const auto sent = Clock::now();
  if (!store_.acquire_lease(token_, options_.lease_ttl)) return false;
  lease_expires_.store((sent + options_.lease_ttl).time_since_epoch().count(), std::memory_order_release);
  // The lease lapses when the store was unreachable for longer than its TTL, and goes together with the
  // checkpoint when Redis restarted empty or was flushed: that is worth saying, whichever of the mirror and
  // the renewal finds it first.
  checkpoint_gone_ = !store_.load().has_value();
  if (checkpoint_gone_) {
    spdlog::warn(
        "no checkpoint in Redis for this pipeline any more (restarted empty or flushed?): "
        "restoring it from the target's progress ({})",
        known.valid() ? known.str() : std::string("nothing durable yet"));
  }
  return true;
}

void CheckpointKeeper::store_reachable(bool ok, const char* what) {
  if (ok) {
    if (!status_.checkpoint_store_ok.exchange(true)) spdlog::info("checkpoint store reachable again");
  } else if (status_.checkpoint_store_ok.exchange(false)) {
    spdlog::warn("checkpoint store unreachable, applying without confirming: {}", what);
  }
}

}  // namespace cdcsync
