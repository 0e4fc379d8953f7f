// Which source columns reach the order database, under which names and transforms. Fail-closed: a source
// column that is not mapped never reaches the target, also when it appears later through a schema change.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"
#include "decoders/qualified_name.h"
#include "sinks/policy.h"

namespace cdcsync {

// A schema-qualified relation name. Kept as two parts so that dots, quotes and spaces inside names are
// never ambiguous.
enum class TransformKind : std::uint8_t { Copy, HmacSha256, Mask, Constant, Null };

// A per-column transform applied before a value leaves the process.
class Transform {
 public:
  Transform() = default;
  static Transform copy() { return Transform{}; }
  // HMAC-SHA256 of the value's text with `key`, as 64 lowercase hex digits.
  static Transform hmac_sha256(std::string key);
  // Reads the key from a file (a trailing newline is not part of the key). Throws std::invalid_argument
  // naming the path (never the key) when the file is unreadable or empty.
  static Transform hmac_sha256_from_file(const std::string& path);
  // Keeps the last `keep_last` characters (UTF-8 code points) and replaces every other one with '*'.
  static Transform mask(std::size_t keep_last);
  static Transform constant(std::string value);
  static Transform null();

  TransformKind kind() const { return kind_; }
  // True when the target column holds text whatever the source type (hmac, mask, constant).
  bool yields_text() const {
    return kind_ == TransformKind::HmacSha256 || kind_ == TransformKind::Mask ||
           kind_ == TransformKind::Constant;
  }
  // Appends the transformed value of `in` (nullopt: SQL NULL) to `out`; returns false when the result
  // is NULL (nothing appended).
  bool apply(std::optional<std::string_view> in, std::string& out) const;

 private:
  TransformKind kind_ = TransformKind::Copy;
  std::string key_or_value_;
  std::size_t keep_last_ = 0;
};

struct ColumnMapping {
  std::string source;
  std::string target;
  Transform transform;
};

DeletePolicy parse_delete_policy(std::string_view text);      // hard|soft|ignore; throws invalid_argument
TruncatePolicy parse_truncate_policy(std::string_view text);  // apply|ignore|fail
std::string_view to_string(DeletePolicy p);
std::string_view to_string(TruncatePolicy p);

struct TableMapping {
  QualifiedName source;
  QualifiedName target;
  std::vector<std::string> key;        // source column names; each must be mapped
  std::vector<ColumnMapping> columns;  // target column order
  DeletePolicy deletes = DeletePolicy::Hard;
  TruncatePolicy truncates = TruncatePolicy::Apply;
  std::string lsn_column = "_cdc_lsn";
  std::string tombstone_column = "_cdc_deleted";

  // Throws std::invalid_argument: empty key or columns, key column not mapped or mapped through a
  // non-deterministic transform, duplicate source or target columns, a column colliding with the guard
  // or tombstone column.
  void validate() const;
  std::optional<std::size_t> column_of_source(std::string_view source_column) const;
  // Indexes into `columns` of the key columns, in key order.
  std::vector<std::size_t> key_indexes() const;
};

class Mapping {
 public:
  Mapping() = default;
  // Validates every table; throws std::invalid_argument on a duplicate source or target table.
  explicit Mapping(std::vector<TableMapping> tables);

  const std::vector<TableMapping>& tables() const { return tables_; }
  const TableMapping* find(const QualifiedName& source) const;
  std::optional<std::size_t> index_of(const QualifiedName& source) const;

  // The source table's OID, as the daemon found it under its configured name when the session began: a
  // relation that arrives under another name with this OID is the same table, renamed.
  void set_source_oid(std::size_t index, RelationId oid) { source_oids_[oid] = index; }
  std::optional<std::size_t> index_of(RelationId oid) const;

 private:
  std::vector<TableMapping> tables_;
  std::map<RelationId, std::size_t> source_oids_;
  std::map<QualifiedName, std::size_t> by_source_;
};

// A mapping resolved against one version of a source relation (one RelationDef).
struct BoundTable {
  std::size_t table = 0;  // index into Mapping::tables()
  const TableMapping* mapping = nullptr;
  RelationPtr relation;
  std::vector<std::size_t> source_index;  // per mapped column: its index in relation->columns
  std::vector<std::size_t> key;           // indexes into mapping->columns
};

// An unmapped source column seen for the first time: the daemon logs it once.
struct ColumnDrift {
  std::string table;   // source table
  std::string column;  // source column name (never a value)
};

// Resolves relations to their mapping and remembers schema drift.
class RelationBinder {
 public:
  explicit RelationBinder(const Mapping& mapping) : mapping_(&mapping) {}

  // nullptr when the source table is not mapped (its changes are dropped). Throws PermanentError naming
  // table and column when a mapped source column is missing from the relation; `lsn` names the source
  // transaction in that error.
  const BoundTable* bind(const RelationPtr& relation, Lsn lsn);

  // Distinct unmapped source columns seen so far, per source table.
  std::map<std::string, std::uint64_t> drift_counts() const;
  // Unmapped columns seen for the first time since the last call.
  std::vector<ColumnDrift> take_new_drift();
  // Source tables that are published but not mapped, seen so far.
  const std::set<std::string>& unmapped_tables() const { return unmapped_tables_; }
  // Mapped tables that arrived under another name (renamed; bound by OID) for the first time since the last
  // call: (configured source name, the name they arrive under).
  std::vector<std::pair<std::string, std::string>> take_new_renames() {
    return std::exchange(renamed_new_, {});
  }
  // Unmapped source tables seen for the first time since the last call.
  std::vector<std::string> take_new_unmapped() { return std::exchange(unmapped_new_, {}); }
  // Whether a take_new_* call has anything: only a relation bound for the first time makes news, so a caller
  // on the per-change path asks this first.
  bool has_news() const { return !drift_new_.empty() || !renamed_new_.empty() || !unmapped_new_.empty(); }

 private:
  const Mapping* mapping_;
  // Keeps the RelationDefs alive so their addresses stay unique while cached.
  std::map<const RelationDef*, std::unique_ptr<BoundTable>> bound_;
  std::set<std::pair<std::string, std::string>> drift_seen_;
  std::vector<ColumnDrift> drift_new_;
  std::set<std::string> unmapped_tables_;
  std::vector<std::string> unmapped_new_;
  std::set<std::string> renamed_seen_;
  std::vector<std::pair<std::string, std::string>> renamed_new_;
};

}  // namespace cdcsync
