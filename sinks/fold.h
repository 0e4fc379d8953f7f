// Folds the changes of one target table within a batch to one final action per key, so a batch costs one
// set-based statement per table instead of one statement per change.
//
// Every row carries the commit LSN of the source transaction that wrote it last (`_cdc_lsn`); every write is
// guarded by `_cdc_lsn <= lsn`, so changes of one transaction apply in order, a replay changes nothing and
// an older transaction never overwrites a newer one. Commit LSNs (not the changes' own record LSNs) because
// a transaction that began before a snapshot point and committed after it has record LSNs below the point:
// only the commit order is the order in which rows became visible.
// Why folding gives the same rows as applying in order:
//   upsert(v1,l1) then upsert(v2,l2)  == upsert(v2,l2), except that columns v2 leaves unchanged (TOAST)
//                                         keep v1's value when v1 had one;
//   upsert then hard delete(l2)       == delete(l2);      hard delete then upsert(v2,l2) == upsert(v2,l2);
//   upsert(v1) then soft delete(l2)   == upsert(v1 values, tombstone, l2);
//   ignored deletes vanish.
// An update that changes the key is a delete of the old key plus an upsert of the new one at the same LSN.
// Ordering between different keys is not preserved (deletes run first, then upserts by LSN); when that
// trips a secondary unique constraint the sink replays the batch change by change (see postgres_sink.h).
//
// Memory: values the mapping copies unchanged are not copied; the fold refers to the bytes of the changes
// passed to add(), which must outlive it until clear(). Transformed values and keys live in buffers that
// clear() empties and the next batch reuses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "sinks/mapping.h"

namespace cdcsync {

enum class ValueState : std::uint8_t { Value, Null, Absent };  // Absent: unchanged TOAST, not known

enum class RowAction : std::uint8_t { Upsert, Delete };

struct FoldedRow {
  Lsn lsn;
  RowAction action = RowAction::Upsert;
  bool tombstone = false;   // Upsert of a soft-deleted row
  bool has_absent = false;  // some column is Absent
  // The key's first change in the batch was an Insert of a streamed transaction: the source had no row with
  // this key before it, so neither has the target, unless something else put one there (a tombstone, a
  // resync, a replay). The sink inserts such rows without ON CONFLICT and falls back when one conflicts.
  bool fresh = false;
  std::size_t first_value = 0;  // index into values(); the row's mapped columns follow in order
};

class TableFold {
 public:
  struct Value {
    ValueState state = ValueState::Null;
    const char* data = nullptr;  // the change's own bytes; nullptr: at `offset` in the fold's buffer
    std::size_t offset = 0;
    std::size_t length = 0;
  };

  TableFold() = default;
  explicit TableFold(const TableMapping& mapping);

  // Folds one Insert/Update/Delete of a bound relation of this table; `txn_lsn` is the source transaction's
  // commit LSN, the row's version. Throws PermanentError (table, `txn_lsn`) when the key cannot be read (no
  // old tuple on a delete, NULL key, binary values). `snapshot`: the change was read by a snapshot or a
  // resync, whose inserts may meet rows the target already has (never `fresh`).
  void add(const BoundTable& bound, const Change& change, Lsn txn_lsn, bool snapshot = false);

  bool empty() const { return rows_.empty(); }
  std::size_t size() const { return rows_.size(); }
  void clear();

  const std::vector<FoldedRow>& rows() const { return rows_; }
  std::size_t columns() const { return columns_; }
  const Value& value(const FoldedRow& row, std::size_t column) const {
    return values_[row.first_value + column];
  }
  std::string_view text(const Value& v) const {
    return v.data != nullptr ? std::string_view{v.data, v.length}
                             : std::string_view{arena_}.substr(v.offset, v.length);
  }

  // Row indexes: deletes first, then upserts in LSN order (what the set-based statements apply).
  std::vector<std::size_t> apply_order() const;

 private:
  void upsert(const BoundTable& bound, const Tuple& tuple, Lsn lsn, Lsn txn_lsn, bool insert);
  void remove(const BoundTable& bound, const Tuple& tuple, Lsn lsn, Lsn txn_lsn);
  // Transformed key of `tuple` into key_scratch_; throws PermanentError when a key column is NULL/absent.
  void encode_key(const BoundTable& bound, const Tuple& tuple, Lsn txn_lsn);
  // The row of key_scratch_, added when new (open addressing over row indexes; no node per key); `added_`
  // says which.
  std::size_t find_or_add_row();
  void grow_index();
  void store(std::size_t slot, const BoundTable& bound, std::size_t column, const Tuple& tuple, Lsn txn_lsn);

  const TableMapping* mapping_ = nullptr;
  std::size_t columns_ = 0;
  std::vector<FoldedRow> rows_;
  std::vector<Value> values_;
  std::string arena_;  // transformed values
  struct Key {
    std::size_t hash;
    std::size_t offset;  // into key_bytes_
    std::size_t length;
  };
  std::vector<Key> keys_;  // per row
  std::string key_bytes_;
  std::vector<std::uint32_t> index_;  // row + 1, 0: free; size a power of two, at most half full
  std::string key_scratch_;
  std::string old_key_;
  bool added_ = false;
};

}  // namespace cdcsync
