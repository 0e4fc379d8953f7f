#include "daemon/ops/probe.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <prometheus/client_metric.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "daemon/ops/metrics/process_collector.h"
#include "daemon/ops/probe_internal.h"
#include "decoders/pg.h"
#include "decoders/pg_link.h"

namespace cdcsync {
namespace {

using probe_detail::kInf;
using probe_detail::kNaN;
using probe_detail::kWalStatuses;
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

constexpr std::array kStates = {RunnerState::Starting,  RunnerState::Standby, RunnerState::Snapshot,
                                RunnerState::Streaming, RunnerState::Backoff, RunnerState::Stopped};

std::string_view op_name(ChangeOp op) {
  switch (op) {
    case ChangeOp::Insert:
      return "insert";
    case ChangeOp::Update:
      return "update";
    case ChangeOp::Delete:
      return "delete";
    case ChangeOp::Truncate:
      return "truncate";
    case ChangeOp::Message:
      return "message";
  }
  return "unknown";
}

// start, start * factor, ... (`count` bounds), multiplied step by step so the bounds, and the le labels
// written from them, stay what dashboards have always seen.
Histogram::BucketBoundaries exponential_buckets(double start, double factor, std::size_t count) {
  Histogram::BucketBoundaries bounds;
  for (double v = start; bounds.size() < count; v *= factor) bounds.push_back(v);
  return bounds;
}

double seconds_between(std::chrono::system_clock::time_point later,
                       std::chrono::system_clock::time_point earlier) {
  return std::max(0.0, std::chrono::duration<double>(later - earlier).count());
}

}  // namespace

// The probe's families: each registered in one registry with the pipeline as a constant label.
struct ProbeFamilies {
  prometheus::Registry& registry;
  Labels constant;
  Family<Counter>& counter(const char* name, const char* help) const {
    return BuildCounter().Name(name).Help(help).Labels(constant).Register(registry);
  }
  Family<Gauge>& gauge(const char* name, const char* help) const {
    return BuildGauge().Name(name).Help(help).Labels(constant).Register(registry);
  }
  Histogram& histogram(const char* name, const char* help, const Histogram::BucketBoundaries& bounds) const {
    return BuildHistogram().Name(name).Help(help).Labels(constant).Register(registry).Add({}, bounds);
  }
};

Probe::Probe(ProbeOptions options, const PipelineStatus& status)
    : options_(std::move(options)),
      status_(status),
      registry_(std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Throw)),
      process_(std::make_shared<metrics::ProcessCollector>()) {
  beat();
  const ProbeFamilies f{*registry_, {{"pipeline", options_.pipeline}}};
  build_apply_metrics(f);
  build_source_metrics(f);
  build_position_metrics(f);
  build_error_metrics(f);
  build_sink_metrics(f);
  build_health_metrics(f);
  message_counter_ = &change_events_->Add({{"table", "(none)"}, {"op", "message"}});
  counter_cache_.reserve(64);
  forecast_->Set(kInf);
  safe_wal_size_->Set(kInf);
  confirmed_moved_at_ = options_.now();
}

// Registers the pipeline: state, lease, changes, transactions, batches, latency and its stages.
void Probe::build_apply_metrics(const ProbeFamilies& f) {
  Labels build{{"version", options_.version}, {"revision", options_.revision}};
  if (!options_.unit.empty()) build.emplace("unit", options_.unit);
  f.gauge("cdcsync_build_info",
          "cdcsync version and source revision running this pipeline, and its systemd unit (always 1).")
      .Add(build)
      .Set(1);
  state_family_ = &f.gauge("cdcsync_state",
                           "1 for the runner's current state (starting, standby, snapshot, "
                           "streaming, backoff, stopped), 0 for the others.");
  for (RunnerState s : kStates) {
    state_family_->Add({{"state", std::string(name_of(s))}}).Set(s == RunnerState::Starting ? 1 : 0);
  }
  lease_held_ =
      &f.gauge("cdcsync_lease_held", "1 while this instance holds the pipeline's single-writer lease.")
           .Add({});
  change_events_ =
      &f.counter("cdcsync_change_events_total",
                 "Source changes applied to the target, by source table and op (insert, update, delete, "
                 "truncate, message).");
  transactions_ =
      &f.counter("cdcsync_transactions_total", "Source transactions applied to the target.").Add({});
  batches_ =
      &f.counter("cdcsync_batches_total", "Batches applied to the target (one target transaction each).")
           .Add({});
  batch_rows_ = &f.histogram("cdcsync_batch_rows", "Changes per applied batch.",
                             {1, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000});
  apply_duration_ = &f.histogram("cdcsync_apply_duration_seconds", "Time to apply one batch to the target.",
                                 exponential_buckets(0.0005, 2, 16));
  latency_bounds_ = exponential_buckets(0.001, 2, 20);
  latency_counts_.assign(latency_bounds_.size() + 1, 0.0);
  end_to_end_latency_ =
      &f.histogram("cdcsync_end_to_end_latency_seconds",
                   "From the source commit to the end of its apply in the target, per source transaction.",
                   latency_bounds_);
  stages_ = std::make_unique<StageMetrics>(f.registry, f.constant);
}

