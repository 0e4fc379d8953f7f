// The event archive's row format: one change in TARGET form (what the order DB receives), so that the
// archive never holds a source column outside the mapping nor the clear text of a hashed or masked column.
//
// An ArchivedChange is computed from a source Change through the table mapping with its transforms applied
// (ArchiveProjector), stored as compact JSON in the `row` field of an archive stream entry, and turned back
// into source-like Changes of an identity mapping (target -> same target, no transforms, the configured
// delete/truncate policies) that a PostgresSink applies (ArchiveReplayMapping).
//
// Row JSON (version 1), e.g. an update of ref.customer:
//   {"v":1,"s":"ref","t":"customer","op":"u","cols":["customer_id","email_hash","bio"],"key":[0],
//    "before":["42",null,false],"after":["42","9f86d0…",false]}
//   v       format version (1)
//   s, t    target schema and table
//   op      c insert, u update, d delete, r snapshot read, t truncate of this target table
//   cols    target column names in mapping order; key: indexes into cols of the key columns (empty for t)
//   before  old values (present for d, and for u when the source sent an old key/row); after: new values
//           (present for c, r, u). One value per column: a string (the value's text form), null (SQL
//           NULL), or false (unchanged TOAST / not known: the column is left as it is).
//
// The hash chain of the archive stream (see sinks/redis_archive_sink.h) is defined here too, so every
// reader recomputes it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"
#include "sinks/fold.h"
#include "sinks/mapping.h"

namespace cdcsync {

enum class ArchivedOp : char { Create = 'c', Update = 'u', Delete = 'd', Read = 'r', Truncate = 't' };

// One column value: Value (text), Null, or Absent (unchanged TOAST: not known, left as it is on replay).
struct ArchivedValue {
  ValueState state = ValueState::Null;
  std::string text;  // Value only

  static ArchivedValue value(std::string text) { return {ValueState::Value, std::move(text)}; }
  static ArchivedValue null() { return {ValueState::Null, {}}; }
  static ArchivedValue absent() { return {ValueState::Absent, {}}; }
  bool operator==(const ArchivedValue&) const = default;
};

struct ArchivedChange {
  QualifiedName table;  // target table
  ArchivedOp op = ArchivedOp::Create;
  std::vector<std::string> columns;   // target column names, mapping order
  std::vector<std::size_t> key;       // indexes into columns, key order
  std::vector<ArchivedValue> before;  // empty: no old values
  std::vector<ArchivedValue> after;   // empty for d and t

  bool operator==(const ArchivedChange&) const = default;
};

// A malformed archive row or entry; the message names the entry id.
class ArchiveFormatError : public std::runtime_error {
 public:
  ArchiveFormatError(std::string entry_id, const std::string& what)
      : std::runtime_error("archive entry " + entry_id + ": " + what), entry_id_(std::move(entry_id)) {}
  const std::string& entry_id() const { return entry_id_; }

 private:
  std::string entry_id_;
};

// Appends the row JSON of `change` to `out`.
void encode_archived_change(const ArchivedChange& change, std::string& out);
std::string encode_archived_change(const ArchivedChange& change);
// Validates everything (shape, op, column count, key indexes, which value lists the op needs); throws
// ArchiveFormatError naming `entry_id`.
ArchivedChange decode_archived_change(std::string_view json, std::string_view entry_id);

// One source change in target form: the archive row, and the same change as a Change of a target-form
// relation (target names, the source column types, text for transformed columns) for the Debezium encoder.
struct ProjectedChange {
  ArchivedChange row;
  Change target;
};

// Source changes -> target-form changes, through the mapping and its transforms (as the order-DB sink does).
class ArchiveProjector {
 public:
  // `mapping` must outlive the projector.
  explicit ArchiveProjector(const Mapping& mapping);
  ~ArchiveProjector();
  ArchiveProjector(const ArchiveProjector&) = delete;
  ArchiveProjector& operator=(const ArchiveProjector&) = delete;

  // Appends the target-form changes of `change`: none for unmapped tables and messages, one per mapped
  // table of a truncate. `snapshot` turns inserts into op r. Throws PermanentError (source table, `txn_lsn`)
  // for a value the sink could not apply either (binary format, missing mapped column).
  void project(const Change& change, Lsn txn_lsn, bool snapshot, std::vector<ProjectedChange>& out);

 private:
  struct Target;
  const Target& target_for(const BoundTable& bound);
  void project_values(const BoundTable& bound, const Tuple& tuple, bool key_only, Lsn txn_lsn,
                      std::vector<ArchivedValue>& out, Tuple& tuple_out);

  const Mapping* mapping_;
  RelationBinder binder_;
  std::map<const RelationDef*, std::unique_ptr<Target>> targets_;
};

// Archived changes -> Changes of an identity mapping over the configured target tables (target -> same
// target, every column copied, the configured key, delete/truncate policies and guard columns), which a
// PostgresSink built on mapping() applies through its usual LSN guard.
class ArchiveReplayMapping {
 public:
  explicit ArchiveReplayMapping(const Mapping& configured);

  const Mapping& mapping() const { return identity_; }
  // The configured target table, or nullptr.
  const TableMapping* table(const QualifiedName& target) const { return identity_.find(target); }

  // The change as the identity mapping's source sees it, with the values in the configured column order:
  // an archived column the mapping no longer has is dropped, a configured column the row lacks is left
  // unchanged. nullopt when the target table is not configured. Throws ArchiveFormatError naming
  // `entry_id` when a key column is missing from the row.
  std::optional<Change> to_change(const ArchivedChange& row, std::string_view entry_id) const;

 private:
  Mapping identity_;
  std::map<QualifiedName, RelationPtr> relations_;
};

// ---- Archive stream entries and their hash chain ----

// The `prev` of the first entry ever appended.
inline constexpr std::string_view kArchiveGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Stream entry id "<commit LSN as uint64>-<seq>": seq is the index of the archived change within its source
// transaction, counted across chunks.
std::string archive_entry_id(Lsn commit_lsn, std::uint64_t seq);
// (commit LSN value, seq) of an id; nullopt when it is not two decimal uint64 joined by '-'.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_archive_entry_id(std::string_view id);

// Lowercase hex SHA-256 over prev, id and the entry's other fields in their stream order (without prev and
// hash): "cdcsync-archive-v1\n" prev "\n" id "\n", then per field "<name>\n<byte length>\n<value>\n".
// Lengths make the encoding unambiguous whatever the values hold.
std::string archive_entry_hash(std::string_view prev, std::string_view id,
                               const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace cdcsync
