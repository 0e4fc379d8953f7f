// ChangePool: the memory of applied transactions, handed back by their consumer so that the changes decoded
// next reuse it. A Change keeps its tuples' buffers and a change list its capacity, so once the pool has
// filled, decoding a row allocates nothing, and memory allocated by the decoding thread is freed by the
// decoding thread, not by the one that applied it (which defeats the allocator's per-thread caches).
//
// Bounded: the spare Changes and lists hold at most `max_bytes` of buffers (their capacities), and a Change
// whose buffers are larger than `max_change_bytes` (a wide value) is freed instead of kept.
#pragma once

#include <cstddef>
#include <vector>

#include "decoders/change.h"

namespace cdcsync {

struct ChangePoolLimits {
  std::size_t max_bytes = std::size_t{8} << 20;
  std::size_t max_change_bytes = std::size_t{64} << 10;
};

class ChangePool {
 public:
  explicit ChangePool(ChangePoolLimits limits = {}) : limits_(limits) {}

  // Keeps what fits of `spent`'s changes and change lists, frees the rest; leaves `spent` empty.
  void give(std::vector<Transaction>& spent);
  // Moves a spare Change into `change` when there is one (its content is stale: the decoder resets every
  // field before use); otherwise leaves `change` as it is.
  void take(Change& change);
  // An empty change list, with a spare list's capacity when there is one.
  std::vector<Change> take_list();

  std::size_t spare_changes() const { return changes_.size(); }
  std::size_t spare_lists() const { return lists_.size(); }
  std::size_t bytes() const { return bytes_; }

  // Heap bytes a Change holds beyond its own size.
  static std::size_t heap_bytes(const Change& change);

 private:
  ChangePoolLimits limits_;
  std::vector<Change> changes_;
  std::vector<std::vector<Change>> lists_;
  std::size_t bytes_ = 0;
};

}  // namespace cdcsync
