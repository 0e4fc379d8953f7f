// The bulk loader: copies mapped tables from one exported snapshot of the source into the order DB, over
// several sessions at once. The initial snapshot, `resync` and `verify --repair` all load through it.
//
// Snapshot. N source sessions import the same exported snapshot (SET TRANSACTION SNAPSHOT in a REPEATABLE
// READ READ ONLY transaction), so every part of every table is read at the one consistent point `cp`. The
// connection that exported it (the slot's replication connection, or a temporary slot's) stays open and idle
// until the load returns: a session that lost its connection imports it again.
//
// Parts. A table is cut into ranges of heap blocks (`ctid >= '(a,0)' AND ctid < '(b,0)'`, a TID range scan;
// for a partitioned table the same ranges over each partition), about four per session, the last one open
// (daemon/core/bulk_parts.h). Parts of all tables go into one queue, largest tables first; each of the N
// workers (a source session and a target session) takes the next part, so several tables load at once and
// one large table loads over all sessions. Each part is one target transaction.
//
// Rows. Binary COPY on both sides; columns of the same type pass through as the bytes the source sent, and
// only transformed or differently typed columns are decoded (daemon/core/bulk_rows.h). Every row gets the
// version `cp` (and its tombstone, false, for soft deletes): a row from a snapshot at cp holds exactly the
// source transactions whose commit record starts before cp, as a streamed change at L >= cp never does.
//
// How a table is written, decided once per table before its first part:
//   direct   the target table is empty and nobody else writes it (the initial load): COPY straight into it;
//            no stage, no upsert, no index probe for conflicts. With snapshot.truncate (TRUNCATE privilege),
//            a table copied in one part is truncated in the same transaction and copied with COPY FREEZE.
//   cleared  the table holds only rows of an earlier attempt of this load (its state says `copying` and
//            `started_empty`): emptied (DELETE, or TRUNCATE with snapshot.truncate), then direct.
//   staged   anything else: each part is copied into a TEMP stage and upserted under the guard
//            `t._cdc_lsn < cp`, so a row already newer than the snapshot is kept. When changes are applied to
//            the table meanwhile (resync, repair: `concurrent`), the part's transaction also takes an
//            EXCLUSIVE lock on the table (the daemon's writes to it wait, readers do not) and writes a
//            snapshot row whose key is absent from the target only if the key still exists on the source now:
//            an absent key may be a hard delete streamed after cp, which left no row to guard. After its last
//            part, rows still older than cp are exactly those absent from the snapshot: deleted (tombstoned
//            for soft deletes, kept for deletes = "ignore") under the same guard.
//
// Crash safety. Parts commit on their own (without waiting for the WAL flush: what later waits for it makes
// them durable too), so a table is complete only when all of its parts are. The per-table state beside the
// progress row (sinks/load_state.h) says `copying` at cp from before the first part, and `streaming` (rows
// as of cp) once every part has committed and the table is swept; the progress row moves after every table
// is `streaming`. A crash leaves tables `copying`: a restart copies each of them again from a new snapshot
// (its exported one died with the connection), clearing or guarding what the first attempt left, so no row
// is duplicated, missed, or kept after the source deleted it between the attempts. Tables already
// `streaming` are kept (daemon/core/initial_load.h).
//
// Deadlines. Each session has a reply deadline (daemon/core/reply_deadline.h) of snapshot.stall_timeout_ms
// while rows flow: a source that sends nothing, or a target that takes nothing, for that long (a half-open
// link) has its socket shut down, and the load fails as a transient error. The long single statements (a
// part's upsert, a sweep) have none, as a resync's never had.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "daemon/core/bulk_rows.h"
#include "decoders/lsn.h"
#include "sinks/load_state.h"
#include "sinks/mapping.h"
#include "sinks/policy.h"

namespace cdcsync {

// A snapshot to copy at: its name for SET TRANSACTION SNAPSHOT, and its consistent point.
struct ExportedSnapshot {
  std::string name;
  Lsn point;
};

struct LoadOptions {
  std::string source_conninfo;
  std::string target_conninfo;
  int sessions = 2;
  // Changes are applied to the tables meanwhile (resync, verify --repair): every part is staged, under an
  // EXCLUSIVE lock and the check for rows deleted since the snapshot.
  bool concurrent = false;
  // snapshot.truncate: TRUNCATE may empty a table the load fills (and COPY FREEZE a table in one part).
  bool truncate = false;
  // snapshot.rebuild_indexes: a table copied straight in (empty, or emptied of an interrupted copy) has its
  // indexes dropped before the copy and built after it (needs its owner's rights); only with `state`, which
  // keeps them meanwhile. A load resumed with them dropped builds them whatever this says.
  bool rebuild_indexes = false;
  // No change was ever applied to the tables (the initial load, before the progress row): a table whose
  // state says it started empty holds only this load's own rows, whatever its phase, and may be emptied.
  bool nothing_streamed = false;
  CopyFormat copy_format = CopyFormat::Binary;
  ToastCompression toast_compression = ToastCompression::Auto;
  std::chrono::milliseconds stall_timeout{60000};
  // Where the per-table state is kept (the initial load); nullopt: not kept (resync, repair).
  std::optional<LoadStateStore> state;
  std::uint64_t max_part_pages = 16384;  // 128 MB of heap per part at most
};

// One table to copy.
struct TableLoad {
  const TableMapping* table = nullptr;
  RowFilter keep;  // verify --repair: only these rows (and then: copied as text)
  // The sweep's extra condition on the target rows (over `t."col"`, its parameter as $2), with `keep`.
  std::string sweep_condition;
  PgParam sweep_parameter;
};

enum class LoadMethod : std::uint8_t { Direct, Cleared, Staged };
std::string_view name_of(LoadMethod m);

struct TableLoadResult {
  const TableMapping* table = nullptr;
  LoadMethod method = LoadMethod::Direct;
  bool binary = true;
  std::size_t parts = 0;
  std::uint64_t source_rows = 0;   // rows read from the snapshot (after the filter)
  std::uint64_t written = 0;       // target rows inserted or replaced
  std::uint64_t removed = 0;       // target rows deleted or tombstoned (absent from the snapshot)
  std::uint64_t skipped_gone = 0;  // staged rows absent from the target and deleted on the source since
  double seconds = 0;
};

// What the load has done so far, handed to the observer about five times a second on the calling thread.
struct TableProgress {
  std::string table;  // target, schema.table
  std::uint64_t rows = 0;
  std::optional<std::uint64_t> estimate;  // pg_class.reltuples, or a count when the table was never analyzed
  std::size_t parts = 0;
  std::size_t parts_done = 0;
  bool done = false;
};
struct LoadProgressView {
  std::vector<TableProgress> tables;
  std::chrono::steady_clock::duration elapsed{};
  bool finished = false;  // the last call
};
using LoadObserver = std::function<void(const LoadProgressView&)>;

// The load was stopped on request (`stop`): nothing of an unfinished table is `streaming`.
class LoadStopped : public std::runtime_error {
 public:
  LoadStopped() : std::runtime_error("the load was stopped") {}
};

// Copies `tables` at `snapshot`. Returns one result per table, in order. Throws PgError (a transient one for
// a lost or stalled connection), PermanentError (the target refused a row), LoadStopped.
std::vector<TableLoadResult> load_tables(const ExportedSnapshot& snapshot,
                                         const std::vector<TableLoad>& tables, const LoadOptions& options,
                                         const LoadObserver& observer, const std::atomic<bool>& stop);

}  // namespace cdcsync
