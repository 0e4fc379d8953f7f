// Every metric of the daemon, in one place: names and help live in probe.cpp. The probe is fed by the
// runner's hooks (state, errors, fatal), the pipeline's BatchObserver (per applied batch), the
// PipelineStatus atomics (read at scrape time) and its own poller thread, which asks the source over an
// ordinary connection how far the slot is behind and how much WAL it retains, and forecasts when
// max_slot_wal_keep_size would invalidate the slot if it stopped advancing.
//
// Every series carries the constant label pipeline="<name>", so many instances share one dashboard. Labels
// hold table names, ops, states and error classes only: never row values or keys.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "daemon/core/pipeline.h"
#include "daemon/core/runner.h"
#include "daemon/ops/metrics/http_server.h"
#include "daemon/ops/stage_metrics.h"
#include "decoders/change.h"
#include "decoders/lsn.h"
#include "sinks/sink.h"

namespace cdcsync {

struct ProbeOptions {
  std::string pipeline;
  std::string version;
  std::string revision;  // the source revision (git describe)
  std::string unit;      // the systemd service unit, empty outside one
  std::string slot;
  // liveness(): longest the main loop may go without turning, nothing of it in flight, and still be alive.
  std::chrono::milliseconds stall_limit{10000};
  // How often the poller asks the source about the slot.
  std::chrono::milliseconds poll_interval{5000};
  // Window over which the WAL generation rate is measured.
  std::chrono::seconds wal_rate_window{300};
  // /readyz answers 503 while streaming with a replication lag above this.
  std::chrono::seconds ready_max_lag{300};
  // Wall clock; tests pass a fake one.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// What one poll of the source saw (pg_current_wal_lsn() and the slot's row of pg_replication_slots).
struct SlotPoll {
  Lsn current_wal_lsn;
  bool slot_exists = false;
  std::optional<Lsn> confirmed_flush_lsn;
  std::optional<Lsn> restart_lsn;
  std::string wal_status;                     // reserved, extended, unreserved, lost
  std::optional<std::int64_t> safe_wal_size;  // null: max_slot_wal_keep_size = -1 (unlimited)
};

// The last `cdcsync verify` result, as verify records it in Redis (hash cdcsync:{<pipeline>}:verify).
struct VerifyResult {
  std::int64_t mismatched_rows = 0;  // missing + extra + different
  std::int64_t unix_ms = 0;          // when it finished
  // Per target table ("ref.customer"): its mismatched rows at the last verify that compared it.
  std::vector<std::pair<std::string, std::int64_t>> tables;
};

struct ProbeFamilies;  // probe.cpp: the family builders the constructor registers with

class Probe final : public prometheus::Collectable {
 public:
  Probe(ProbeOptions options, const PipelineStatus& status);
  ~Probe() override;  // stops the poller
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // RunnerHooks for `run`: state, error, fatal and batch_applied feed the metrics; `on_state` (optional) is
  // called as well, after the probe has recorded the state (systemd's READY= and STATUS=).
  RunnerHooks hooks(std::function<void(RunnerState)> on_state = {}, std::function<void()> heartbeat = {});

  void state_changed(RunnerState s);
  void error(const std::string& component, const std::string& kind);
  void fatal(const std::string& reason);
  // One SIGHUP's outcome: applied, unchanged, restart_required (only restart-only keys changed), invalid.
  void config_reloaded(const std::string& result);
  void set_lease_view(std::function<bool()> lease_held) { lease_held_view_ = std::move(lease_held); }
  // The hot path: called by the applier after each batch. Single-threaded (the applier's thread only); the
  // per-(relation, op) counters are cached so a batch costs no lookup that allocates.
  void batch_applied(const Batch& batch, std::chrono::steady_clock::duration apply_time);
  // The same, with where the batch's time went (cdcsync_stage_seconds).
  void batch_applied(const Batch& batch, const BatchTimings& timings);
  // The copy's progress (the initial snapshot): rows copied and the estimate, per target table.
  void snapshot_progress(const LoadProgressView& v);
  // The Kafka sink's hooks: produce latency, in-flight records, errors by kind, transactions by outcome.
  KafkaSinkObserver kafka_observer();
  ArchiveSinkObserver archive_observer();
  PostgresSinkObserver target_observer();

