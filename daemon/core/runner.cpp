// Runner: one streaming session after another (lease, writer lock, reconcile, snapshot, stream), backoff.
#include "daemon/core/runner.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <stop_token>
#include <thread>

#include "checkpoints/redis_store.h"
#include "daemon/core/bug_report.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/errors.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/initial_load.h"
#include "daemon/core/log_context.h"
#include "daemon/core/online_copy.h"
#include "daemon/core/pg_change_source.h"
#include "daemon/core/reconcile.h"
#include "daemon/core/secondary_sinks.h"
#include "decoders/byte_reader.h"
#include "decoders/pgoutput.h"
#include "decoders/replication_stream.h"
#include "sinks/fanout_sink.h"
#include "sinks/postgres_sink.h"
#include "sinks/target_ddl.h"

namespace cdcsync {
namespace {

using std::chrono::milliseconds;

// Changes one poll of the source hands out at most (and memory.limit_bytes / 8 bytes).
constexpr std::size_t kMaxChangesPerPoll = 20000;

std::string with_password(const std::string& conninfo, const config::SecretFile& file) {
  if (!file.configured()) return conninfo;
  return conninfo_with_password(conninfo, config::read_secret(file));
}

// Builds something from the configuration: a value it refuses (std::invalid_argument) is a configuration
// error the validator let through (exit 1), not the internal error a stray invalid_argument is while
// streaming.
template <class Make>
auto from_config(Make&& make) -> decltype(make()) {
  try {
    return make();
  } catch (const std::invalid_argument& e) {
    throw FatalError("config", exit_code::kError, e.what());
  }
}

// For the stop's log line: where the bytes of the message a source stream error names were saved.
std::string saved_evidence(const std::exception_ptr& error, const std::string& pipeline) {
  try {
    std::rethrow_exception(error);
  } catch (const SourceStreamError& e) {
    if (e.bytes().empty()) return {};
    try {
      const auto path = save_stream_evidence(e, pipeline);
      return fmt::format("; the message's {} bytes are in {} for a bug report (they may hold row values)",
                         e.bytes().size(), path.string());
    } catch (const std::exception& failed) {
      return fmt::format("; its bytes could not be saved for a bug report: {}", failed.what());
    }
  } catch (...) {
    // not a source stream error: nothing to save
  }
  return {};
}

// The pipeline's private spool directory (see spool.directory): never a predictable name under /tmp.
std::filesystem::path spool_dir(const config::Config& c) {
  if (!c.spool.directory.empty()) return c.spool.directory;
  const std::string leaf = "spool-" + c.pipeline;
  if (const char* state = std::getenv("STATE_DIRECTORY"); state != nullptr && *state != '\0') {
    const std::string_view first{state, std::strcspn(state, ":")};  // systemd StateDirectory=, the first
    return std::filesystem::path(first) / leaf;
  }
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg == '/') {
    return std::filesystem::path(xdg) / "cdcsync" / leaf;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return std::filesystem::path(home) / ".local" / "state" / "cdcsync" / leaf;
  }
  throw std::invalid_argument(
      "no private directory for the spool: set spool.directory, or run under systemd with StateDirectory= "
      "(or with HOME set)");
}

// The pipeline's bounds: the batch and queue byte bounds within their shares of the memory budget.
PipelineOptions pipeline_options(const config::Config& c, const MemoryShares& shares, MemoryBudget& memory) {
  PipelineOptions po;
  po.budget = &memory;
  po.batch_max_rows = static_cast<std::size_t>(c.batch.max_rows);
  po.batch_max_wait = c.batch.max_wait;
  po.catch_up_lag = c.batch.catch_up_lag;
  po.flush_interval = c.batch.flush_interval;
  po.queue_max_transactions = static_cast<std::size_t>(c.batch.queue_max_transactions);
  po.queue_max_bytes = std::min(static_cast<std::size_t>(c.batch.queue_max_bytes), shares.queue);
  po.batch_max_bytes = std::min(static_cast<std::size_t>(c.batch.max_bytes), shares.batch);
  po.status_interval = c.source.status_interval;
  po.lease_ttl = c.checkpoint.lease_ttl;
  po.lease_renew = c.checkpoint.renew;
  return po;
}

// Emits a non-transactional logical message on an ordinary source connection every `every`: when the
// published tables are quiet while other WAL grows (other tables, other databases), the message travels
// through the slot and lets the pipeline confirm past it, so the slot never pins WAL.
//
// Its connection has the source's reply deadline (`reply_timeout`: a heartbeat on a half-open link fails
// instead of hanging), and the session's end does not wait for it: the destructor cuts a heartbeat in
// flight off at once.
class Heartbeat {
 public:
  Heartbeat(std::string conninfo, milliseconds every, milliseconds reply_timeout) {
    if (every.count() <= 0) return;
    thread_ =
        std::jthread([this, conninfo = std::move(conninfo), every, reply_timeout](std::stop_token stop) {
          std::mutex mu;
          std::condition_variable_any cv;
          PgConn conn;
          bool warned = false;
          while (true) {
            {
              std::unique_lock lock(mu);
              if (cv.wait_for(lock, stop, every, [] { return false; }) || stop.stop_requested()) return;
            }
            try {
              if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
                current_ = nullptr;
                conn = pg_connect(conninfo, "the source (heartbeat)",
                                  {.reply_timeout = reply_timeout, .owner = pg_link::Owner::SideThread});
                current_ = conn.get();
                if (stop.stop_requested()) return;
              }
              pg_exec(conn.get(), "SELECT pg_catalog.pg_logical_emit_message(false, 'cdcsync_heartbeat', '')",
                      "emitting a heartbeat", PGRES_TUPLES_OK);
              warned = false;
            } catch (const std::exception& e) {
              current_ = nullptr;
              conn.reset();
              if (!warned)
                spdlog::warn("heartbeat failed (retrying every {} ms): {}", every.count(), e.what());
              warned = true;
            }
          }
        });
  }
  ~Heartbeat() {
    thread_.request_stop();
    if (PGconn* c = current_.load()) pg_link::abort(c);
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  std::atomic<PGconn*> current_{nullptr};  // the thread's connection, for the destructor to cut off
  std::jthread thread_;                    // last: joined first
};

}  // namespace

