// MemoryBudget: one bound, in bytes, on everything that holds decoded changes (memory.limit_bytes).
//
// Who counts what against it:
// - the receiver: each transaction (or chunk) it hands out, from the poll that produced it until the batch
//   holding it is applied (poll output, queue, batch); before reading the next message it checks that what is
//   held, plus its own open chunk and poll output, is below the limit, else it waits (answering the server);
// - the sinks: their encoding buffers (COPY pieces, the Debezium JSON of Kafka records not yet delivered, the
//   archive's entries not yet appended), through an Account.
// Each share below bounds one holder statically, so that they add up to the limit; the receiver's check is
// what keeps the sum there when a share overflows (a row wider than its share: see docs/reliability.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace cdcsync {

// How memory.limit_bytes is divided between the holders of decoded changes.
struct MemoryShares {
  std::size_t chunk = 0;     // the assembler's open chunk of a large transaction (with its row bound)
  std::size_t poll = 0;      // what one poll of the source hands out
  std::size_t queue = 0;     // the queue between receiver and applier
  std::size_t batch = 0;     // the batch being formed or applied
  std::size_t encoders = 0;  // COPY pieces, Kafka records in flight, archive entries being appended

  static MemoryShares of(std::size_t limit) {
    return {
        .chunk = limit / 8, .poll = limit / 8, .queue = limit / 4, .batch = limit / 4, .encoders = limit / 4};
  }
};

class MemoryBudget {
 public:
  explicit MemoryBudget(std::size_t limit = 0) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // 0: no bound (tests and tools that hold little).
  void set_limit(std::size_t limit) {
    limit_.store(limit, std::memory_order_relaxed);
    cv_.notify_all();
  }
  std::size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  std::size_t held() const { return held_.load(); }
  std::size_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // Whether `more` bytes on top of what is held reach the limit.
  bool full(std::size_t more = 0) const {
    const std::size_t l = limit();
    return l != 0 && held() + more >= l;
  }

  void add(std::size_t bytes) {
    const std::size_t now = held_.fetch_add(bytes) + bytes;
    std::size_t p = peak_.load(std::memory_order_relaxed);
    while (now > p && !peak_.compare_exchange_weak(p, now, std::memory_order_relaxed)) {
    }
  }
  void release(std::size_t bytes) {
    held_.fetch_sub(bytes);
    if (waiting_.load() > 0) {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
  }
  // Waits at most `timeout` until `more` bytes on top of what is held stay below the limit; whether they do.
  bool wait_for_room(std::size_t more, std::chrono::milliseconds timeout) {
    if (!full(more)) return true;
    std::unique_lock lock(mu_);
    waiting_.fetch_add(1);
    const bool room = cv_.wait_for(lock, timeout, [&] { return !full(more); });
    waiting_.fetch_sub(1);
    return room;
  }

  // A buffer whose bytes count against a budget (none: counts nothing): set() moves its count to the
  // buffer's size now; the destructor gives it back.
  class Account {
   public:
    explicit Account(MemoryBudget* budget = nullptr) : budget_(budget) {}
    ~Account() { set(0); }
    Account(const Account&) = delete;
    Account& operator=(const Account&) = delete;

    void set(std::size_t bytes) {
      if (budget_ == nullptr || bytes == bytes_) return;
      if (bytes > bytes_) {
        budget_->add(bytes - bytes_);
      } else {
        budget_->release(bytes_ - bytes);
      }
      bytes_ = bytes;
    }
    std::size_t bytes() const { return bytes_; }

   private:
    MemoryBudget* budget_;
    std::size_t bytes_ = 0;
  };

 private:
  std::atomic<std::size_t> limit_;
  std::atomic<std::size_t> held_{0};
  std::atomic<std::size_t> peak_{0};
  std::atomic<int> waiting_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace cdcsync
