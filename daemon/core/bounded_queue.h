// A queue bounded by item count and by bytes between the receiver and the applier: a slow target applies
// backpressure to the receiver instead of growing memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

namespace cdcsync {

template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(std::size_t max_items, std::size_t max_bytes) : max_items_(max_items), max_bytes_(max_bytes) {}

  // Moves items[from..] in while there is room, waiting up to `timeout` for room for the first one; one
  // wake-up of the consumer for all of them. Returns how many were moved (0: no room, or closed). An item
  // larger than max_bytes is still accepted into an empty queue, so progress never stops.
  std::size_t push_some_for(std::vector<T>& items, const std::vector<std::size_t>& sizes, std::size_t from,
                            std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    auto fits = [&](std::size_t bytes) {
      return items_.empty() || (items_.size() < max_items_ && bytes_ + bytes <= max_bytes_);
    };
    if (from >= items.size() ||
        !not_full_.wait_for(lock, timeout, [&] { return closed_ || fits(sizes[from]); }))
      return 0;
    if (closed_) return 0;
    std::size_t i = from;
    const auto now = std::chrono::steady_clock::now();
    for (; i < items.size() && fits(sizes[i]); ++i) {
      items_.push_back({std::move(items[i]), sizes[i], now});
      bytes_ += sizes[i];
    }
    not_empty_.notify_one();
    return i - from;
  }

  // An item taken out, with the bytes it was pushed with, how many items are still queued behind it, and
  // when it was pushed.
  struct Popped {
    T item;
    std::size_t bytes;
    std::size_t left;
    std::chrono::steady_clock::time_point pushed;
  };

  std::optional<Popped> pop_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !items_.empty(); })) return std::nullopt;
    if (items_.empty()) return std::nullopt;
    Entry e = std::move(items_.front());
    items_.pop_front();
    bytes_ -= e.bytes;
    not_full_.notify_one();
    return Popped{std::move(e.item), e.bytes, items_.size(), e.pushed};
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
    std::chrono::steady_clock::time_point pushed;
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