std::string_view name_of(RunnerState s) {
  switch (s) {
    case RunnerState::Starting:
      return "starting";
    case RunnerState::Standby:
      return "standby";
    case RunnerState::Snapshot:
      return "snapshot";
    case RunnerState::Streaming:
      return "streaming";
    case RunnerState::Backoff:
      return "backoff";
    case RunnerState::Stopped:
      return "stopped";
  }
  return "unknown";
}

Mapping mapping_from_config(const config::Config& c) {
  std::vector<TableMapping> tables;
  for (const auto& t : c.tables) {
    TableMapping m;
    m.source = QualifiedName{t.source.schema, t.source.name};
    m.target = QualifiedName{t.target.schema, t.target.name};
    m.key = t.key;
    for (const auto& col : t.columns) {
      ColumnMapping cm{col.source, col.target, Transform::copy()};
      if (col.transform) {
        std::visit(
            [&](const auto& tr) {
              using T = std::decay_t<decltype(tr)>;
              if constexpr (std::is_same_v<T, config::HmacSha256>) {
                cm.transform = Transform::hmac_sha256(config::read_secret(tr.key_file));
              } else if constexpr (std::is_same_v<T, config::Mask>) {
                cm.transform = Transform::mask(static_cast<std::size_t>(tr.keep_last));
              } else {
                cm.transform = Transform::constant(tr.value);
              }
            },
            *col.transform);
      }
      m.columns.push_back(std::move(cm));
    }
    m.deletes = t.deletes;
    m.truncates = t.truncate;
    m.lsn_column = t.lsn_column;
    m.tombstone_column = t.tombstone_column;
    tables.push_back(std::move(m));
  }
  return Mapping{std::move(tables)};
}

std::string source_conninfo(const config::Config& c) {
  // row_security=off: a row-level security policy on a published table stops the copy loudly instead of
  // filtering rows silently.
  return with_password(c.source.conninfo, c.source.password_file);
}

