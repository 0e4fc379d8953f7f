// The bulk loader's coordinator: plans each table (its rows' format, its parts, how it is written), runs the
// workers over the queue of parts, finishes each table once all its parts have committed (the sweep, the
// state), and reports progress.
#include "daemon/core/bulk_load.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "daemon/core/bulk_load_internal.h"
#include "daemon/core/bulk_parts.h"
#include "daemon/core/log_context.h"
#include "sinks/postgres_sink.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;
constexpr auto kTick = 200ms;

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Counts a never-analyzed table's rows on its own connection, so the estimate comes without holding up the
// copy; stopped (its socket shut down) when the load ends first.
class RowCounter {
 public:
  RowCounter(std::string conninfo, std::vector<TablePlan*> tables) {
    if (tables.empty()) return;
    thread_ = std::thread([this, conninfo = std::move(conninfo), tables = std::move(tables)] {
      try {
        PgConn conn = connect_load_session(conninfo, "the source", "-crow_security=off");
        set(conn.get());
        struct Forget {  // before the connection goes
          RowCounter* counter;
          ~Forget() { counter->set(nullptr); }
        } forget{this};
        for (TablePlan* t : tables) {
          if (done_) break;
          auto res = pg_exec(conn.get(), ("SELECT count(*) FROM " + t->source).c_str(), "counting rows",
                             PGRES_TUPLES_OK);
          t->estimate = std::stoll(PQgetvalue(res.get(), 0, 0));
        }
      } catch (const std::exception& e) {
        if (!done_) spdlog::debug("snapshot: counting rows for the estimate failed: {}", e.what());
      }
    });
  }
  ~RowCounter() {
    done_ = true;
    {
      std::lock_guard lock(mu_);
      shut_down(conn_);
    }
    if (thread_.joinable()) thread_.join();
  }
  RowCounter(const RowCounter&) = delete;
  RowCounter& operator=(const RowCounter&) = delete;

 private:
  void set(PGconn* conn) {
    std::lock_guard lock(mu_);
    conn_ = conn;
    if (conn_ != nullptr && done_) shut_down(conn_);
  }

  std::atomic<bool> done_{false};
  std::mutex mu_;
  PGconn* conn_ = nullptr;  // while counting
  std::thread thread_;
};

class Coordinator {
 public:
  Coordinator(const ExportedSnapshot& snapshot, const std::vector<TableLoad>& tables,
              const LoadOptions& options)
      : snapshot_(snapshot),
        loads_(tables),
        options_(options),
        target_deadline_(options.stall_timeout, "the order database (snapshot)") {}
  ~Coordinator() { target_deadline_.watch(-1); }

  std::vector<TableLoadResult> run(const LoadObserver& observer, const std::atomic<bool>& stop);

 private:
  void connect();
  void plan(std::size_t i, const TableLoadStates& states);
  LoadMethod choose_method(TablePlan& p, const TableLoadStates& states, bool& started_empty);
  void statements(TablePlan& p);
  void defer_indexes(TablePlan& p, const TableLoadStates& states);
  void build_indexes(TablePlan& p);
  void finish(TablePlan& p);
  LoadProgressView view(bool finished) const;
  [[noreturn]] void fail(std::exception_ptr error, std::vector<std::unique_ptr<LoadWorker>>& workers,
                         std::vector<std::thread>& threads);

