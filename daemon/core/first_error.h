// The first error of a helper thread (the receiver, the checkpoint keeper), handed to the thread that owns
// the session (the applier), which rethrows it. Written by one thread, polled by another on every turn: the
// flag is an atomic, the exception behind a mutex.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace cdcsync {

class FirstError {
 public:
  // Keeps `e` unless an error was kept before.
  void set(std::exception_ptr e) {
    {
      std::lock_guard lock(mu_);
      if (!error_) error_ = std::move(e);
    }
    failed_.store(true, std::memory_order_release);
  }

  bool failed() const { return failed_.load(std::memory_order_acquire); }

  void rethrow_if_failed() const {
    if (!failed()) return;
    std::exception_ptr e;
    {
      std::lock_guard lock(mu_);
      e = error_;
    }
    std::rethrow_exception(e);
  }

 private:
  mutable std::mutex mu_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

}  // namespace cdcsync