// Registers the source as the poller sees it: lag, the slot's WAL retention and its forecast.
void Probe::build_source_metrics(const ProbeFamilies& f) {
  lag_bytes_ = &f.gauge("cdcsync_replication_lag_bytes",
                        "Source pg_current_wal_lsn() minus the slot's confirmed_flush_lsn (polled).")
                    .Add({});
  lag_seconds_ = &f.gauge("cdcsync_replication_lag_seconds",
                          "Now minus the commit time of the last applied source transaction while work is "
                          "waiting; 0 when caught up.")
                      .Add({});
  retained_wal_ =
      &f.gauge("cdcsync_slot_retained_wal_bytes",
               "WAL the slot keeps on the source: pg_current_wal_lsn() minus restart_lsn (polled).")
           .Add({});
  safe_wal_size_ =
      &f.gauge("cdcsync_slot_safe_wal_size_bytes",
               "WAL that may still be written before max_slot_wal_keep_size invalidates the slot "
               "(pg_replication_slots.safe_wal_size); +Inf when the size is unlimited.")
           .Add({});
  wal_status_ =
      &f.gauge("cdcsync_slot_wal_status",
               "1 for the slot's wal_status (reserved, extended, unreserved, lost; missing: no such slot).");
  for (const char* s : kWalStatuses) wal_status_->Add({{"status", s}}).Set(0);
  wal_rate_ = &f.gauge("cdcsync_source_wal_rate_bytes_per_second",
                       "WAL generated by the source per second, over a sliding window (polled).")
                   .Add({});
  forecast_ =
      &f.gauge("cdcsync_slot_invalidation_forecast_seconds",
               "Seconds until max_slot_wal_keep_size would invalidate the slot if it stopped advancing now: "
               "safe_wal_size over the WAL generation rate; +Inf when unlimited or the source is idle.")
           .Add({});
  source_wal_lsn_ =
      &f.gauge("cdcsync_source_wal_lsn", "Source pg_current_wal_lsn() as a number (polled).").Add({});
}

// Registers the positions: checkpoint, confirmed, durable, received.
void Probe::build_position_metrics(const ProbeFamilies& f) {
  checkpoint_lsn_ =
      &f.gauge("cdcsync_checkpoint_lsn",
               "LSN of the checkpoint (mirrored to Redis and confirmed to the source), as a number.")
           .Add({});
  checkpoint_age_ =
      &f.gauge("cdcsync_checkpoint_age_seconds",
               "Seconds since the confirmed LSN last moved while work was waiting; 0 when caught up.")
           .Add({});
  confirmed_lsn_ =
      &f.gauge("cdcsync_confirmed_lsn", "LSN confirmed to the source as flushed, as a number.").Add({});
  durable_lsn_ =
      &f.gauge("cdcsync_durable_lsn", "LSN committed and flushed in the target, as a number.").Add({});
  commits_unflushed_ =
      &f.counter("cdcsync_batches_unflushed_total",
                 "Batches committed in the target without waiting for its WAL flush (catching up on "
                 "a backlog; batch.flush_interval_ms); a later flushed commit made them durable "
                 "before anything past them was confirmed.")
           .Add({});
  received_lsn_ = &f.gauge("cdcsync_received_lsn", "Source WAL position last received, as a number.").Add({});
}