  // Records one poll of the source (the poller calls it; tests call it directly).
  void record_poll(const SlotPoll& poll);
  // The poller could not reach the source (or the query failed).
  void record_poll_failure();

  // The last verify result (the poller reads it with `set_verify_reader`'s function; tests call it directly).
  void record_verify(const VerifyResult& result);
  // Called by the poller on each turn (from its thread); nullopt when no verify ran. Throws on a Redis error.
  void set_verify_reader(std::function<std::optional<VerifyResult>()> reader) {
    verify_reader_ = std::move(reader);
  }

  // Starts/stops the poller thread on an ordinary (non-replication) connection to `conninfo`.
  void start_polling(std::string conninfo);
  void stop_polling();

  // Refreshes the gauges derived from PipelineStatus and the clock, then returns every family (ours and
  // the process collector's), each series labelled with the pipeline and its labels in name order.
  std::vector<prometheus::MetricFamily> Collect() const override;

  // Collect() calls so far: one per scrape of /metrics.
  std::uint64_t scrapes() const { return scrapes_.load(); }

  // The health check /healthz answers and systemd's watchdog is fed from: alive while the main loop (the
  // runner's, the applier's, the initial snapshot's) turned in the last `stall_limit`, or while one of its
  // commands to PostgreSQL is in flight within its reply deadline (decoders/pg_link.h: the watcher ends it
  // there at the latest). A slow statement is not a hang; a loop that stopped turning with nothing in flight
  // is.
  metrics::HealthStatus liveness() const;
  // The main loop turned (RunnerHooks::heartbeat).
  void beat();
  metrics::HealthStatus readiness() const;

  RunnerState state() const { return state_.load(); }
  // Seconds behind the source: now - last applied commit time while behind, 0 when caught up, NaN when
  // unknown (not streaming, and the source's slot cannot be polled).
  double replication_lag_seconds() const;
  std::optional<std::int64_t> replication_lag_bytes() const;

 private:
  // The constructor's registrations, in the order a scrape lists them (probe.cpp).
  void build_apply_metrics(const ProbeFamilies& f);
  void build_source_metrics(const ProbeFamilies& f);
  void build_position_metrics(const ProbeFamilies& f);
  void build_error_metrics(const ProbeFamilies& f);
  void build_sink_metrics(const ProbeFamilies& f);
  void build_health_metrics(const ProbeFamilies& f);
  prometheus::Counter& counter_for(const RelationDef& relation, ChangeOp op);
  void refresh() const;
  std::optional<bool> behind() const;  // nullopt: unknown
  void poll_loop(std::string conninfo);

  ProbeOptions options_;
  const PipelineStatus& status_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<const prometheus::Collectable> process_;

