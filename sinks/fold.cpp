#include "sinks/fold.h"

#include <algorithm>
#include <cstring>

#include "sinks/sink.h"

namespace cdcsync {

TableFold::TableFold(const TableMapping& mapping) : mapping_(&mapping), columns_(mapping.columns.size()) {}

void TableFold::clear() {
  rows_.clear();
  values_.clear();
  arena_.clear();
  index_.clear();
}

void TableFold::add(const BoundTable& bound, const Change& change, Lsn txn_lsn) {
  switch (change.op) {
    case ChangeOp::Insert:
      upsert(bound, change.after, txn_lsn, txn_lsn);
      return;
    case ChangeOp::Update: {
      if (change.before_kind != 0 && !change.before.empty()) {
        encode_key(bound, change.before, txn_lsn);
        std::string old_key = key_scratch_;
        bool key_absent = false;
        for (std::size_t k : bound.key) {
          if (change.after.is_unchanged_toast(bound.source_index[k])) key_absent = true;
        }
        if (!key_absent) {
          encode_key(bound, change.after, txn_lsn);
          if (old_key != key_scratch_) remove(bound, change.before, txn_lsn, txn_lsn);
        }
      }
      upsert(bound, change.after, txn_lsn, txn_lsn);
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
  const auto [it, added] = index_.try_emplace(key_scratch_, rows_.size());
  if (added) {
    FoldedRow row;
    row.first_value = values_.size();
    rows_.push_back(row);
    values_.resize(values_.size() + columns_);
  }
  return it->second;
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
      v = {ValueState::Absent, 0, 0};
      return;
    case DatumKind::Binary:
      throw PermanentError(mapping_->source.str(), txn_lsn, "",
                           "column " + mapping_->columns[column].source + " of " + mapping_->source.str() +
                               " arrived in binary format; the sink needs text");
    case DatumKind::Text:
      in = tuple.value(src);
      break;
    case DatumKind::Null:
      break;
  }
  const std::size_t at = arena_.size();
  if (mapping_->columns[column].transform.apply(in, arena_)) {
    v = {ValueState::Value, at, arena_.size() - at};
  } else {
    v = {ValueState::Null, 0, 0};
  }
}

void TableFold::upsert(const BoundTable& bound, const Tuple& tuple, Lsn lsn, Lsn txn_lsn) {
  encode_key(bound, tuple, txn_lsn);
  const std::size_t r = find_or_add_row();
  FoldedRow& row = rows_[r];
  const bool had_image = row.action == RowAction::Upsert && row.lsn.valid();
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
  for (std::size_t c = 0; c < columns_; ++c) values_[row.first_value + c] = {ValueState::Absent, 0, 0};
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
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto& ra = rows_[a];
    const auto& rb = rows_[b];
    if (ra.action != rb.action) return ra.action == RowAction::Delete;
    return ra.lsn < rb.lsn;
  });
  return order;
}

}  // namespace cdcsync