  const ExportedSnapshot& snapshot_;
  const std::vector<TableLoad>& loads_;
  const LoadOptions& options_;
  PgConn source_;                  // the catalog, outside the snapshot
  PgConn target_;                  // planning, clearing, sweeps and the state
  ReplyDeadline target_deadline_;  // its short statements (not a clearing or a sweep)
  std::string target_settings_;
  std::vector<std::unique_ptr<TablePlan>> plans_;
  std::vector<std::uint64_t> pages_;
  LoadQueue queue_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

void Coordinator::connect() {
  source_ = connect_load_session(options_.source_conninfo, "the source", "-crow_security=off");
  target_ = connect_load_session(options_.target_conninfo, "the order database", "-csearch_path=");
  target_deadline_.watch(PQsocket(target_.get()));
  // What moves a table to `streaming` is durable, and with it every part committed before it.
  auto sc = pg_exec(target_.get(), "SELECT pg_catalog.current_setting('synchronous_commit')",
                    "reading synchronous_commit", PGRES_TUPLES_OK);
  const std::string setting = PQgetvalue(sc.get(), 0, 0);
  if (session_synchronous_commit(setting) != setting) {
    pg_exec(target_.get(), ("SET synchronous_commit = " + session_synchronous_commit(setting)).c_str(),
            "setting synchronous_commit");
  }
  PgResult toast{PQexec(target_.get(), kToastCompressionSettingsQuery)};
  if (toast && PQresultStatus(toast.get()) == PGRES_TUPLES_OK && PQntuples(toast.get()) == 1) {
    const auto choice = choose_toast_compression(options_.toast_compression, PQgetvalue(toast.get(), 0, 0),
                                                 PQgetvalue(toast.get(), 0, 1),
                                                 std::string_view(PQgetvalue(toast.get(), 0, 2)) == "t");
    target_settings_ = "-cdefault_toast_compression=" + choice.method;
  }
}

// direct into an empty table, cleared when it holds only an earlier attempt's rows, staged otherwise.
LoadMethod Coordinator::choose_method(TablePlan& p, const TableLoadStates& states, bool& started_empty) {
  auto facts = pg_exec_params(target_.get(),
                              "SELECT NOT EXISTS (SELECT 1 FROM " + p.target +
                                  "), c.relkind IN ('r', 'p') AND NOT c.relrowsecurity, c.relkind = 'r' FROM "
                                  "pg_catalog.pg_class c WHERE c.oid = $1::regclass",
                              {p.target}, "looking at " + p.mapping->target.str());
  const bool empty = std::string_view(PQgetvalue(facts.get(), 0, 0)) == "t";
  const bool copy_into = std::string_view(PQgetvalue(facts.get(), 0, 1)) == "t";
  const bool plain = std::string_view(PQgetvalue(facts.get(), 0, 2)) == "t";
  started_empty = false;
  if (options_.concurrent || !copy_into) return LoadMethod::Staged;
  if (empty) {
    started_empty = true;
  } else {
    const auto prior = states.find(p.mapping->target.str());
    if (prior == states.end() || !prior->second.started_empty ||
        (prior->second.phase != TablePhase::Copying && !options_.nothing_streamed)) {
      return LoadMethod::Staged;
    }
    started_empty = true;
  }
  p.freeze = options_.truncate && plain && p.parts.size() == 1;
  if (empty) return LoadMethod::Direct;
  if (!p.freeze) {
    const std::string clear = (options_.truncate ? "TRUNCATE " : "DELETE FROM ") + p.target;
    pg_exec(target_.get(), clear.c_str(), "emptying " + p.mapping->target.str() + " of an interrupted copy");
  }
  return LoadMethod::Cleared;
}

// The target COPY's column list and, for a staged table, the guarded upsert from its stage.
void Coordinator::statements(TablePlan& p) {
  const TableMapping& m = *p.mapping;
  std::vector<std::string> cols;
  for (const auto& c : m.columns) cols.push_back(quote_ident(c.target));
  const std::string lsn = quote_ident(m.lsn_column);
  const std::string tomb = quote_ident(m.tombstone_column);
  const bool soft = m.deletes == DeletePolicy::Soft;
  std::string row = join(cols, ", ") + ", " + lsn + (soft ? ", " + tomb : "");
  std::string copy = join(cols, ", ");
  if (p.method == LoadMethod::Staged && options_.concurrent) {
    for (std::size_t k = 0; k < m.key_indexes().size(); ++k) copy += ", _cdc_src_k" + std::to_string(k);
  }
  p.copy_columns = copy + ", " + lsn + (soft ? ", " + tomb : "");
  if (p.method != LoadMethod::Staged) return;
  std::vector<std::string> keys;
  std::string set;
  const auto key = m.key_indexes();
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (std::find(key.begin(), key.end(), i) != key.end()) {
      keys.push_back(cols[i]);
    } else {
      set += cols[i] + " = EXCLUDED." + cols[i] + ", ";
    }
  }
  set += lsn + " = EXCLUDED." + lsn + (soft ? ", " + tomb + " = EXCLUDED." + tomb : "");
  p.upsert = "INSERT INTO " + p.target + " AS t (" + row + ") OVERRIDING SYSTEM VALUE SELECT " + row +
             " FROM " + p.stage + (options_.concurrent ? " WHERE NOT _cdc_skip" : "") + " ON CONFLICT (" +
             join(keys, ", ") + ") DO UPDATE SET " + set + " WHERE t." + lsn + " < EXCLUDED." + lsn;
}

