// TableFold: a batch's changes folded to one action per key (pure logic).
#include "sinks/fold.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "sinks/sink.h"

namespace cdcsync {

TableFold::TableFold(const TableMapping& mapping) : mapping_(&mapping), columns_(mapping.columns.size()) {}

void TableFold::clear() {
  rows_.clear();
  values_.clear();
  arena_.clear();
  keys_.clear();
  key_bytes_.clear();
  // Kept for the next batch unless a huge one grew it.
  constexpr std::size_t kKeepSlots = std::size_t{1} << 17;
  if (index_.size() > kKeepSlots) {
    std::vector<std::uint32_t>().swap(index_);
  } else {
    std::fill(index_.begin(), index_.end(), 0u);
  }
}

void TableFold::add(const BoundTable& bound, const Change& change, Lsn txn_lsn, bool snapshot) {
  switch (change.op) {
    case ChangeOp::Insert:
      upsert(bound, change.after, txn_lsn, txn_lsn, !snapshot);
      return;
    case ChangeOp::Update: {
      if (change.before_kind != 0 && !change.before.empty()) {
        encode_key(bound, change.before, txn_lsn);
        old_key_.assign(key_scratch_);
        bool key_absent = false;
        for (std::size_t k : bound.key) {
          if (change.after.is_unchanged_toast(bound.source_index[k])) key_absent = true;
        }
        if (!key_absent) {
          encode_key(bound, change.after, txn_lsn);
          if (old_key_ != key_scratch_) remove(bound, change.before, txn_lsn, txn_lsn);
        }
      }
      upsert(bound, change.after, txn_lsn, txn_lsn, false);
      return;
    }
    case ChangeOp::Delete:
      if (change.before_kind == 0 || change.before.empty()) {
        throw PermanentError(
            mapping_->source.str(), txn_lsn, "",
            "delete on " + mapping_->source.str() + " carries no old key (REPLICA IDENTITY NOTHING?)");
      }
      remove(bound, change.before, txn_lsn, txn_lsn);
      return;
    default:
      return;
  }
}

void TableFold::encode_key(const BoundTable& bound, const Tuple& tuple, Lsn txn_lsn) {
  key_scratch_.clear();
  for (std::size_t k : bound.key) {
    const std::size_t src = bound.source_index[k];
    if (src >= tuple.size() || tuple.kind(src) != DatumKind::Text) {
      throw PermanentError(mapping_->source.str(), txn_lsn, "",
                           "key column " + mapping_->columns[k].source + " of " + mapping_->source.str() +
                               " has no text value in the change (NULL, unchanged TOAST or binary)");
    }
    const std::size_t at = key_scratch_.size();
    key_scratch_.append(sizeof(std::uint32_t), '\0');
    mapping_->columns[k].transform.apply(tuple.value(src), key_scratch_);
    const auto len = static_cast<std::uint32_t>(key_scratch_.size() - at - sizeof(std::uint32_t));
    std::memcpy(key_scratch_.data() + at, &len, sizeof len);
  }
}

std::size_t TableFold::find_or_add_row() {
  added_ = false;
  if ((rows_.size() + 1) * 2 > index_.size()) grow_index();
  const std::size_t hash = std::hash<std::string_view>{}(key_scratch_);
  const std::size_t mask = index_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const std::uint32_t slot = index_[i];
    if (slot == 0) {
      index_[i] = static_cast<std::uint32_t>(rows_.size() + 1);
      keys_.push_back({hash, key_bytes_.size(), key_scratch_.size()});
      key_bytes_.append(key_scratch_);
      FoldedRow row;
      row.first_value = values_.size();
      rows_.push_back(row);
      values_.resize(values_.size() + columns_);
      added_ = true;
      return rows_.size() - 1;
    }
    const Key& k = keys_[slot - 1];
    if (k.hash == hash && std::string_view{key_bytes_}.substr(k.offset, k.length) == key_scratch_)
      return slot - 1;
  }
}

void TableFold::grow_index() {
  const std::size_t size = std::max<std::size_t>(1024, index_.size() * 2);
  index_.assign(size, 0u);
  for (std::size_t r = 0; r < keys_.size(); ++r) {
    std::size_t i = keys_[r].hash & (size - 1);
    while (index_[i] != 0) i = (i + 1) & (size - 1);
    index_[i] = static_cast<std::uint32_t>(r + 1);
  }
}

