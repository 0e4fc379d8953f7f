// `cdcsync status`: one screen on a pipeline, from everything that knows a part of it. The daemon (its
// /healthz and /metrics on metrics.listen: state, last error, lag in seconds), the source (its WAL position
// and the slot: health, WAL retained), the target (the progress row and each table's load state and rows) and
// Redis (the checkpoint). A part that cannot be read is shown as such; the rest is still shown.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "decoders/lsn.h"

namespace cdcsync::status {

struct DaemonView {
  bool answers = false;            // something answered on metrics.listen
  std::string state;               // cdcsync_state: streaming, snapshot, backoff, ...
  std::string health;              // /healthz's body: "alive; last error at ...: ..."
  std::string last_error;          // the part of it after "last error", empty when none
  std::vector<std::string> fatal;  // cdcsync_fatal{reason}
  std::optional<double> lag_seconds;
};

struct SlotView {
  bool exists = false;
  bool active = false;
  std::string active_pid;
  std::optional<Lsn> confirmed_flush;
  std::optional<Lsn> restart;
  std::string wal_status;                     // reserved, extended, unreserved, lost
  std::optional<std::int64_t> safe_wal_size;  // nullopt: unlimited
};

struct TableView {
  std::string target;
  std::string source;  // empty for a table no longer mapped
  std::string state;   // copying, streaming, not copied, removed
  std::optional<Lsn> snapshot_lsn;
  std::optional<std::uint64_t> rows_copied;
  std::optional<std::uint64_t> target_rows;  // live rows (tombstones not counted)
  std::optional<std::uint64_t> source_rows;
};

struct Report {
  std::string pipeline;
  DaemonView daemon;
  std::optional<Lsn> source_wal;
  SlotView slot;
  std::optional<Lsn> target_progress;
  std::optional<double> target_lag_seconds;  // now - the progress row's commit time, while behind
  std::optional<Lsn> redis_checkpoint;
  std::vector<TableView> tables;
  std::vector<std::string> unreadable;  // "source: ...", "target: ...", "redis: ..."

  // Bytes from `position` to the source's WAL position (nullopt when either is unknown).
  std::optional<std::uint64_t> lag_bytes(const std::optional<Lsn>& position) const;
};

// Reads what it can; never throws for a server that cannot be read (see Report::unreadable).
Report gather(const config::Config& config);
std::string render_text(const Report& report);
std::string render_json(const Report& report);

}  // namespace cdcsync::status