void Coordinator::plan(std::size_t i, const TableLoadStates& states) {
  const TableLoad& load = loads_[i];
  const TableMapping& m = *load.table;
  auto p = std::make_unique<TablePlan>();
  p->load = &load;
  p->mapping = &m;
  p->index = i;
  p->source = m.source.quoted();
  p->target = m.target.quoted();
  p->stage = "pg_temp." + quote_ident("_cdc_load_" + std::to_string(i));
  auto source_types = pg_exec_params(source_.get(), kTargetColumnTypesQuery, {p->source},
                                     "reading the columns of " + m.source.str());
  auto target_types = pg_exec_params(target_.get(), kTargetColumnTypesQuery, {p->target},
                                     "reading the columns of " + m.target.str());
  const TargetColumnTypes s = read_target_column_types(source_types.get());
  const TargetColumnTypes t = read_target_column_types(target_types.get());
  p->binary_format =
      plan_rows(m, s, t, options_.copy_format, options_.concurrent, static_cast<bool>(load.keep));
  p->text_format = plan_rows(m, s, t, CopyFormat::Text, options_.concurrent, static_cast<bool>(load.keep));
  const TableSize size = read_table_size(source_.get(), m.source);
  p->parts = split_by_ctid(size, std::max(options_.sessions, 1), options_.max_part_pages);
  const bool by_key = !size.has_ctid && size.pages >= kSplitFromPages;
  if (by_key) p->parts = split_by_key(source_.get(), m, std::max(options_.sessions, 1));
  if (size.rows) p->estimate = static_cast<std::int64_t>(*size.rows);
  pages_.push_back(size.pages);

  bool started_empty = false;
  p->method = choose_method(*p, states, started_empty);
  statements(*p);
  if (options_.state) {
    options_.state->write(target_.get(), m.target.str(),
                          {TablePhase::Copying, snapshot_.point, started_empty, std::nullopt});
    defer_indexes(*p, states);
  }
  p->result.table = &m;
  p->result.method = p->method;
  p->result.parts = p->parts.size();
  const LogScope scope{m.target.str(), snapshot_.point};
  spdlog::info("snapshot: {} <- {}: {} rows in {} part(s){}, {}{}, {}", m.target.str(), m.source.str(),
               size.rows ? std::to_string(*size.rows) : std::string("(counting)"), p->parts.size(),
               by_key ? " by key range (ctid is not readable)" : "",
               p->binary_format.binary ? "binary" : "text (" + p->binary_format.text_because + ")",
               p->freeze ? ", COPY FREEZE"
               : p->deferred_indexes.empty()
                   ? ""
                   : ", " + std::to_string(p->deferred_indexes.size()) + " index(es) built after the data",
               p->method == LoadMethod::Direct    ? "straight into the empty table"
               : p->method == LoadMethod::Cleared ? "straight into the table, emptied of an interrupted copy"
                                                  : "through a stage under the LSN guard");
  plans_.push_back(std::move(p));
}