// Registers errors, stops, reloads, the dead-letter stream and verify's last result.
void Probe::build_error_metrics(const ProbeFamilies& f) {
  reconnects_ = &f.counter("cdcsync_reconnects_total",
                           "Sessions restarted after a transient failure, by component and kind of failure.");
  errors_ = &f.counter("cdcsync_errors_total", "Errors by component and kind (transient and fatal).");
  fatal_ = &f.gauge("cdcsync_fatal",
                    "1 when the daemon stopped on a condition only an operator can fix, by reason.");
  config_reloads_ =
      &f.counter("cdcsync_config_reloads_total",
                 "Config reloads (SIGHUP) by result: applied, unchanged, restart_required, invalid.");
  for (const char* r : {"applied", "unchanged", "restart_required", "invalid"})
    config_reloads_->Add({{"result", r}});
  dead_lettered_ = &f.counter("cdcsync_dead_lettered_transactions_total",
                              "Source transactions parked in the dead-letter stream.")
                        .Add({});
  verify_mismatched_ =
      &f.gauge("cdcsync_verify_mismatched_rows",
               "Rows that differed between the source projection and the target (missing, extra or "
               "different) at the last cdcsync verify; 0 before any.")
           .Add({});
  verify_time_ = &f.gauge("cdcsync_verify_last_run_timestamp_seconds",
                          "Unix time the last cdcsync verify finished; 0 when none was recorded.")
                      .Add({});
  verify_table_mismatched_ =
      &f.gauge("cdcsync_verify_table_mismatched_rows",
               "Rows that differed in one target table at the last cdcsync verify that compared it (by "
               "table; no series before one did).");
  dead_letter_entries_ =
      &f.gauge("cdcsync_dead_letter_transactions",
               "Entries in the dead-letter stream cdcsync:{pipeline}:dlq (read when the daemon "
               "dead-letters and at most every 15 s while it applies).")
           .Add({});
}

// Registers the secondary sinks (Kafka, archive), the order-DB sink's findings and the initial snapshot.
void Probe::build_sink_metrics(const ProbeFamilies& f) {
  kafka_produce_latency_ =
      &f.histogram("cdcsync_kafka_produce_latency_seconds",
                   "From producing a record to Kafka to the broker's acknowledgement, per record.",
                   exponential_buckets(0.0005, 2, 16));
  kafka_in_flight_ = &f.gauge("cdcsync_kafka_in_flight_records",
                              "Records produced to Kafka and not yet acknowledged by the broker.")
                          .Add({});
  kafka_errors_ = &f.counter("cdcsync_kafka_errors_total",
                             "Kafka errors (delivery, commit, init), by librdkafka error name.");
  kafka_transactions_ =
      &f.counter("cdcsync_kafka_transactions_total",
                 "Kafka transactions ended, by outcome (committed, aborted); one per batch.");
  for (const char* outcome : {"committed", "aborted"}) kafka_transactions_->Add({{"outcome", outcome}});
  archive_entries_ =
      &f.counter("cdcsync_archive_entries_total",
                 "Event archive entries, by outcome: appended, skipped (appended before a restart), "
                 "trimmed (older than archive.max_age_hours).");
  for (const char* outcome : {"appended", "skipped", "trimmed"})
    archive_entries_->Add({{"outcome", outcome}});
  archive_errors_ =
      &f.counter("cdcsync_archive_errors_total", "Batches the event archive failed to append (then retried).")
           .Add({});
  schema_drift_ =
      &f.counter("cdcsync_schema_drift_columns_total",
                 "Distinct source columns not in the mapping (never forwarded), by source table.");
  rows_without_toast_ =
      &f.counter("cdcsync_target_rows_without_toast_total",
                 "Rows inserted into a target table with an unchanged-TOAST column left NULL: "
                 "the change did not carry the value and the target had no row to keep it "
                 "from (verify --repair copies it). Committed transactions only.");
  apply_fallbacks_ = &f.counter("cdcsync_target_apply_fallbacks_total",
                                "Batches whose set-based apply fell back, by target table and reason: "
                                "existing_key (a key inserted as new was there: applied again with upserts), "
                                "replay_in_order (a statement failed: replayed change by change).");
  snapshot_rows_ =
      &f.counter("cdcsync_snapshot_rows_total",
                 "Rows copied by the initial snapshot, by target table (read from the source; a part "
                 "copied again after a crash counts again).");
  snapshot_estimate_ =
      &f.gauge("cdcsync_snapshot_rows_estimate",
               "Rows the initial snapshot expects per target table: pg_class.reltuples, or a count "
               "when the table was never analyzed; the rows copied once the table is done.");
}

