#include "decoders/change_pool.h"

#include <utility>

namespace cdcsync {

std::size_t ChangePool::heap_bytes(const Change& change) {
  return change.before.capacity_bytes() + change.after.capacity_bytes() +
         change.truncated.capacity() * sizeof(RelationPtr) + change.message_prefix.capacity() +
         change.message_content.capacity();
}

void ChangePool::give(std::vector<Transaction>& spent) {
  for (Transaction& txn : spent) {
    for (Change& change : txn.changes) {
      const std::size_t size = heap_bytes(change);
      if (size > limits_.max_change_bytes || bytes_ + size > limits_.max_bytes) continue;
      change.relation.reset();  // no RelationDef outlives its last use because a spare refers to it
      change.truncated.clear();
      bytes_ += size;
      changes_.push_back(std::move(change));
    }
    txn.changes.clear();
    const std::size_t list_bytes = txn.changes.capacity() * sizeof(Change);
    if (list_bytes > 0 && bytes_ + list_bytes <= limits_.max_bytes) {
      bytes_ += list_bytes;
      lists_.push_back(std::move(txn.changes));
    }
  }
  spent.clear();
}

void ChangePool::take(Change& change) {
  if (changes_.empty()) return;
  bytes_ -= heap_bytes(changes_.back());
  change = std::move(changes_.back());
  changes_.pop_back();
}

std::vector<Change> ChangePool::take_list() {
  if (lists_.empty()) return {};
  std::vector<Change> list = std::move(lists_.back());
  lists_.pop_back();
  bytes_ -= list.capacity() * sizeof(Change);
  return list;
}

}  // namespace cdcsync