// snapshot.rebuild_indexes, for a table copied straight in: its indexes (and the constraints they back) are
// dropped, in the transaction that keeps the statements building them in the load state. A table whose
// earlier attempt dropped them keeps the statements it has. Where they cannot be dropped (another table's
// foreign key needs one, the role does not own the table or may not create in its schema) the table is
// copied with them.
void Coordinator::defer_indexes(TablePlan& p, const TableLoadStates& states) {
  const std::string name = p.mapping->target.str();
  if (const auto prior = states.find(name);
      prior != states.end() && !prior->second.deferred_indexes.empty()) {
    p.deferred_indexes = prior->second.deferred_indexes;
    if (p.method == LoadMethod::Staged) build_indexes(p);  // its upserts need them
    return;
  }
  if (!options_.rebuild_indexes || p.method == LoadMethod::Staged) return;
  auto res = pg_exec_params(
      target_.get(),
      "SELECT pg_catalog.pg_get_indexdef(i.indexrelid), quote_ident(n.nspname) || '.' || "
      "quote_ident(c.relname), "
      "con.conname, pg_catalog.pg_get_constraintdef(con.oid), pg_catalog.has_schema_privilege(n.oid, "
      "'CREATE') "
      "FROM pg_catalog.pg_index i "
      "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
      "c.relnamespace "
      "LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
      "AND con.contype IN ('p', 'u', 'x') WHERE i.indrelid = $1::regclass ORDER BY con.contype = 'p' DESC, 2",
      {p.target}, "reading the indexes of " + name);
  if (PQntuples(res.get()) == 0) return;
  // Building an index (a constraint's too) needs CREATE on its schema besides owning the table.
  if (std::string_view(PQgetvalue(res.get(), 0, 4)) != "t") {
    spdlog::warn(
        "snapshot: {} is copied with its indexes: snapshot.rebuild_indexes needs CREATE on its schema "
        "to build them again (cdcsync check)",
        name);
    return;
  }
  std::vector<std::string> build;
  std::string drop;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    if (PQgetisnull(res.get(), r, 2)) {
      build.push_back(PQgetvalue(res.get(), r, 0));
      drop += "DROP INDEX " + std::string(PQgetvalue(res.get(), r, 1)) + "; ";
    } else {
      const std::string constraint = quote_ident(PQgetvalue(res.get(), r, 2));
      build.push_back("ALTER TABLE " + p.target + " ADD CONSTRAINT " + constraint + " " +
                      PQgetvalue(res.get(), r, 3));
      drop += "ALTER TABLE " + p.target + " DROP CONSTRAINT " + constraint + "; ";
    }
  }
  if (build.empty()) return;
  try {
    pg_exec(target_.get(), "BEGIN", "dropping the indexes of " + name);
    options_.state->defer_indexes(target_.get(), name, build);
    pg_exec(target_.get(), drop.c_str(), "dropping the indexes of " + name);
    pg_exec(target_.get(), "COMMIT", "dropping the indexes of " + name);
  } catch (const PgError& e) {
    PgResult rollback{PQexec(target_.get(), "ROLLBACK")};
    if (e.transient()) throw;
    spdlog::warn("snapshot: {} is copied with its indexes (snapshot.rebuild_indexes): {}", name, e.what());
    return;
  }
  p.deferred_indexes = std::move(build);
}

// The indexes dropped for the copy, built again in one transaction with the state that forgets them.
void Coordinator::build_indexes(TablePlan& p) {
  const std::string name = p.mapping->target.str();
  const auto t0 = std::chrono::steady_clock::now();
  pg_exec(target_.get(), "BEGIN", "building the indexes of " + name);
  for (const std::string& sql : p.deferred_indexes) {
    pg_exec(target_.get(), sql.c_str(), "building an index of " + name + " after the copy (" + sql + ")");
  }
  options_.state->indexes_built(target_.get(), name);
  pg_exec(target_.get(), "COMMIT", "building the indexes of " + name);
  spdlog::info("snapshot: {}: {} index(es) built in {:.1f} s", name, p.deferred_indexes.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  p.deferred_indexes.clear();
}

// Every part committed: rows older than the snapshot left in a staged table were absent from it; then the
// table is `streaming`.
void Coordinator::finish(TablePlan& p) {
  if (!p.deferred_indexes.empty()) build_indexes(p);
  const TableMapping& m = *p.mapping;
  if (p.method == LoadMethod::Staged && m.deletes != DeletePolicy::Ignore) {
    const std::string lsn = "t." + quote_ident(m.lsn_column);
    const std::string tomb = quote_ident(m.tombstone_column);
    std::string cond = lsn + " < $1::pg_lsn";
    std::vector<PgParam> params{snapshot_.point.str()};
    if (!p.load->sweep_condition.empty()) {
      cond += " AND " + p.load->sweep_condition;
      params.push_back(p.load->sweep_parameter);
    }
    const std::string sql = m.deletes == DeletePolicy::Soft
                                ? "UPDATE " + p.target + " AS t SET " + tomb + " = true, " +
                                      quote_ident(m.lsn_column) + " = $1::pg_lsn WHERE NOT t." + tomb +
                                      " AND " + cond
                                : "DELETE FROM " + p.target + " AS t WHERE " + cond;
    auto res =
        pg_exec_params(target_.get(), sql, params,
                       "removing rows absent from the snapshot from " + m.target.str(), PGRES_COMMAND_OK);
    p.result.removed = std::stoull(PQcmdTuples(res.get()));
  }
  p.result.source_rows = p.source_rows;
  p.result.written = p.written;
  p.result.skipped_gone = p.skipped_gone;
  p.result.binary = !p.text_only && p.binary_format.binary;
  p.result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.started_at).count();
  if (options_.state) {
    const auto round_trip = target_deadline_.round_trip();
    options_.state->write(
        target_.get(), m.target.str(),
        {TablePhase::Streaming, snapshot_.point, p.method != LoadMethod::Staged, p.result.source_rows});
  }
  p.finished = true;
  const LogScope scope{m.target.str(), snapshot_.point};
  spdlog::info(
      "snapshot: {} done: {} rows in {:.1f} s ({:.0f} rows/s){}", m.target.str(), p.result.source_rows,
      p.result.seconds, p.result.seconds > 0 ? p.result.source_rows / p.result.seconds : 0.0,
      p.result.removed > 0 ? ", " + std::to_string(p.result.removed) + " absent from the snapshot removed"
                           : "");
}