// Registers the queue, memory, spool and the health of the checkpoint store and the poller.
void Probe::build_health_metrics(const ProbeFamilies& f) {
  queue_depth_ =
      &f.gauge("cdcsync_queue_depth", "Source transactions waiting between receiver and applier.").Add({});
  memory_budget_ =
      &f.gauge("cdcsync_memory_budget_bytes",
               "memory.limit_bytes: the bound on decoded changes and encoders' buffers held at once.")
           .Add({});
  memory_held_ =
      &f.gauge("cdcsync_memory_held_bytes",
               "Bytes counted against memory.limit_bytes now: decoded changes between the source and "
               "the applied batch, COPY, Kafka and archive buffers.")
           .Add({});
  spool_bytes_ =
      &f.gauge("cdcsync_spool_bytes",
               "Bytes in the spool files of streamed transactions waiting for their commit, against "
               "spool.limit_bytes.")
           .Add({});
  read_during_replay_ =
      &f.counter("cdcsync_source_messages_read_during_replay_total",
                 "Messages of streamed transactions read into their spools while a committed "
                 "one was applied (source.streaming), instead of leaving the server waiting.")
           .Add({});
  checkpoint_store_up_ =
      &f.gauge("cdcsync_checkpoint_store_up", "1 while the Redis checkpoint store answers.").Add({});
  source_probe_up_ = &f.gauge("cdcsync_source_probe_up",
                              "1 when the last poll of the source (lag, slot WAL retention) succeeded.")
                          .Add({});
  last_poll_time_ = &f.gauge("cdcsync_source_probe_last_success_timestamp_seconds",
                             "Unix time of the last successful poll of the source.")
                         .Add({});
}

Probe::~Probe() {
  stop_polling();
}

RunnerHooks Probe::hooks(std::function<void(RunnerState)> on_state, std::function<void()> heartbeat) {
  RunnerHooks h;
  h.state_changed = [this, on_state = std::move(on_state)](RunnerState s) {
    state_changed(s);
    if (on_state) on_state(s);
  };
  h.heartbeat = [this, heartbeat = std::move(heartbeat)] {
    beat();
    if (heartbeat) heartbeat();
  };
  h.fatal = [this](const std::string& reason) { fatal(reason); };
  h.error = [this](const std::string& component, const std::string& kind) { error(component, kind); };
  h.batch_applied = [this](const Batch& b, const BatchTimings& t) { batch_applied(b, t); };
  h.dead_lettered = [this] { dead_lettered_->Increment(); };
  h.dead_letter_entries = [this](std::size_t n) { dead_letter_entries_->Set(static_cast<double>(n)); };
  h.kafka = kafka_observer();
  h.archive = archive_observer();
  h.schema_drift = [this](const std::string& table) { schema_drift_->Add({{"table", table}}).Increment(); };
  h.target = target_observer();
  h.snapshot_progress = [this](const LoadProgressView& v) { snapshot_progress(v); };
  return h;
}

void Probe::snapshot_progress(const LoadProgressView& v) {
  for (const TableProgress& t : v.tables) {
    std::uint64_t& seen = snapshot_rows_seen_[t.table];
    if (t.rows < seen) seen = 0;  // a new load of the table (a resumed one) counts from zero again
    // The series exists from the first view, at 0 for an empty table.
    prometheus::Counter& rows = snapshot_rows_->Add({{"table", t.table}});
    if (t.rows > seen) rows.Increment(static_cast<double>(t.rows - seen));
    seen = t.rows;
    const std::optional<std::uint64_t> estimate = t.done ? std::optional<std::uint64_t>(t.rows) : t.estimate;
    if (estimate) snapshot_estimate_->Add({{"table", t.table}}).Set(static_cast<double>(*estimate));
  }
}