std::string target_conninfo(const config::Config& c) {
  return with_password(c.target.conninfo, c.target.password_file);
}

PostgresSinkOptions target_sink_options(const config::Config& c) {
  PostgresSinkOptions o;
  o.conninfo = target_conninfo(c);
  o.pipeline = c.pipeline;
  o.progress_table = QualifiedName{c.target.progress_table.schema, c.target.progress_table.name};
  o.statement_timeout = c.target.statement_timeout;
  o.toast_compression = c.target.toast_compression;
  o.copy_format = c.target.copy_format;
  o.one_trip_max_changes = static_cast<std::size_t>(c.target.one_trip_max_changes);
  return o;
}

LeaseToken make_lease_token() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  const auto r = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  return LeaseToken{fmt::format("{}:{}:{:016x}", host, getpid(), r)};
}

Runner::Runner(const config::Config& config, PipelineStatus& status, RunnerHooks hooks)
    : config_(config),
      status_(status),
      hooks_(std::move(hooks)),
      mapping_(mapping_from_config(config)),
      token_(make_lease_token()) {
  status_.memory.set_limit(static_cast<std::size_t>(config.memory.limit_bytes));
  status_.spool.limit = static_cast<std::uint64_t>(config.spool.limit_bytes);
}

void Runner::set_state(RunnerState s) {
  if (state_.exchange(s) != s) {
    spdlog::info("state: {}", name_of(s));
    if (hooks_.state_changed) hooks_.state_changed(s);
  }
}

void Runner::sleep_for(milliseconds d, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop && std::chrono::steady_clock::now() < until) {
    if (hooks_.heartbeat) hooks_.heartbeat();
    std::this_thread::sleep_for(std::min(milliseconds(100), d));
  }
}

void Runner::reload(config::Config next, Mapping mapping) {
  const std::lock_guard lock(pending_mutex_);
  pending_.emplace(std::move(next), std::move(mapping));
  session_stop_ = true;
}

void Runner::take_reload(const std::atomic<bool>& stop) {
  const std::lock_guard lock(pending_mutex_);
  if (pending_) {
    config_ = std::move(pending_->first);
    mapping_ = std::move(pending_->second);
    pending_.reset();
    spdlog::info("reload: a new session starts with the reloaded config ({} table(s))",
                 config_.tables.size());
  }
  session_stop_ = stop.load();
}