  // Families.
  prometheus::Family<prometheus::Counter>* change_events_;
  prometheus::Counter* transactions_;
  prometheus::Counter* batches_;
  prometheus::Histogram* batch_rows_;
  prometheus::Histogram* apply_duration_;
  prometheus::Histogram* end_to_end_latency_;
  std::unique_ptr<StageMetrics> stages_;
  prometheus::Gauge* lag_bytes_;
  prometheus::Gauge* lag_seconds_;
  prometheus::Gauge* retained_wal_;
  prometheus::Gauge* safe_wal_size_;
  prometheus::Family<prometheus::Gauge>* wal_status_;
  prometheus::Gauge* wal_rate_;
  prometheus::Gauge* forecast_;
  prometheus::Gauge* checkpoint_lsn_;
  prometheus::Gauge* checkpoint_age_;
  prometheus::Gauge* confirmed_lsn_;
  prometheus::Gauge* durable_lsn_;
  prometheus::Gauge* received_lsn_;
  prometheus::Gauge* source_wal_lsn_;
  prometheus::Family<prometheus::Counter>* reconnects_;
  prometheus::Family<prometheus::Counter>* errors_;
  prometheus::Family<prometheus::Gauge>* fatal_;
  prometheus::Family<prometheus::Counter>* config_reloads_;
  prometheus::Counter* dead_lettered_;
  prometheus::Gauge* dead_letter_entries_;
  prometheus::Histogram* kafka_produce_latency_;
  prometheus::Gauge* kafka_in_flight_;
  prometheus::Family<prometheus::Counter>* kafka_errors_;
  prometheus::Family<prometheus::Counter>* kafka_transactions_;
  prometheus::Family<prometheus::Counter>* archive_entries_;
  prometheus::Counter* archive_errors_;
  prometheus::Gauge* lease_held_;
  prometheus::Family<prometheus::Gauge>* state_family_;
  prometheus::Family<prometheus::Counter>* schema_drift_;
  prometheus::Family<prometheus::Counter>* rows_without_toast_;
  prometheus::Family<prometheus::Counter>* apply_fallbacks_;
  prometheus::Family<prometheus::Counter>* snapshot_rows_;
  prometheus::Family<prometheus::Gauge>* snapshot_estimate_;
  std::unordered_map<std::string, std::uint64_t> snapshot_rows_seen_;  // per table, the applier's thread
  prometheus::Gauge* queue_depth_;
  prometheus::Gauge* memory_budget_;
  prometheus::Gauge* memory_held_;
  prometheus::Gauge* spool_bytes_;
  prometheus::Counter* read_during_replay_;
  prometheus::Counter* commits_unflushed_;
  prometheus::Gauge* checkpoint_store_up_;
  prometheus::Gauge* source_probe_up_;
  prometheus::Gauge* last_poll_time_;

  // Hot-path cache, keyed by relation OID and op; touched by the applier thread only.
  struct CachedCounter {
    std::string schema;  // the names the counter was made for
    std::string name;
    prometheus::Counter* counter = nullptr;
  };
  std::unordered_map<std::uint64_t, CachedCounter> counter_cache_;
  prometheus::Counter* message_counter_ = nullptr;
  // One batch's end-to-end latencies per bucket (not cumulative), handed to end_to_end_latency_ at once:
  // prometheus-cpp's Observe takes a mutex, once per batch instead of once per transaction.
  prometheus::Histogram::BucketBoundaries latency_bounds_;
  std::vector<double> latency_counts_;

  std::atomic<RunnerState> state_{RunnerState::Starting};
  std::atomic<std::chrono::steady_clock::rep> last_beat_;  // steady clock ticks
  std::function<bool()> lease_held_view_;
  std::function<std::optional<VerifyResult>()> verify_reader_;
  prometheus::Gauge* verify_mismatched_;
  prometheus::Gauge* verify_time_;
  prometheus::Family<prometheus::Gauge>* verify_table_mismatched_;

  // Poll results and derived state.
  mutable std::mutex mutex_;
  std::optional<SlotPoll> last_poll_;
  bool poll_ok_ = false;
  std::deque<std::pair<std::chrono::system_clock::time_point, Lsn>> wal_samples_;
  mutable Lsn last_confirmed_seen_;
  mutable std::uint64_t read_during_replay_seen_ = 0;
  mutable std::uint64_t commits_unflushed_seen_ = 0;
  mutable std::chrono::system_clock::time_point confirmed_moved_at_{};
  mutable std::atomic<std::uint64_t> scrapes_{0};

  // Poller thread.
  std::mutex poll_mutex_;
  std::condition_variable poll_cv_;
  bool poll_stop_ = false;
  std::thread poller_;
};

}  // namespace cdcsync
