// Online copy of tables added to a streaming pipeline: which tables, the publication check, the copy thread.
#include "daemon/core/online_copy.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/core/initial_load.h"
#include "daemon/core/log_context.h"
#include "daemon/core/runner.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

LoadStateStore state_store_of(const config::Config& c) {
  return LoadStateStore{
      load_state_table(QualifiedName{c.target.progress_table.schema, c.target.progress_table.name}),
      c.pipeline};
}

std::string names_of(const std::vector<const TableMapping*>& tables) {
  std::string out;
  for (const auto* t : tables) out += (out.empty() ? "" : ", ") + t->target.str();
  return out;
}

}  // namespace

OnlineCopy::OnlineCopy(const config::Config& config, const Mapping& mapping, Lsn stream_from,
                       LoadObserver progress)
    : config_(config), progress_(std::move(progress)) {
  if (!config.target.enabled || config.kafka.enabled || config.archive.enabled ||
      config.snapshot.mode != config::SnapshotMode::Initial) {
    return;
  }
  const LoadStateStore store = state_store_of(config);
  PgConn target = pg_connect(target_conninfo(config), "the order database");
  if (!store.exists(target.get())) {
    spdlog::warn(
        "the order database has no {}: a table added to the mapping is streamed but its existing rows are "
        "not "
        "copied (create it: cdcsync target-ddl; or copy one with cdcsync resync --table)",
        store.table().str());
    return;
  }
  TableLoadStates states = store.read(target.get());
  if (states.empty()) {
    // A pipeline from before the load state: its tables were copied when it started.
    for (const auto& t : mapping.tables())
      store.write(target.get(), t.target.str(), {TablePhase::Streaming, stream_from, false, std::nullopt});
    spdlog::info(
        "load state: {} table(s) recorded as streaming from {} (copied before the load state existed)",
        mapping.tables().size(), stream_from.str());
    return;
  }
  for (const auto& t : mapping.tables()) {
    const auto it = states.find(t.target.str());
    if (it == states.end() || it->second.phase == TablePhase::Copying) tables_.push_back(&t);
    if (it != states.end()) states.erase(it);
  }
  for (const auto& [name, state] : states) {
    if (state.phase != TablePhase::Streaming) continue;
    store.write(target.get(), name, {TablePhase::Copying, stream_from, false, state.rows});
    const LogScope scope{name, stream_from};
    spdlog::warn(
        "table {} is no longer mapped: its changes are not applied from {}; its rows in the target are left "
        "as "
        "they are (mapping it again copies it again)",
        name, stream_from.str());
  }
  if (tables_.empty()) return;
  spdlog::info("online copy: {} never copied (or interrupted): copying while streaming goes on",
               names_of(tables_));
  thread_ = std::thread([this] { run(); });
}

OnlineCopy::~OnlineCopy() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool OnlineCopy::pause(std::chrono::milliseconds d) const {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!stop_ && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
  return !stop_;
}

std::vector<const TableMapping*> OnlineCopy::unpublished() {
  PgConn source = pg_connect(source_conninfo(config_), "the source");
  std::vector<const TableMapping*> out;
  for (const auto* t : tables_) {
    PgResult res = pg_exec_params(source.get(),
                                  "SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND "
                                  "schemaname = $2 AND tablename = $3",
                                  {config_.source.publication, t->source.schema, t->source.name},
                                  "reading the publication's tables");
    if (PQntuples(res.get()) != 0) continue;
    out.push_back(t);
    if (std::find(warned_.begin(), warned_.end(), t->target.str()) != warned_.end()) continue;
    warned_.push_back(t->target.str());
    std::string columns;
    for (const auto& c : t->columns) columns += (columns.empty() ? "" : ", ") + sql_name(c.source);
    const LogScope scope{t->target.str(), std::nullopt};
    spdlog::error(
        "online copy: {} is not in publication {}: its rows are not copied and its changes do not arrive. On "
        "the source, run: ALTER PUBLICATION {} ADD TABLE {} ({}); the copy starts when it is published",
        t->source.str(), config_.source.publication, sql_name(config_.source.publication), t->source.str(),
        columns);
  }
  return out;
}

void OnlineCopy::run() {
  while (!stop_) {
    try {
      if (!unpublished().empty()) {
        if (!pause(5s)) return;
        continue;
      }
      const TemporarySnapshot snapshot{source_conninfo(config_), "add"};
      const Lsn cp = snapshot.snapshot().point;
      spdlog::info("online copy: {} at {} while streaming goes on", names_of(tables_), cp.str());
      LoadOptions options = load_options(config_);
      options.concurrent = true;  // the stream writes these tables meanwhile
      options.state = state_store_of(config_);
      std::vector<TableLoad> loads;
      for (const auto* t : tables_) loads.push_back(TableLoad{.table = t});
      std::uint64_t rows = 0;
      for (const auto& r : load_tables(snapshot.snapshot(), loads, options, progress_, stop_))
        rows += r.source_rows;
      spdlog::info("online copy: {} copied at {} ({} rows); streaming keeps them from there",
                   names_of(tables_), cp.str(), rows);
      return;
    } catch (const LoadStopped&) {
      return;  // the tables stay `copying`: the next session copies them again
    } catch (const std::exception& e) {
      spdlog::warn("online copy of {} failed, trying again in 5 s at a new snapshot: {}", names_of(tables_),
                   e.what());
      if (!pause(5s)) return;
    }
  }
}

}  // namespace cdcsync
