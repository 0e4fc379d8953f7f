// A queue bounded by item count and by bytes between the receiver and the applier: a slow target applies
// backpressure to the receiver instead of growing memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace cdcsync {

template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(std::size_t max_items, std::size_t max_bytes) : max_items_(max_items), max_bytes_(max_bytes) {}

  // Waits up to `timeout` for room; false when there was none (or the queue is closed). An item larger
  // than max_bytes is still accepted into an empty queue, so progress never stops.
  bool push_for(T& item, std::size_t bytes, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    const bool room = not_full_.wait_for(lock, timeout, [&] {
      return closed_ || items_.empty() || (items_.size() < max_items_ && bytes_ + bytes <= max_bytes_);
    });
    if (!room || closed_) return false;
    items_.push_back({std::move(item), bytes});
    bytes_ += bytes;
    not_empty_.notify_one();
    return true;
  }

  std::optional<T> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); })) return std::nullopt;
    if (items_.empty()) return std::nullopt;
    Entry e = std::move(items_.front());
    items_.pop_front();
    bytes_ -= e.bytes;
    not_full_.notify_one();
    return std::move(e.item);
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  std::size_t bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }

 private:
  struct Entry {
    T item;
    std::size_t bytes;
  };
  const std::size_t max_items_;
  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Entry> items_;
  std::size_t bytes_ = 0;
  bool closed_ = false;
};

}  // namespace cdcsync
