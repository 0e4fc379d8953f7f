// A CheckpointStore in memory with the Redis store's semantics: a fake for pipeline unit tests.
// The clock is injectable so tests can expire leases without sleeping; set_available(false) makes every call
// throw CheckpointUnavailable, like a Redis that is down; set_blackholed(true) makes every call wait out a
// command timeout first, like a Redis that takes the bytes and never answers.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "checkpoints/checkpoint_store.h"

namespace cdcsync {

class MemoryCheckpointStore final : public CheckpointStore {
 public:
  // Milliseconds since the Unix epoch; used for lease expiry and Checkpoint::unix_ms.
  using Clock = std::function<std::chrono::milliseconds()>;

  static std::chrono::milliseconds system_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
  }

  explicit MemoryCheckpointStore(Clock clock = &MemoryCheckpointStore::system_clock_ms)
      : clock_(std::move(clock)) {}

  std::optional<Checkpoint> load() override {
    std::lock_guard lock(mutex_);
    check_available();
    return checkpoint_;
  }

  bool acquire_lease(const LeaseToken& token, std::chrono::milliseconds ttl) override {
    check_token(token, ttl);
    std::lock_guard lock(mutex_);
    check_available();
    const auto holder = current_holder();
    if (holder && *holder != token.value) return false;
    lease_ = Lease{token.value, clock_() + ttl};
    return true;
  }

  bool renew_lease(const LeaseToken& token, std::chrono::milliseconds ttl) override {
    check_token(token, ttl);
    std::lock_guard lock(mutex_);
    check_available();
    if (current_holder() != token.value) return false;
    lease_->expires = clock_() + ttl;
    return true;
  }

  void release_lease(const LeaseToken& token) override {
    check_token(token, std::chrono::milliseconds(1));
    std::lock_guard lock(mutex_);
    check_available();
    if (current_holder() == token.value) lease_.reset();
  }

  std::optional<std::string> lease_holder() override {
    std::lock_guard lock(mutex_);
    check_available();
    return current_holder();
  }

  Advance advance(const LeaseToken& token, Lsn lsn) override {
    check_token(token, std::chrono::milliseconds(1));
    if (!lsn.valid()) throw std::invalid_argument("cannot advance the checkpoint to 0/0");
    std::lock_guard lock(mutex_);
    check_available();
    if (current_holder() != token.value) return Advance::LeaseLost;
    if (checkpoint_ && checkpoint_->lsn >= lsn) return Advance::NotAhead;
    checkpoint_ = Checkpoint{.lsn = lsn, .unix_ms = clock_().count(), .owner = token.value};
    ++advances_;
    return Advance::Moved;
  }

  void overwrite(Lsn lsn, const std::string& owner) override {
    if (!lsn.valid()) throw std::invalid_argument("cannot overwrite the checkpoint with 0/0");
    std::lock_guard lock(mutex_);
    check_available();
    checkpoint_ = Checkpoint{.lsn = lsn, .unix_ms = clock_().count(), .owner = owner};
  }

  void reset() override {
    std::lock_guard lock(mutex_);
    check_available();
    checkpoint_.reset();
  }

  // Test controls.
  void set_available(bool available) {
    std::lock_guard lock(mutex_);
    available_ = available;
  }
  void set_blackholed(bool on, std::chrono::milliseconds timeout = std::chrono::milliseconds(200)) {
    std::lock_guard lock(mutex_);
    blackholed_ = on;
    blackhole_timeout_ = timeout;
  }
  // Everything gone, lease and checkpoint, like a Redis restarted without its data or flushed.
  void wipe() {
    std::lock_guard lock(mutex_);
    checkpoint_.reset();
    lease_.reset();
  }
  // The checkpoint's LSN whatever the test controls say (0/0: none).
  Lsn load_unchecked() const {
    std::lock_guard lock(mutex_);
    return checkpoint_ ? checkpoint_->lsn : Lsn{};
  }
  // How many advance() calls moved the checkpoint.
  int advances() const {
    std::lock_guard lock(mutex_);
    return advances_;
  }

 private:
  struct Lease {
    std::string token;
    std::chrono::milliseconds expires;
  };

  static void check_token(const LeaseToken& token, std::chrono::milliseconds ttl) {
    if (token.value.empty() || token.value.size() > 256) {
      throw std::invalid_argument("lease token must be 1..256 bytes");
    }
    if (ttl.count() < 1) throw std::invalid_argument("lease ttl must be at least 1 ms");
  }

  void check_available() const {
    if (blackholed_) {
      // The command timeout passes without holding the store's mutex (Redis clients time out on their own).
      const auto timeout = blackhole_timeout_;
      mutex_.unlock();
      std::this_thread::sleep_for(timeout);
      mutex_.lock();
      throw CheckpointUnavailable("memory checkpoint store: no reply (test)");
    }
    if (!available_) throw CheckpointUnavailable("memory checkpoint store: unavailable (test)");
  }

  // The holder, expiring the lease first when its time has passed (Redis PX semantics: expired at >= expiry).
  std::optional<std::string> current_holder() {
    if (lease_ && clock_() >= lease_->expires) lease_.reset();
    if (!lease_) return std::nullopt;
    return lease_->token;
  }

  mutable std::mutex mutex_;
  Clock clock_;
  std::optional<Checkpoint> checkpoint_;
  std::optional<Lease> lease_;
  bool available_ = true;
  bool blackholed_ = false;
  std::chrono::milliseconds blackhole_timeout_{200};
  int advances_ = 0;
};

}  // namespace cdcsync
