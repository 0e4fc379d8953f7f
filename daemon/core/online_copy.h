// Tables added to a streaming pipeline (by a reload or a restart) are copied online: the rows a table already
// holds on the source arrive through the bulk loader while streaming goes on, as native logical replication's
// table sync, Debezium's incremental snapshots and PeerDB's mirror edits do.
//
// Which tables. The per-table load state in the target (sinks/load_state.h) says which tables were copied: a
// mapped table without a row (never copied), or whose row says `copying` (a copy interrupted by a crash or a
// stop), is copied; a `streaming` one is not. A pipeline whose state table has no row at all predates it: its
// tables were copied when it started, and are recorded as `streaming` at the stream's start.
//
// How. A temporary slot exports a snapshot at a known LSN `cp`; the table is copied at it with the bulk
// loader's concurrent method (daemon/core/bulk_load.h: staged parts under the LSN guard `_cdc_lsn < cp`,
// under an EXCLUSIVE lock, keys deleted since cp checked against the source) while the stream applies the
// table's changes under the same guard, so the two meet exactly whatever their order. The state says
// `copying` at cp from before the first part and `streaming` at cp after the last: a crash in between leaves
// `copying`, and the next session copies again at a new snapshot, clearing nothing and guarding everything.
//
// The table must be in the publication first: changes before the ALTER PUBLICATION never reach the stream,
// and a copy taken after it holds them. Until it is, the table is not copied, and the log says the exact
// ALTER PUBLICATION to run (`cdcsync check` prints it too); the copy starts when it is.
//
// Removed tables. A table whose state row says `streaming` but that the config no longer maps stops being
// applied; its target rows are left as they are. Its row is set back to `copying`: it is no longer the
// source's at any point, and mapping it again copies it again. `cdcsync status` shows it as removed.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/core/bulk_load.h"
#include "sinks/mapping.h"

namespace cdcsync {

class OnlineCopy {
 public:
  // Reads the load state (on the calling thread: throws PgError), records removed tables, and starts copying
  // the tables that need it on a thread of its own. Does nothing without an order DB, with
  // snapshot.mode = never, or when a sink takes rows as change events (Kafka, the archive). `stream_from`:
  // where this session's stream starts.
  OnlineCopy(const config::Config& config, const Mapping& mapping, Lsn stream_from, LoadObserver progress);
  // Stops a copy under way (its tables stay `copying`: the next session copies them again) and joins.
  ~OnlineCopy();
  OnlineCopy(const OnlineCopy&) = delete;
  OnlineCopy& operator=(const OnlineCopy&) = delete;

 private:
  void run();
  // Waits up to `d`, or until stopped; returns false when stopped.
  bool pause(std::chrono::milliseconds d) const;
  // The tables to copy that the publication lacks, each logged once with its ALTER PUBLICATION.
  std::vector<const TableMapping*> unpublished();

  const config::Config& config_;
  LoadObserver progress_;
  std::vector<const TableMapping*> tables_;
  std::vector<std::string> warned_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace cdcsync