ArchiveSinkObserver Probe::archive_observer() {
  ArchiveSinkObserver o;
  o.entries = [this](std::string_view outcome, std::uint64_t n) {
    archive_entries_->Add({{"outcome", std::string(outcome)}}).Increment(static_cast<double>(n));
  };
  o.error = [this] { archive_errors_->Increment(); };
  return o;
}

PostgresSinkObserver Probe::target_observer() {
  PostgresSinkObserver o;
  o.inserted_without_toast = [this](const std::string& table, std::uint64_t rows) {
    rows_without_toast_->Add({{"table", table}}).Increment(static_cast<double>(rows));
  };
  o.apply_fallback = [this](const std::string& table, std::string_view reason) {
    apply_fallbacks_->Add({{"table", table}, {"reason", std::string(reason)}}).Increment();
  };
  return o;
}

KafkaSinkObserver Probe::kafka_observer() {
  KafkaSinkObserver o;
  o.record_delivered = [this](std::chrono::microseconds us) {
    kafka_produce_latency_->Observe(std::chrono::duration<double>(us).count());
  };
  o.in_flight_changed = [this](std::int64_t n) { kafka_in_flight_->Increment(static_cast<double>(n)); };
  o.error = [this](std::string_view kind) { kafka_errors_->Add({{"kind", std::string(kind)}}).Increment(); };
  o.transaction_ended = [this](bool committed) {
    kafka_transactions_->Add({{"outcome", committed ? "committed" : "aborted"}}).Increment();
  };
  return o;
}

void Probe::state_changed(RunnerState s) {
  const RunnerState before = state_.exchange(s);
  state_family_->Add({{"state", std::string(name_of(before))}}).Set(0);
  state_family_->Add({{"state", std::string(name_of(s))}}).Set(1);
}

void Probe::error(const std::string& component, const std::string& kind) {
  const Labels labels{{"component", component}, {"kind", kind}};
  errors_->Add(labels).Increment();
  reconnects_->Add(labels).Increment();
}

void Probe::fatal(const std::string& reason) {
  fatal_->Add({{"reason", reason}}).Set(1);
  errors_->Add({{"component", "runner"}, {"kind", reason}}).Increment();
}

void Probe::config_reloaded(const std::string& result) {
  config_reloads_->Add({{"result", result}}).Increment();
}

Counter& Probe::counter_for(const RelationDef& relation, ChangeOp op) {
  const std::uint64_t key =
      (static_cast<std::uint64_t>(relation.id.value) << 8) | static_cast<std::uint8_t>(op);
  auto it = counter_cache_.find(key);
  // Same OID, same names: the common case, two string comparisons and no allocation. A renamed table (same
  // OID, new name) gets the counter of its new name.
  if (it != counter_cache_.end() && it->second.schema == relation.schema &&
      it->second.name == relation.name) {
    return *it->second.counter;
  }
  Counter& counter =
      change_events_->Add({{"table", relation.qualified_name()}, {"op", std::string(op_name(op))}});
  counter_cache_[key] = CachedCounter{relation.schema, relation.name, &counter};
  return counter;
}

void Probe::batch_applied(const Batch& batch, const BatchTimings& timings) {
  batch_applied(batch, timings.apply);
  stages_->record(
      batch, timings,
      std::chrono::duration_cast<std::chrono::microseconds>(options_.now().time_since_epoch()).count());
}

