// Comparing the order DB's reference tables with the mapped projection of the customer DB, and re-copying
// rows from the source through the guarded path (verify, verify --repair, resync).
//
// Buckets, not key ranges. A row's bucket is a hash of its key *as the target holds it* (after the key's
// transform: copy or hmac_sha256), so both sides put every row in the same bucket whatever the key's type,
// collation or transform; source key order would not do, because an hmac'd key sorts differently on the
// target. Per bucket each side computes count(*) and the sum of 64-bit row hashes (an order-free multiset
// hash) over the same canonical text of the TRANSFORMED columns:
//   row text  = for each mapped column in mapping order: "<octet length>:<text>;" or "N;" for NULL
//   row hash  = first 8 bytes of md5(row text), big-endian, as a signed 64-bit integer
//   key text  = the same encoding over the key columns; bucket = (first 4 bytes of md5(key text)) % buckets
// The target computes its sums in SQL (no rows leave the server). The source does too when every column
// is copied unchanged; with transforms (whose keys live only in cdcsync) the source rows stream through
// Transform::apply and are hashed here. Only buckets whose sums differ are compared row by row, and only
// (key, row hash) pairs travel for them.
//
// A known point: an exported snapshot of a temporary logical slot (CREATE_REPLICATION_SLOT ... SNAPSHOT
// 'export'). It sees exactly the source transactions whose commit record starts before its consistent point
// `cp`, and the streamed rows carry their transaction's commit LSN in `_cdc_lsn`, so:
//   in the snapshot  <=>  _cdc_lsn < cp        not in the snapshot  <=>  _cdc_lsn >= cp.
// Writes from a snapshot therefore use `_cdc_lsn = cp` with the guard `t._cdc_lsn < cp`: they replace
// only rows older than the snapshot, and every streamed change after it (`_cdc_lsn >= cp`, applied with the
// sink's `<=` guard) wins whether it lands before or after the copy.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/core/bulk_load.h"
#include "decoders/lsn.h"
#include "decoders/pg.h"
#include "decoders/replication_stream.h"
#include "sinks/mapping.h"

namespace cdcsync::verify {

__extension__ typedef __int128 HashSum;

// Canonical encoding of one value: "<octet length>:<text>;" or "N;" for NULL.
void append_canonical(std::string& out, std::optional<std::string_view> value);
// The first 8 bytes of md5(text), big-endian, as a signed 64-bit integer (what the SQL computes).
std::int64_t row_hash(std::string_view canonical_row);
// (first 4 bytes of md5(key text), big-endian) % buckets.
std::uint32_t bucket_of(std::string_view canonical_key, std::uint32_t buckets);
std::string to_string(HashSum sum);
// Parses PostgreSQL's numeric text of a sum of bigints; nullopt when malformed.
std::optional<HashSum> parse_sum(std::string_view text);

// The SQL twins of the functions above, over quoted column expressions (`t."col"`).
std::string canonical_sql(const std::vector<std::string>& column_exprs);
std::string row_hash_sql(const std::vector<std::string>& column_exprs);
std::string bucket_sql(const std::vector<std::string>& key_exprs, std::uint32_t buckets);

struct BucketSum {
  std::uint64_t rows = 0;
  HashSum sum = 0;
  bool operator==(const BucketSum&) const = default;
};
using BucketSums = std::map<std::uint32_t, BucketSum>;

// One row as both sides describe it: its canonical key text, its row hash, and the key columns' values as
// the target holds them (for the report: keys only, never other values).
struct RowDigest {
  std::int64_t hash = 0;
  std::vector<std::optional<std::string>> key;
};
using RowDigests = std::map<std::string, RowDigest>;  // by canonical key text

// A mismatched row: its canonical key text and the key as printed ("customer_id=42").
struct KeyRef {
  std::string canonical;
  std::string shown;
  auto operator<=>(const KeyRef&) const = default;
};
struct RowDiff {
  std::vector<KeyRef> missing;    // in the source, absent (or tombstoned) in the target
  std::vector<KeyRef> extra;      // alive in the target, absent in the source
  std::vector<KeyRef> different;  // in both, other values
  std::size_t size() const { return missing.size() + extra.size() + different.size(); }
  // Only the keys also in `earlier` (the persistent mismatches of two passes).
  RowDiff intersect(const RowDiff& earlier) const;
  std::set<std::string> keys() const;
};
// Canonical keys of `source` and `target` compared. Extra rows are not counted for deletes = "ignore"
// tables (the target keeps deleted rows on purpose).
RowDiff diff_rows(const TableMapping& table, const RowDigests& source, const RowDigests& target);
// Buckets whose count or sum differ (present on either side).
std::vector<std::uint32_t> differing_buckets(const BucketSums& source, const BucketSums& target);

// "customer_id=42" / "(a=1, b=x)" from the target's key column names and a digest's key values.
std::string describe_key(const TableMapping& table, const RowDigest& row);

// A source transaction at a known WAL position (see the header comment): a temporary logical slot is
// created with an exported snapshot, imported by an ordinary REPEATABLE READ READ ONLY session, and the
// slot is dropped again as soon as the snapshot is imported.
class SourceSnapshot {
 public:
  // `purpose` names the temporary slot ("verify", "resync"). Throws PgError.
  SourceSnapshot(const std::string& conninfo, std::string_view purpose);
  Lsn point() const { return point_; }
  PGconn* conn() const { return conn_.get(); }
  void finish();  // COMMIT (read only)

