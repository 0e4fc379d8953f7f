// The change model every sink consumes: whole source transactions made of typed changes. Independent of
// any output format; the Debezium JSON encoder is one consumer among others and the sink path never goes
// through JSON.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/lsn.h"

namespace cdcsync {

using Oid = std::uint32_t;

struct RelationId {
  std::uint32_t value = 0;
  auto operator<=>(const RelationId&) const = default;
};

struct Xid {
  std::uint32_t value = 0;
  auto operator<=>(const Xid&) const = default;
};

struct ColumnDef {
  std::string name;
  Oid type_oid = 0;
  std::int32_t type_modifier = -1;  // atttypmod; -1 when the type has none
  bool part_of_key = false;         // flag bit 1 of the Relation message: part of the replica identity
};

struct RelationDef {
  RelationId id;
  std::string schema;
  std::string name;
  char replica_identity = 'd';  // 'd' default, 'n' nothing, 'f' full, 'i' index
  std::vector<ColumnDef> columns;

  std::string qualified_name() const { return schema + "." + name; }
  std::optional<std::size_t> column_index(std::string_view column) const {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].name == column) return i;
    }
    return std::nullopt;
  }
};
// Changes hold the relation as it was when they were decoded: a later Relation message (a schema change
// on the source) replaces the cache entry but never alters a change already decoded.
using RelationPtr = std::shared_ptr<const RelationDef>;

// A user-defined type announced by a Type message.
struct TypeDef {
  Oid oid = 0;
  std::string schema;
  std::string name;
};

enum class DatumKind : std::uint8_t { Null, UnchangedToast, Text, Binary };

// One row's column values: a single byte buffer plus (kind, offset, length) per column, so decoding a row
// costs no allocation once the Tuple's buffers have grown to size.
class Tuple {
 public:
  struct Slot {
    DatumKind kind;
    std::size_t offset;
    std::size_t length;
  };

  void clear() {
    slots_.clear();
    bytes_.clear();
  }
  bool empty() const { return slots_.empty(); }
  std::size_t size() const { return slots_.size(); }
  void reserve(std::size_t columns, std::size_t bytes) {
    slots_.reserve(columns);
    bytes_.reserve(bytes);
  }

  void add_null() { slots_.push_back({DatumKind::Null, 0, 0}); }
  void add_unchanged_toast() { slots_.push_back({DatumKind::UnchangedToast, 0, 0}); }
  void add_text(std::string_view value) { add(DatumKind::Text, value); }
  void add_binary(std::string_view value) { add(DatumKind::Binary, value); }

  DatumKind kind(std::size_t column) const { return slots_[column].kind; }
  bool is_null(std::size_t column) const { return slots_[column].kind == DatumKind::Null; }
  bool is_unchanged_toast(std::size_t column) const {
    return slots_[column].kind == DatumKind::UnchangedToast;
  }
  // The value's bytes (text form for Text, the type's send format for Binary); empty for Null and
  // UnchangedToast.
  std::string_view value(std::size_t column) const {
    const Slot& s = slots_[column];
    return std::string_view{bytes_}.substr(s.offset, s.length);
  }
  std::size_t byte_size() const { return bytes_.size(); }
  // Heap bytes the tuple holds (its buffers' capacities).
  std::size_t capacity_bytes() const { return slots_.capacity() * sizeof(Slot) + bytes_.capacity(); }

 private:
  void add(DatumKind kind, std::string_view value) {
    slots_.push_back({kind, bytes_.size(), value.size()});
    bytes_.append(value);
  }

  std::vector<Slot> slots_;
  std::string bytes_;
};

enum class ChangeOp : char {
  Insert = 'c',
  Update = 'u',
  Delete = 'd',
  Truncate = 't',
  Message = 'm',
};

struct Change {
  ChangeOp op = ChangeOp::Insert;
  Lsn lsn;               // start of the WAL record that carried this change
  RelationPtr relation;  // Insert/Update/Delete; null for Truncate and Message

  // Update and Delete: the old key ('K') or the whole old row ('O', replica identity full);
  // before_kind is 0 and before is empty when the server sent no old tuple.
  char before_kind = 0;
  Tuple before;
  Tuple after;  // Insert and Update

  // Truncate
  std::vector<RelationPtr> truncated;
  bool truncate_cascade = false;
  bool truncate_restart_identity = false;

  // Message (pg_logical_emit_message)
  bool message_transactional = false;
  std::string message_prefix;
  std::string message_content;
};

// PostgreSQL timestamps count microseconds from 2000-01-01 00:00:00 UTC.
inline constexpr std::int64_t kPgEpochUnixMicros = 946'684'800'000'000;
constexpr std::int64_t pg_micros_to_unix_micros(std::int64_t pg_micros) {
  return pg_micros + kPgEpochUnixMicros;
}

struct TransactionInfo {
  Xid xid;
  Lsn final_lsn;                    // LSN of the commit record (Begin.final_lsn == Commit.commit_lsn)
  Lsn end_lsn;                      // end of the commit record: what is checkpointed and confirmed
  std::int64_t commit_time_us = 0;  // PostgreSQL epoch microseconds
  // When the source sent the commit, by the same clock as commit_time_us (0: unknown). Their difference is
  // how far behind the stream is, whatever the clocks of this host and the source say.
  std::int64_t sent_time_us = 0;
  std::string origin;     // replication origin name, when an Origin message came
  bool snapshot = false;  // rows read by an initial snapshot or resync (Debezium op "r")
};

// A whole committed source transaction, or one chunk of a source transaction too large to hold in memory.
// Chunks of one source transaction arrive in order, share `info` (end_lsn is known on the last one only)
// and must be applied in a single target transaction.
struct Transaction {
  TransactionInfo info;
  std::vector<Change> changes;
  bool first_chunk = true;
  bool last_chunk = true;

  bool whole() const { return first_chunk && last_chunk; }
};

// What a change holds in memory, roughly: its values, column slots and the Change itself (allocator overhead
// and capacity slack are not counted). What the memory budget, the queue and the batches count.
inline std::size_t approximate_bytes(const Change& c) {
  return sizeof(Change) + c.before.byte_size() + c.after.byte_size() +
         (c.before.size() + c.after.size()) * sizeof(Tuple::Slot) + c.message_content.size();
}
inline std::size_t approximate_bytes(const Transaction& t) {
  std::size_t n = sizeof(Transaction);
  for (const auto& c : t.changes) n += approximate_bytes(c);
  return n;
}

}  // namespace cdcsync
