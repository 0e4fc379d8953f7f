// `cdcsync run`: connects the three servers, takes the pipeline's lease, reconciles the positions, makes
// the initial snapshot when the slot is new, and streams; comes back by itself after any transient fault
// (exponential backoff with jitter) and stops with a distinct exit code when only an operator can help.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "daemon/config/config.h"
#include "daemon/core/bulk_load.h"
#include "daemon/core/errors.h"
#include "daemon/core/pipeline.h"
#include "sinks/kafka_sink.h"
#include "sinks/mapping.h"
#include "sinks/postgres_sink.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync {

// What the runner is doing, for logs, /readyz and systemd's STATUS=.
enum class RunnerState { Starting, Standby, Snapshot, Streaming, Backoff, Stopped };
std::string_view name_of(RunnerState s);

struct RunnerHooks {
  std::function<void(RunnerState)> state_changed;        // also tells systemd READY=1 once streaming
  std::function<void()> heartbeat;                       // the main loop turned: /healthz, watchdog
  std::function<void(const std::string& reason)> fatal;  // cdcsync_fatal{reason}
  std::function<void(const std::string& component, const std::string& kind)> error;  // reconnect reasons
  std::function<void(const std::string& message)> last_error;  // what failed, as logged (`cdcsync status`)
  BatchObserver batch_applied;
  std::function<void()> dead_lettered;                   // one source transaction dead-lettered
  std::function<void(std::size_t)> dead_letter_entries;  // entries in the dead-letter stream
  KafkaSinkObserver kafka;      // the Kafka sink's produce latency, in-flight records, errors, transactions
  ArchiveSinkObserver archive;  // the event archive's entries appended, skipped, trimmed; its errors
  std::function<void(const std::string& table)> schema_drift;  // a source column found unmapped
  PostgresSinkObserver target;  // rows inserted without their TOAST value, set-based apply fallbacks
  std::function<void(const LoadProgressView&)> snapshot_progress;  // the initial snapshot, ~5 times a second
};

class Runner {
 public:
  Runner(const config::Config& config, PipelineStatus& status, RunnerHooks hooks = {});

  // Runs until `stop`; returns the process exit code (exit_code.h).
  int run(const std::atomic<bool>& stop);

  // A reloaded config (daemon/config/reload.h: its restart-only keys as running) and its mapping: the
  // current session ends as on a stop (what it applied is confirmed) and the next one starts with them,
  // without a backoff and without leaving the process. Any thread.
  void reload(config::Config next, Mapping mapping);

  RunnerState state() const { return state_.load(); }
  bool lease_held() const { return lease_held_.load(); }

 private:
  void session(const std::atomic<bool>& stop);
  // A classified stop: the log line (and, for a source stream error, the offending bytes in a private file
  // for a bug report), cdcsync_fatal{reason}, the exit code.
  int stop_for(const Classified& c, const std::exception_ptr& error);
  // Steps 2 and 3 of a session, once the sinks are connected: positions, snapshot, streaming.
  void stream_to(Sink& sink, CheckpointStore& store, bool checkpoint_known, const std::atomic<bool>& stop);
  // Each mapped source table's OID into mapping_ (a table renamed later is still bound to its entry). A
  // mapped table missing on the source, a mapped column that is missing or generated, or a table whose
  // changes the publication sends under another name (partitions) stops the daemon (exit 1), naming file,
  // table and fix.
  void resolve_source_tables();
  void set_state(RunnerState s);
  void sleep_for(std::chrono::milliseconds d, const std::atomic<bool>& stop);
  // Takes a reloaded config, if any, before a session; re-arms session_stop_ from `stop`.
  void take_reload(const std::atomic<bool>& stop);

  config::Config config_;  // the runner thread's; a reload is handed over in pending_
  std::mutex pending_mutex_;
  std::optional<std::pair<config::Config, Mapping>> pending_;
  // What a session stops on: the process's stop, or a reload.
  std::atomic<bool> session_stop_{false};
  PipelineStatus& status_;
  RunnerHooks hooks_;
  Mapping mapping_;
  LeaseToken token_;
  std::atomic<RunnerState> state_{RunnerState::Starting};
  std::atomic<bool> lease_held_{false};
  // When this session took the pipeline's lease (nullopt: the store was unreachable at its start).
  std::optional<std::chrono::steady_clock::time_point> lease_taken_at_;
};

// The sink mapping a config describes (transforms' key files are read here).
Mapping mapping_from_config(const config::Config& config);
// The source conninfo with the password from password_file when one is configured.
std::string source_conninfo(const config::Config& config);
std::string target_conninfo(const config::Config& config);
// The order-DB sink's options from [target]: conninfo, pipeline, progress table, statement timeout and
// TOAST compression.
PostgresSinkOptions target_sink_options(const config::Config& config);
// A token unique to this process: host, pid and random bits.
LeaseToken make_lease_token();

}  // namespace cdcsync
