// The initial snapshot of `cdcsync run`, at the runner's snapshot step: every mapped table copied by the bulk
// loader (daemon/core/bulk_load.h) at the new slot's exported snapshot, then the progress row at the slot's
// consistent point, from where the stream goes on.
//
// Resuming. A load interrupted by a crash leaves the slot (created at its consistent point `P` and never
// confirmed since) and the per-table state. The next start keeps the slot (reconcile: ResumeSnapshot) and
// copies again, at a new snapshot `S` > P of a temporary slot, every table not `streaming` at or after P; the
// tables already `streaming` are kept. Streaming then starts at P: for a table copied at S, the order-DB sink
// skips the changes of transactions that committed before S (they are in its copy: the state's snapshot LSN
// is the table's floor), so the copy's hand-off to the stream is as exact as the first attempt's would have
// been, without replaying an older state over it.
//
// When Kafka or the event archive is enabled (or there is no order DB), the snapshot's rows must reach them
// as change events too: the copy then goes through the sink chain in one session and one target transaction,
// as before the bulk loader (daemon/core/snapshot.h), and an interrupted one starts over.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "daemon/config/config.h"
#include "daemon/core/bulk_load.h"
#include "decoders/replication_stream.h"
#include "sinks/mapping.h"
#include "sinks/sink.h"

namespace cdcsync {

// A snapshot exported by a temporary logical slot on its own replication connection, for a copy at a point of
// its own (a resumed load, resync, verify --repair). The slot and its snapshot live as long as this object.
class TemporarySnapshot {
 public:
  // `purpose` names the slot ("load", "resync", "repair"). Throws PgError.
  TemporarySnapshot(const std::string& conninfo, std::string_view purpose);
  const ExportedSnapshot& snapshot() const { return snapshot_; }

 private:
  ReplicationStream stream_;
  ExportedSnapshot snapshot_;
};

struct InitialLoadHooks {
  std::function<void(const LoadProgressView&)> progress;  // the bar, the log lines, the metrics
  std::function<void()> heartbeat;                        // systemd's watchdog, while it runs
};

class InitialLoad {
 public:
  InitialLoad(const config::Config& config, const Mapping& mapping, InitialLoadHooks hooks);

  // Whether the bulk loader makes the snapshot (an order DB and no sink that takes rows as change events).
  bool bulk() const;
  // Whether the order DB holds the state of an earlier load of this pipeline (reconcile's fact). Throws
  // PgError.
  bool interrupted() const;

  // Copies every mapped table at `slot_snapshot` (a new slot's; nullopt when resuming: a temporary slot's),
  // then applies the progress row at `stream_from` through `sink`. Returns the rows copied, or nullopt when
  // stopped on request.
  std::optional<std::uint64_t> run(const std::optional<ExportedSnapshot>& slot_snapshot, Lsn stream_from,
                                   Sink& sink, const std::atomic<bool>& stop);

 private:
  std::uint64_t copy_through_sink(const ExportedSnapshot& snapshot, Lsn stream_from, Sink& sink);

  const config::Config& config_;
  const Mapping& mapping_;
  InitialLoadHooks hooks_;
};

// The bulk loader's options from the config ([snapshot], [target]): sessions, truncate, formats, deadline.
LoadOptions load_options(const config::Config& config);

}  // namespace cdcsync