void Probe::batch_applied(const Batch& batch, std::chrono::steady_clock::duration apply_time) {
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.now().time_since_epoch()).count();
  std::size_t rows = 0;
  // Changes come in runs of one table and op (a chunk of a bulk load is thousands): count a run, then add it
  // to its counter once, instead of a lookup and an atomic add per change.
  const RelationDef* run_relation = nullptr;
  ChangeOp run_op = ChangeOp::Insert;
  std::uint64_t run_length = 0;
  std::uint64_t messages = 0;
  std::uint64_t transactions = 0;
  std::uint64_t latencies = 0;
  double latency_sum = 0;  // of this batch's latencies; one of them alone is observed directly
  const auto end_run = [&] {
    if (run_length > 0) counter_for(*run_relation, run_op).Increment(static_cast<double>(run_length));
    run_length = 0;
  };
  for (const Transaction& t : batch.transactions) {
    rows += t.changes.size();
    for (const Change& c : t.changes) {
      if (c.op == ChangeOp::Message) {
        ++messages;
      } else if (c.op == ChangeOp::Truncate) {
        for (const RelationPtr& rel : c.truncated) {
          if (rel) counter_for(*rel, ChangeOp::Truncate).Increment();
        }
      } else if (c.relation) {
        if (c.relation.get() != run_relation || c.op != run_op) {
          end_run();
          run_relation = c.relation.get();
          run_op = c.op;
        }
        ++run_length;
      }
    }
    if (t.last_chunk) {
      ++transactions;
      if (t.info.commit_time_us != 0) {
        const auto latency_us = now_us - pg_micros_to_unix_micros(t.info.commit_time_us);
        const double seconds = std::max<double>(0.0, static_cast<double>(latency_us) / 1e6);
        // The bucket Histogram::Observe would count it in: the first upper bound >= seconds.
        latency_counts_[static_cast<std::size_t>(
            std::lower_bound(latency_bounds_.begin(), latency_bounds_.end(), seconds) -
            latency_bounds_.begin())] += 1;
        latency_sum += seconds;
        ++latencies;
      }
    }
  }
  end_run();
  if (messages > 0) message_counter_->Increment(static_cast<double>(messages));
  if (transactions > 0) transactions_->Increment(static_cast<double>(transactions));
  if (latencies == 1) {
    end_to_end_latency_->Observe(latency_sum);  // cheaper than a pass over every bucket
  } else if (latencies > 1) {
    end_to_end_latency_->ObserveMultiple(latency_counts_, latency_sum);
  }
  if (latencies > 0) std::fill(latency_counts_.begin(), latency_counts_.end(), 0.0);
  batches_->Increment();
  batch_rows_->Observe(static_cast<double>(rows));
  apply_duration_->Observe(std::chrono::duration<double>(apply_time).count());
}

std::optional<std::int64_t> Probe::replication_lag_bytes() const {
  std::lock_guard lock(mutex_);
  if (!poll_ok_ || !last_poll_ || !last_poll_->slot_exists) return std::nullopt;
  return static_cast<std::int64_t>(lag_bytes_->Value());
}

std::optional<bool> Probe::behind() const {
  // Work waiting to be applied; or, while this instance is not streaming (reconnecting, starting), a slot
  // the source reports behind. Keepalive positions alone do not count: an idle slot is acknowledged within
  // about a second, and counting them would turn every quiet minute into lag. Not streaming and the slot not
  // polled: unknown.
  if (status_.queue_depth.load() > 0) return true;
  const RunnerState s = state_.load();
  if (s == RunnerState::Streaming || s == RunnerState::Standby) return false;
  std::lock_guard lock(mutex_);
  if (!poll_ok_) return std::nullopt;
  return last_poll_ && last_poll_->slot_exists && lag_bytes_->Value() > 0;
}

double Probe::replication_lag_seconds() const {
  const std::optional<bool> is_behind = behind();
  if (!is_behind) return kNaN;
  if (!*is_behind) return 0;
  const std::int64_t commit = status_.last_commit_time_us.load();
  if (commit == 0) return 0;  // nothing applied yet by this process: checkpoint age tells how long
  const auto now_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.now().time_since_epoch()).count();
  return std::max(0.0, static_cast<double>(now_us - pg_micros_to_unix_micros(commit)) / 1e6);
}