int Runner::run(const std::atomic<bool>& stop) {
  std::mt19937_64 rng{std::random_device{}()};
  milliseconds backoff = config_.source.reconnect_min;
  std::string last_standby_reason;
  // The session stops on the process's stop too: mirrored here, as the flag is main's.
  const std::jthread mirror_stop([&](const std::stop_token& done) {
    while (!done.stop_requested()) {
      if (stop) session_stop_ = true;
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  while (!stop) {
    take_reload(stop);
    const auto session_started = std::chrono::steady_clock::now();
    const auto durable_before = status_.durable_lsn.load();
    try {
      session(session_stop_);
      if (stop) break;  // stopped on request
      continue;         // a reload ended the session: the next one takes it
    } catch (...) {
      lease_held_ = false;
      const Classified c = classify(std::current_exception());
      if (c.error_class == ErrorClass::Standby) {
        if (last_standby_reason != c.message) spdlog::info("standing by: {}", c.message);
        last_standby_reason = c.message;
        set_state(RunnerState::Standby);
        sleep_for(config_.checkpoint.renew, session_stop_);
        continue;
      }
      if (c.error_class != ErrorClass::Transient) return stop_for(c, std::current_exception());
      if (hooks_.error) hooks_.error(c.component, c.reason);
      // Back off further while sessions fail without applying anything (a target that cannot write: disk
      // full, a lock); start from the minimum again after a session that made progress or lasted.
      if (status_.durable_lsn.load() != durable_before ||
          std::chrono::steady_clock::now() - session_started >= config_.source.reconnect_max) {
        backoff = config_.source.reconnect_min;
      }
      std::uniform_int_distribution<long> jitter(backoff.count() / 2, backoff.count());
      const milliseconds wait{jitter(rng)};
      spdlog::warn("{} failed, reconnecting in {} ms: {}", c.component, wait.count(), c.message);
      if (hooks_.last_error) hooks_.last_error(fmt::format("{} failed: {}", c.component, c.message));
      set_state(RunnerState::Backoff);
      sleep_for(wait, session_stop_);
      backoff = std::min(config_.source.reconnect_max, backoff * 2);
    }
  }
  set_state(RunnerState::Stopped);
  return exit_code::kOk;
}

int Runner::stop_for(const Classified& c, const std::exception_ptr& error) {
  const std::string evidence =
      c.error_class == ErrorClass::SourceStream ? saved_evidence(error, config_.pipeline) : std::string();
  std::optional<LogScope> scope;  // a refused change: its table and LSN in the JSON log line
  try {
    std::rethrow_exception(error);
  } catch (const PermanentError& e) {
    scope.emplace(e.table(), e.lsn());
  } catch (...) {
    // the other classes name no table
  }
  spdlog::critical("stopping: {}{}", c.message, evidence);
  if (hooks_.last_error) hooks_.last_error("stopped: " + c.message);
  if (hooks_.fatal) hooks_.fatal(c.reason);
  set_state(RunnerState::Stopped);
  return c.exit_code;
}

void Runner::session(const std::atomic<bool>& stop) {
  set_state(RunnerState::Starting);
  RedisCheckpointStore store = from_config([&] {
    RedisStoreOptions store_options;
    store_options.connection.url = RedisUrl::parse(config_.checkpoint.redis);
    if (config_.checkpoint.password_file.configured()) {
      store_options.connection.url.password = config::read_secret(config_.checkpoint.password_file);
    }
    store_options.pipeline = config_.pipeline;
    return RedisCheckpointStore{store_options};
  });

  // 1. The lease (Redis), then the writer lock (target): two instances never write at once.
  bool checkpoint_known = true;
  lease_taken_at_.reset();
  try {
    const auto asked = std::chrono::steady_clock::now();
    if (!store.acquire_lease(token_, config_.checkpoint.lease_ttl)) {
      const auto holder = store.lease_holder();
      throw LeaseLost("the pipeline's lease is held by " + holder.value_or("another instance"));
    }
    lease_taken_at_ = asked;
  } catch (const CheckpointUnavailable& e) {
    if (config_.checkpoint.required) throw;
    checkpoint_known = false;
    spdlog::warn(
        "checkpoint store unreachable at start ({}): the target's writer lock alone keeps a single "
        "writer, and nothing is confirmed to the source until the store is back",
        e.what());
  }
  struct Release {
    CheckpointStore& store;
    const LeaseToken& token;
    ~Release() {
      try {
        store.release_lease(token);
      } catch (...) {
        // the lease lapses by itself
      }
    }
  } release{store, token_};

  resolve_source_tables();

  if (!config_.target.enabled) {
    // Kafka only: no order DB, no writer lock; the transactional.id fences a second writer instead.
    const std::unique_ptr<KafkaSink> kafka = from_config([&] {
      auto k = make_kafka_sink(config_, mapping_, hooks_.kafka, &status_.memory);
      k->connect();
      return k;
    });
    lease_held_ = true;
    stream_to(*kafka, store, checkpoint_known, stop);
    return;
  }
  PostgresSinkOptions sink_options = target_sink_options(config_);
  if (hooks_.schema_drift) {
    sink_options.on_drift = [drift = hooks_.schema_drift](const std::string& table, const std::string&) {
      drift(table);
    };
  }
  sink_options.observer = hooks_.target;
  sink_options.memory = &status_.memory;
  PostgresSink target_sink = from_config([&] { return PostgresSink{mapping_, sink_options}; });
  target_sink.connect();
  DeadLetterWiring dead_letters = from_config([&] {
    return DeadLetterWiring{config_,
                            mapping_,
                            target_sink,
                            {[this](const DeadLetter&) {
                               if (hooks_.dead_lettered) hooks_.dead_lettered();
                             },
                             hooks_.dead_letter_entries}};
  });
  const std::vector<std::unique_ptr<Sink>> secondaries = from_config(
      [&] { return make_secondary_sinks(config_, mapping_, hooks_.kafka, hooks_.archive, &status_.memory); });
  std::vector<Sink*> secondary_ptrs;
  for (const auto& s : secondaries) secondary_ptrs.push_back(s.get());
  FanoutSink sink{dead_letters.sink(), std::move(secondary_ptrs)};
  lease_held_ = true;
  stream_to(sink, store, checkpoint_known, stop);
}

void Runner::resolve_source_tables() {
  // Before any sink, slot or row: a snapshot would copy what no change ever carries after it, and a table
  // renamed while the daemon was stopped would have its later changes dropped as unmapped.
  auto conn = pg_connect(source_conninfo(config_), "the source");
  std::string problems;
  std::vector<std::pair<std::size_t, RelationId>> oids;
  for (std::size_t i = 0; i < mapping_.tables().size(); ++i) {
    const TableMapping& t = mapping_.tables()[i];
    const std::string where = config_.file.string() + ": tables[" + std::to_string(i) + "]";
    auto r = pg_exec_params(conn.get(), "SELECT pg_catalog.to_regclass($1)::oid::bigint", {t.source.quoted()},
                            "looking up source table " + t.source.str());
    if (PQgetisnull(r.get(), 0, 0)) {
      problems += "\n  " + where + ".source: " + t.source.str() +
                  " does not exist on the source (renamed or dropped while the daemon was stopped?); fix: "
                  "set it to the table's name now, or remove the entry";
      continue;
    }
    oids.emplace_back(i, RelationId{static_cast<std::uint32_t>(std::stoull(PQgetvalue(r.get(), 0, 0)))});
    for (const auto& p : source_stream_problems(conn.get(), t, config_.source.publication)) {
      const bool column = p.kind == SourceStreamProblem::Kind::Column;
      problems += "\n  " + where +
                  (column ? ".columns (" + t.source.str() + "): " : " (" + t.source.str() + "): ") +
                  p.problem + "; fix: " + p.fix;
    }
  }
  if (!problems.empty()) {
    throw FatalError("undeliverable_source", exit_code::kError,
                     "mapped source tables or columns the replication stream cannot deliver:" + problems);
  }
  for (const auto& [index, oid] : oids) mapping_.set_source_oid(index, oid);
}

void Runner::stream_to(Sink& sink, CheckpointStore& store, bool checkpoint_known,
                       const std::atomic<bool>& stop) {
  // 2. The source, and the three positions.
  const std::string source = source_conninfo(config_);
  ReplicationStream stream{source, config_.source.receive_timeout};
  const SystemIdentity identity = stream.identify_system();
  StartupFacts facts;
  facts.slot_name = config_.source.slot;
  facts.slot = stream.slot_state(config_.source.slot);
  facts.progress = sink.load_progress();
  facts.create_slot = config_.source.create_slot;
  facts.snapshot = config_.snapshot.mode;
  facts.checkpoint_known = checkpoint_known;
  if (checkpoint_known) {
    try {
      facts.checkpoint = store.load();
    } catch (const CheckpointUnavailable&) {
      facts.checkpoint_known = false;
    }
  }
  InitialLoad load{config_, mapping_, {hooks_.snapshot_progress, hooks_.heartbeat}};
  if (facts.slot && !facts.progress && facts.snapshot == SnapshotMode::Initial) {
    facts.load_interrupted = load.interrupted();
  }
  if (facts.slot && facts.slot->active) {
    throw LeaseLost("replication slot \"" + config_.source.slot + "\" is in use by PID " +
                    std::to_string(facts.slot->active_pid));
  }
  StartPlan plan = reconcile(facts);
  for (const auto& w : plan.warnings) spdlog::warn("{}", w);
  spdlog::info("source system {} timeline {} at {}; slot {}; target progress {}; checkpoint {}",
               identity.system_id, identity.timeline, identity.wal_position.str(),
               facts.slot ? facts.slot->confirmed_flush_lsn.str() : std::string("(none)"),
               facts.progress ? facts.progress->end_lsn.str() : std::string("(none)"),
               facts.checkpoint ? facts.checkpoint->lsn.str()
                                : std::string(checkpoint_known ? "(none)" : "(unknown)"));

  if (plan.action != StartAction::Stream) {
    if (plan.action == StartAction::RecreateSlot) {
      stream.drop_slot(config_.source.slot);
      spdlog::warn("dropped slot {} to start the initial snapshot over", config_.source.slot);
    }
    const bool copy = facts.snapshot == SnapshotMode::Initial;
    std::optional<ExportedSnapshot> exported;  // none when resuming: the load takes a snapshot of its own
    Lsn start = facts.slot ? facts.slot->confirmed_flush_lsn : Lsn{};
    if (plan.action != StartAction::ResumeSnapshot) {
      const CreatedSlot created =
          stream.create_slot(config_.source.slot, config_.source.temporary_slot, copy, /*two_phase=*/false);
      spdlog::info("created slot {} at {}", created.name, created.consistent_point.str());
      exported = ExportedSnapshot{created.snapshot_name, created.consistent_point};
      start = created.consistent_point;
    }
    if (copy) {
      set_state(RunnerState::Snapshot);
      const auto rows = load.run(exported, start, sink, stop);
      if (!rows) return;  // stopped on request; the next start resumes the load
      spdlog::info("snapshot complete: {} rows at {}", *rows, start.str());
    } else {
      sink.record_ack(start);
    }
    plan.start_lsn = start;
    plan.confirmed = start;
    plan.repair_checkpoint = start;
  }
  if (plan.repair_checkpoint && checkpoint_known) {
    try {
      store.advance(token_, *plan.repair_checkpoint);
    } catch (const CheckpointUnavailable& e) {
      spdlog::warn("could not repair the checkpoint yet: {}", e.what());
    }
  }

  // 3. Stream.
  StreamOptions so;
  so.proto_version = static_cast<int>(config_.source.proto_version);
  so.publications = {config_.source.publication};
  so.streaming = config_.source.streaming == StreamingMode::On;
  so.messages = true;
  so.min_read_interval = std::chrono::microseconds(config_.source.min_read_interval_us);
  stream.start(config_.source.slot, plan.start_lsn, so);
  spdlog::info("streaming slot {} from {}", config_.source.slot, plan.start_lsn.str());

  // One memory budget for everything that holds decoded changes; its shares bound each holder.
  const MemoryShares shares = MemoryShares::of(status_.memory.limit());
  AssemblerOptions ao;
  ao.protocol.version = so.proto_version;
  ao.protocol.streaming = so.streaming ? StreamingMode::On : StreamingMode::Off;
  ao.max_changes_per_chunk = static_cast<std::size_t>(config_.batch.max_txn_chunk_rows);
  ao.max_chunk_bytes = shares.chunk;
  ao.spool_dir = spool_dir(config_);
  ao.spool_usage = &status_.spool;
  PgChangeSource changes = from_config([&] {
    return PgChangeSource{stream,         ao, config_.source.receive_timeout, kMaxChangesPerPoll, shares.poll,
                          &status_.memory};
  });

  const PipelineOptions po = pipeline_options(config_, shares, status_.memory);
  Pipeline pipeline{changes, sink, store, token_, po, status_, hooks_.batch_applied};
  pipeline.set_tick(hooks_.heartbeat);
  if (lease_taken_at_) pipeline.set_lease(*lease_taken_at_);
  status_.checkpoint_store_ok = checkpoint_known;
  Heartbeat heartbeat{source, config_.source.heartbeat_interval, config_.source.receive_timeout};
  // Tables mapped but never copied (added by a reload or a restart): copied beside the stream.
  const OnlineCopy online_copy{config_, mapping_, plan.start_lsn, hooks_.snapshot_progress};
  set_state(RunnerState::Streaming);
  pipeline.run(stop, plan.confirmed);
  stream.finish();
  spdlog::info("stopped at {} (confirmed to the source)", status_.confirmed_lsn.load().str());
}

}  // namespace cdcsync