LoadProgressView Coordinator::view(bool finished) const {
  LoadProgressView v;
  v.elapsed = std::chrono::steady_clock::now() - started_;
  v.finished = finished;
  for (const auto& p : plans_) {
    TableProgress t;
    t.table = p->mapping->target.str();
    t.rows = p->rows.load();
    if (p->estimate.load() >= 0) t.estimate = static_cast<std::uint64_t>(p->estimate.load());
    t.parts = p->parts.size();
    t.parts_done = p->parts_done.load();
    t.done = p->finished;
    v.tables.push_back(std::move(t));
  }
  return v;
}

void Coordinator::fail(std::exception_ptr error, std::vector<std::unique_ptr<LoadWorker>>& workers,
                       std::vector<std::thread>& threads) {
  queue_.abort();
  for (auto& w : workers) w->cancel();
  for (auto& t : threads) t.join();
  std::rethrow_exception(error);
}

std::vector<TableLoadResult> Coordinator::run(const LoadObserver& observer, const std::atomic<bool>& stop) {
  connect();
  const TableLoadStates states = options_.state ? options_.state->read(target_.get()) : TableLoadStates{};
  if (options_.state && !options_.state->exists(target_.get())) {
    spdlog::warn(
        "the order database has no {}: an interrupted load will start over instead of resuming "
        "(cdcsync target-ddl prints it)",
        options_.state->table().str());
  }
  for (std::size_t i = 0; i < loads_.size(); ++i) plan(i, states);
  std::vector<TablePlan*> uncounted;
  for (const auto& p : plans_) {
    if (p->estimate.load() < 0) uncounted.push_back(p.get());
  }
  RowCounter counter{options_.source_conninfo, uncounted};

  // Largest tables first: the last parts to finish are small ones.
  std::vector<std::size_t> order(plans_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return pages_[a] > pages_[b]; });
  std::size_t total_parts = 0;
  for (std::size_t i : order) {
    for (std::size_t k = 0; k < plans_[i]->parts.size(); ++k) queue_.push({plans_[i].get(), k});
    total_parts += plans_[i]->parts.size();
  }
  const std::size_t n = std::max<std::size_t>(1, std::min<std::size_t>(options_.sessions, total_parts));
  std::vector<std::unique_ptr<LoadWorker>> workers;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<LoadWorker>(snapshot_, options_, queue_, target_settings_));
  }
  for (auto& w : workers) threads.emplace_back([w = w.get()] { w->run(); });

  while (true) {
    if (std::exception_ptr error = queue_.wait(kTick)) fail(error, workers, threads);
    if (stop) fail(std::make_exception_ptr(LoadStopped{}), workers, threads);
    bool all = true;
    for (auto& p : plans_) {
      if (!p->finished && p->parts_done.load() == p->parts.size()) {
        try {
          finish(*p);
        } catch (...) {
          fail(std::current_exception(), workers, threads);
        }
      }
      all = all && p->finished;
    }
    if (observer) observer(view(false));
    if (all) break;
  }
  for (auto& t : threads) t.join();
  if (observer) observer(view(true));
  std::vector<TableLoadResult> out;
  for (const auto& p : plans_) out.push_back(p->result);
  return out;
}

}  // namespace

std::string_view name_of(LoadMethod m) {
  switch (m) {
    case LoadMethod::Direct:
      return "direct";
    case LoadMethod::Cleared:
      return "cleared";
    case LoadMethod::Staged:
      return "staged";
  }
  return "unknown";
}

std::vector<TableLoadResult> load_tables(const ExportedSnapshot& snapshot,
                                         const std::vector<TableLoad>& tables, const LoadOptions& options,
                                         const LoadObserver& observer, const std::atomic<bool>& stop) {
  if (tables.empty()) return {};
  Coordinator c{snapshot, tables, options};
  return c.run(observer, stop);
}

}  // namespace cdcsync