void Probe::refresh() const {
  const auto now = options_.now();
  const Lsn confirmed = status_.confirmed_lsn.load();
  received_lsn_->Set(static_cast<double>(status_.received_lsn.load().value()));
  durable_lsn_->Set(static_cast<double>(status_.durable_lsn.load().value()));
  confirmed_lsn_->Set(static_cast<double>(confirmed.value()));
  checkpoint_lsn_->Set(static_cast<double>(confirmed.value()));
  queue_depth_->Set(static_cast<double>(status_.queue_depth.load()));
  memory_budget_->Set(static_cast<double>(status_.memory.limit()));
  memory_held_->Set(static_cast<double>(status_.memory.held()));
  spool_bytes_->Set(static_cast<double>(status_.spool.bytes.load()));
  checkpoint_store_up_->Set(status_.checkpoint_store_ok.load() ? 1 : 0);
  lease_held_->Set(lease_held_view_ && lease_held_view_() ? 1 : 0);
  lag_seconds_->Set(replication_lag_seconds());

  const std::optional<bool> is_behind = behind();
  std::lock_guard lock(mutex_);
  const std::uint64_t read_during_replay = status_.messages_read_during_replay.load();
  read_during_replay_->Increment(static_cast<double>(read_during_replay - read_during_replay_seen_));
  read_during_replay_seen_ = read_during_replay;
  const std::uint64_t commits_unflushed = status_.commits_unflushed.load();
  commits_unflushed_->Increment(static_cast<double>(commits_unflushed - commits_unflushed_seen_));
  commits_unflushed_seen_ = commits_unflushed;
  if (confirmed != last_confirmed_seen_ || is_behind == false) {
    last_confirmed_seen_ = confirmed;
    confirmed_moved_at_ = now;
  }
  checkpoint_age_->Set(!is_behind ? kNaN : *is_behind ? seconds_between(now, confirmed_moved_at_) : 0.0);
}

std::vector<prometheus::MetricFamily> Probe::Collect() const {
  scrapes_.fetch_add(1);  // first: a scrape counted after a fatal() reads cdcsync_fatal
  refresh();
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (auto& family : process_->Collect()) {
    for (auto& m : family.metric) m.label.push_back({.name = "pipeline", .value = options_.pipeline});
    families.push_back(std::move(family));
  }
  // prometheus-cpp writes the constant labels first and a family's series in hash order: labels in name
  // order and series in label order, a scrape reads as it always has.
  for (auto& family : families) {
    for (auto& m : family.metric) std::sort(m.label.begin(), m.label.end());
    std::sort(family.metric.begin(), family.metric.end(),
              [](const auto& a, const auto& b) { return a.label < b.label; });
  }
  return families;
}

void Probe::beat() {
  last_beat_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

metrics::HealthStatus Probe::liveness() const {
  using std::chrono::milliseconds;
  const std::chrono::steady_clock::time_point last{
      std::chrono::steady_clock::duration(last_beat_.load(std::memory_order_relaxed))};
  const auto quiet = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - last);
  if (quiet <= options_.stall_limit) return {.ok = true, .reason = "alive"};
  if (const auto waiting = pg_link::in_flight(); !waiting.empty()) {
    const auto& f = waiting.front();
    return {.ok = true,
            .reason = fmt::format("alive: waiting {} ms for {} (reply deadline {} ms)", f.waited.count(),
                                  f.what, f.limit.count())};
  }
  return {.ok = false,
          .reason = fmt::format(
              "the main loop has not turned for {} ms and none of its commands is in flight", quiet.count())};
}

metrics::HealthStatus Probe::readiness() const {
  const RunnerState s = state_.load();
  if (s == RunnerState::Standby)
    return {.ok = true, .reason = "standing by: another instance holds the lease"};
  if (s != RunnerState::Streaming) return {.ok = false, .reason = "state " + std::string(name_of(s))};
  if (!status_.checkpoint_store_ok.load()) {
    return {.ok = false, .reason = "checkpoint store unreachable: lease state unknown"};
  }
  const double lag = replication_lag_seconds();
  const double bound = static_cast<double>(options_.ready_max_lag.count());
  if (lag > bound) {
    return {.ok = false, .reason = fmt::format("replication lag {:.0f} s over {:.0f} s", lag, bound)};
  }
  return {.ok = true, .reason = "streaming"};
}

void Probe::record_verify(const VerifyResult& result) {
  verify_mismatched_->Set(static_cast<double>(result.mismatched_rows));
  verify_time_->Set(static_cast<double>(result.unix_ms) / 1000.0);
  for (const auto& [table, rows] : result.tables) {
    verify_table_mismatched_->Add({{"table", table}}).Set(static_cast<double>(rows));
  }
}

}  // namespace cdcsync