void TableFold::store(std::size_t slot, const BoundTable& bound, std::size_t column, const Tuple& tuple,
                      Lsn txn_lsn) {
  const std::size_t src = bound.source_index[column];
  Value& v = values_[slot];
  if (src >= tuple.size()) {
    throw PermanentError(mapping_->source.str(), txn_lsn, "",
                         "change on " + mapping_->source.str() + " has fewer columns than its relation");
  }
  std::optional<std::string_view> in;
  switch (tuple.kind(src)) {
    case DatumKind::UnchangedToast:
      v = {ValueState::Absent, nullptr, 0, 0};
      return;
    case DatumKind::Binary:
      throw PermanentError(mapping_->source.str(), txn_lsn, "",
                           "column " + mapping_->columns[column].source + " of " + mapping_->source.str() +
                               " arrived in binary format; the sink needs text");
    case DatumKind::Text:
      in = tuple.value(src);
      if (mapping_->columns[column].transform.kind() == TransformKind::Copy) {
        v = {ValueState::Value, in->data(), 0, in->size()};  // no copy: the change outlives the fold
        return;
      }
      break;
    case DatumKind::Null:
      break;
  }
  const std::size_t at = arena_.size();
  if (mapping_->columns[column].transform.apply(in, arena_)) {
    v = {ValueState::Value, nullptr, at, arena_.size() - at};
  } else {
    v = {ValueState::Null, nullptr, 0, 0};
  }
}

void TableFold::upsert(const BoundTable& bound, const Tuple& tuple, Lsn lsn, Lsn txn_lsn, bool insert) {
  encode_key(bound, tuple, txn_lsn);
  const std::size_t r = find_or_add_row();
  FoldedRow& row = rows_[r];
  const bool had_image = row.action == RowAction::Upsert && row.lsn.valid();
  if (added_) row.fresh = insert;  // the key's first change in the batch
  bool absent = false;
  for (std::size_t c = 0; c < columns_; ++c) {
    const std::size_t slot = row.first_value + c;
    const std::size_t src = bound.source_index[c];
    // Unchanged TOAST after an earlier image of this key in the batch: keep the earlier value.
    if (had_image && src < tuple.size() && tuple.is_unchanged_toast(src)) {
      absent = absent || values_[slot].state == ValueState::Absent;
      continue;
    }
    store(slot, bound, c, tuple, txn_lsn);
    absent = absent || values_[slot].state == ValueState::Absent;
  }
  row.action = RowAction::Upsert;
  row.tombstone = false;
  row.has_absent = absent;
  row.lsn = lsn;
}

void TableFold::remove(const BoundTable& bound, const Tuple& tuple, Lsn lsn, Lsn txn_lsn) {
  if (mapping_->deletes == DeletePolicy::Ignore) return;
  encode_key(bound, tuple, txn_lsn);
  const std::size_t r = find_or_add_row();
  FoldedRow& row = rows_[r];
  const bool had_image = row.action == RowAction::Upsert && row.lsn.valid();
  if (mapping_->deletes == DeletePolicy::Soft && had_image) {
    row.tombstone = true;
    row.lsn = lsn;
    return;
  }
  // A fresh entry: the key columns from the old tuple, everything else unknown.
  for (std::size_t c = 0; c < columns_; ++c)
    values_[row.first_value + c] = {ValueState::Absent, nullptr, 0, 0};
  for (std::size_t k : bound.key) store(row.first_value + k, bound, k, tuple, txn_lsn);
  row.lsn = lsn;
  if (mapping_->deletes == DeletePolicy::Soft) {
    row.action = RowAction::Upsert;
    row.tombstone = true;
    row.has_absent = columns_ > bound.key.size();
  } else {
    row.action = RowAction::Delete;
    row.tombstone = false;
    row.has_absent = false;
  }
}

std::vector<std::size_t> TableFold::apply_order() const {
  std::vector<std::size_t> order(rows_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const auto in_order = [&] {
    for (std::size_t i = 1; i < rows_.size(); ++i) {
      const auto& a = rows_[i - 1];
      const auto& b = rows_[i];
      if (a.action != b.action ? b.action == RowAction::Delete : b.lsn < a.lsn) return false;
    }
    return true;
  };
  if (in_order()) return order;  // the common case: a batch of inserts, or updates of distinct keys
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& ra = rows_[a];
    const auto& rb = rows_[b];
    if (ra.action != rb.action) return ra.action == RowAction::Delete;
    return ra.lsn < rb.lsn;
  });
  return order;
}

}  // namespace cdcsync