 private:
  PgConn conn_;
  Lsn point_;
};

// Session settings that make ::text output identical on both servers (time zone, date and float styles).
void set_canonical_session(PGconn* conn);

// Greatest(end_lsn, acked_lsn) of the pipeline's progress row; nullopt when there is none.
std::optional<Lsn> target_position(PGconn* target, const QualifiedName& progress_table,
                                   const std::string& pipeline);

// Per-table reads, inside whatever transaction the connection has open.
class TableReader {
 public:
  explicit TableReader(const TableMapping& table) : table_(table) {}
  // True when every column is copied unchanged: the source side can hash in SQL.
  bool source_in_sql() const;
  // The bucket count for about `rows_per_bucket` rows per bucket, from the source's row estimate.
  std::uint32_t bucket_count(PGconn* source, std::uint64_t rows_per_bucket) const;

  BucketSums source_sums(PGconn* source, std::uint32_t buckets) const;
  BucketSums target_sums(PGconn* target, std::uint32_t buckets) const;
  // Row digests of the given buckets.
  RowDigests source_rows(PGconn* source, std::uint32_t buckets, const std::set<std::uint32_t>& only) const;
  RowDigests target_rows(PGconn* target, std::uint32_t buckets, const std::set<std::uint32_t>& only) const;

  // Streams the source rows: per row the canonical key text, the transformed values (target column
  // order) and the source key values as read. Used by the C++ hashing path and by re-copies.
  void stream_source(
      PGconn* source,
      const std::function<void(const std::string& key, const std::vector<std::optional<std::string>>& values,
                               const std::vector<std::optional<std::string>>& source_key)>& row) const;

 private:
  std::string target_filter() const;  // "" or " WHERE NOT t.<tombstone>"
  const TableMapping& table_;
};

struct RecopyResult {
  Lsn point;                       // the snapshot's consistent point
  std::uint64_t source_rows = 0;   // rows read from the snapshot (after the key filter)
  std::uint64_t upserted = 0;      // target rows inserted or replaced (older than the snapshot)
  std::uint64_t removed = 0;       // target rows deleted or tombstoned (absent in the snapshot)
  std::uint64_t skipped_gone = 0;  // absent in the target and deleted on the source since the snapshot
};

// Copies the rows of `table` from a new source snapshot (a temporary slot's) into the target through the
// bulk loader, while the daemon may be streaming (daemon/core/bulk_load.h, `concurrent`): in parts over
// snapshot.parallel sessions, each part staged and upserted under the guard (see the header comment) with an
// EXCLUSIVE lock on the target table while it writes (the daemon's writes to it wait, reads go on); a
// snapshot row whose key is absent from the target is written only when its key still exists on the source
// now (an absent key may be a hard delete streamed after the snapshot, which left no row to guard); then the
// target rows older than the snapshot and absent from it are removed. `only_keys`: canonical key texts to
// restrict the copy (and the removal) to, for verify --repair.
RecopyResult recopy_table(const config::Config& config, const TableMapping& table,
                          const std::optional<std::set<std::string>>& only_keys,
                          const LoadObserver& observer = {});

}  // namespace cdcsync::verify
