// The initial snapshot of `cdcsync run`: the bulk loader over every mapped table not already copied, or the
// sink chain when other sinks take the rows as change events; then the progress row.
#include "daemon/core/initial_load.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <random>

#include "daemon/core/log_context.h"
#include "daemon/core/runner.h"
#include "daemon/core/snapshot.h"

namespace cdcsync {
namespace {

LoadStateStore state_store(const config::Config& c) {
  return LoadStateStore{
      load_state_table(QualifiedName{c.target.progress_table.schema, c.target.progress_table.name}),
      c.pipeline};
}

}  // namespace

TemporarySnapshot::TemporarySnapshot(const std::string& conninfo, std::string_view purpose)
    : stream_(conninfo) {
  std::random_device rd;
  const std::string slot = "cdcsync_" + std::string(purpose) + "_" + std::to_string(getpid()) + "_" +
                           std::to_string(rd() % 1000000);
  const CreatedSlot created = stream_.create_slot(slot, /*temporary=*/true, /*export_snapshot=*/true, false);
  snapshot_ = ExportedSnapshot{created.snapshot_name, created.consistent_point};
}

LoadOptions load_options(const config::Config& c) {
  LoadOptions o;
  o.source_conninfo = source_conninfo(c);
  o.target_conninfo = target_conninfo(c);
  o.sessions = static_cast<int>(c.snapshot.parallel);
  o.truncate = c.snapshot.truncate;
  o.rebuild_indexes = c.snapshot.rebuild_indexes;
  o.copy_format = c.target.copy_format;
  o.toast_compression = c.target.toast_compression;
  o.stall_timeout = c.snapshot.stall_timeout;
  return o;
}

InitialLoad::InitialLoad(const config::Config& config, const Mapping& mapping, InitialLoadHooks hooks)
    : config_(config), mapping_(mapping), hooks_(std::move(hooks)) {}

bool InitialLoad::bulk() const {
  return config_.target.enabled && !config_.kafka.enabled && !config_.archive.enabled;
}

bool InitialLoad::interrupted() const {
  if (!bulk()) return false;
  PgConn target = pg_connect(target_conninfo(config_), "the order database");
  return !state_store(config_).read(target.get()).empty();
}

std::optional<std::uint64_t> InitialLoad::run(const std::optional<ExportedSnapshot>& slot_snapshot,
                                              Lsn stream_from, Sink& sink, const std::atomic<bool>& stop) {
  std::optional<TemporarySnapshot> temporary;
  const auto snapshot = [&]() -> const ExportedSnapshot& {
    if (slot_snapshot) return *slot_snapshot;
    if (!temporary) temporary.emplace(source_conninfo(config_), "load");
    return temporary->snapshot();
  };
  std::uint64_t rows = 0;
  if (!bulk()) return copy_through_sink(snapshot(), stream_from, sink);
  {
    LoadOptions options = load_options(config_);
    options.state = state_store(config_);
    options.nothing_streamed = true;
    TableLoadStates states;
    {
      PgConn target = pg_connect(target_conninfo(config_), "the order database");
      states = options.state->read(target.get());
      std::vector<std::string> mapped;
      for (const auto& t : mapping_.tables()) mapped.push_back(t.target.str());
      if (!states.empty()) options.state->forget_others(target.get(), mapped);
    }
    std::vector<TableLoad> loads;
    for (const auto& t : mapping_.tables()) {
      const auto it = states.find(t.target.str());
      // Copied at or after the stream's start: the stream, with the table's floor, goes on from its copy.
      if (it != states.end() && it->second.phase == TablePhase::Streaming &&
          it->second.snapshot_lsn >= stream_from) {
        const LogScope scope{t.target.str(), it->second.snapshot_lsn};
        spdlog::info("snapshot: {} was copied at {} before the interruption: kept", t.target.str(),
                     it->second.snapshot_lsn.str());
        rows += it->second.rows.value_or(0);
        continue;
      }
      loads.push_back(TableLoad{.table = &t});
    }
    if (!loads.empty()) {
      const ExportedSnapshot& at = snapshot();
      if (!slot_snapshot) {
        spdlog::info("snapshot: resuming an interrupted load at {} (the stream starts at {})", at.point.str(),
                     stream_from.str());
      }
      try {
        const auto observer = [this](const LoadProgressView& v) {
          if (hooks_.progress) hooks_.progress(v);
          if (hooks_.heartbeat) hooks_.heartbeat();
        };
        for (const auto& r : load_tables(at, loads, options, observer, stop)) rows += r.source_rows;
      } catch (const LoadStopped&) {
        return std::nullopt;
      }
    }
  }
  // The progress row at the stream's start: the load is complete.
  Batch done;
  Transaction& t = done.transactions.emplace_back();
  t.info.final_lsn = stream_from;
  t.info.end_lsn = stream_from;
  t.info.snapshot = true;
  sink.apply(done);
  sink.load_progress();  // the sink picks up each table's floor
  return rows;
}

// One session, the rows as change events through the sink chain, one target transaction (snapshot.h).
std::uint64_t InitialLoad::copy_through_sink(const ExportedSnapshot& snapshot, Lsn stream_from, Sink& sink) {
  std::vector<SnapshotTable> tables;
  for (const auto& t : mapping_.tables()) {
    SnapshotTable st{t.source.schema, t.source.name, {}, t.key};
    for (const auto& c : t.columns) st.columns.push_back(c.source);
    tables.push_back(std::move(st));
  }
  const auto started = std::chrono::steady_clock::now();
  LoadProgressView view;
  return copy_snapshot(
      source_conninfo(config_), snapshot.name, snapshot.point, tables,
      static_cast<std::size_t>(config_.batch.max_txn_chunk_rows),
      [&](Transaction&& t) {
        // Its last chunk commits the copy with the progress row at the stream's start.
        if (t.last_chunk) t.info.end_lsn = stream_from;
        Batch b;
        b.transactions.push_back(std::move(t));
        sink.apply(b);
        if (hooks_.heartbeat) hooks_.heartbeat();
      },
      [&](const std::string& table, std::uint64_t n) {
        if (view.tables.empty() || view.tables.back().table != table) view.tables.push_back({.table = table});
        view.tables.back().rows = n;
        view.elapsed = std::chrono::steady_clock::now() - started;
        if (hooks_.progress) hooks_.progress(view);
      });
}

}  // namespace cdcsync
