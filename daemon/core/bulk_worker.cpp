// The bulk loader's workers: a source session in the snapshot and a target session each, copying one part
// after another: the source's COPY TO streamed, rewritten, into the target's COPY FROM, one target
// transaction per part.
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <map>

#include "daemon/core/bulk_load_internal.h"
#include "sinks/sink.h"

namespace cdcsync {
namespace {

constexpr std::size_t kPiece = 1u << 20;  // COPY data handed to libpq at a time

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// Reads what is left of a COPY TO or a statement's results, so the session can take the next statement.
void drain(PGconn* conn) {
  char* raw = nullptr;
  while (PQgetCopyData(conn, &raw, 0) >= 0) PQfreemem(raw);
  while (PgResult r{PQgetResult(conn)}) {
  }
}

}  // namespace

std::optional<PartJob> LoadQueue::next() {
  std::lock_guard lock(mu_);
  if (aborted_ || queue_.empty()) return std::nullopt;
  PartJob job = queue_.front();
  queue_.pop_front();
  return job;
}

void LoadQueue::part_done(const PartJob& job) {
  {
    std::lock_guard lock(mu_);
    ++job.table->parts_done;
    news_ = true;
  }
  cv_.notify_all();
}

void LoadQueue::fail(std::exception_ptr e) {
  {
    std::lock_guard lock(mu_);
    if (!error_ && !aborted_) error_ = std::move(e);
    news_ = true;
  }
  cv_.notify_all();
}

std::exception_ptr LoadQueue::wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return news_; });
  news_ = false;
  return error_;
}

PgConn connect_load_session(const std::string& conninfo, std::string_view what, const std::string& extra) {
  const std::string options = "-cstatement_timeout=0 " + extra;
  // No reply deadline of pg_link's: a part's COPY may run long, and snapshot.stall_timeout_ms ends a stalled
  // load by shutting its sessions' sockets down (bulk_load.h).
  PgConn conn = pg_connect(conninfo, what,
                           {.reply_timeout = std::chrono::milliseconds(0),
                            .owner = pg_link::Owner::SideThread,
                            .after = {{"options", options}, {"application_name", "cdcsync_snapshot"}}});
  return conn;
}

std::string text_array_literal(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    out += i ? ",\"" : "\"";
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

LoadWorker::LoadWorker(const ExportedSnapshot& snapshot, const LoadOptions& options, LoadQueue& queue,
                       std::string target_settings)
    : snapshot_(snapshot),
      options_(options),
      queue_(queue),
      target_settings_(std::move(target_settings)),
      source_deadline_(options.stall_timeout, "the customer database (snapshot)"),
      target_deadline_(options.stall_timeout, "the order database (snapshot)") {}

LoadWorker::~LoadWorker() {
  source_deadline_.watch(-1);
  target_deadline_.watch(-1);
}

void LoadWorker::run() {
  try {
    connect();
    while (const auto job = queue_.next()) {
      run_part(*job);
      queue_.part_done(*job);
    }
  } catch (...) {
    queue_.fail(std::current_exception());
  }
}

void shut_down(PGconn* conn) {
  if (conn != nullptr && PQsocket(conn) >= 0) shutdown(PQsocket(conn), SHUT_RDWR);
}

void LoadWorker::cancel() {
  std::lock_guard lock(cancel_mu_);
  shut_down(source_.get());
  shut_down(target_.get());
}

void LoadWorker::connect() {
  PgConn target =
      connect_load_session(options_.target_conninfo, "the order database (snapshot)",
                           "-csearch_path= -csynchronous_commit=off -ctemp_buffers=32MB " + target_settings_);
  {
    std::lock_guard lock(cancel_mu_);
    target_ = std::move(target);
    target_deadline_.watch(PQsocket(target_.get()));
  }
  connect_source();
}

// A source session in the snapshot (again, after a part was abandoned: the exporter is still there).
void LoadWorker::connect_source() {
  // jit: each part's scan is one short query; compiling it costs more than it saves.
  PgConn source =
      connect_load_session(options_.source_conninfo, "the source (snapshot)",
                           "-crow_security=off -cjit=off -cidle_in_transaction_session_timeout=0");
  {
    std::lock_guard lock(cancel_mu_);
    source_deadline_.watch(-1);
    source_ = std::move(source);
    source_deadline_.watch(PQsocket(source_.get()));
  }
  begin_snapshot();
}

void LoadWorker::begin_snapshot() {
  const auto round_trip = source_deadline_.round_trip();
  pg_exec(source_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
          "starting the snapshot transaction");
  pg_exec(source_.get(),
          ("SET TRANSACTION SNAPSHOT " + pg_quote_literal(source_.get(), snapshot_.name)).c_str(),
          "importing the exported snapshot");
}

void LoadWorker::run_part(const PartJob& job) {
  TablePlan& t = *job.table;
  if (!t.started.exchange(true)) t.started_at = std::chrono::steady_clock::now();
  current_ = &t;
  while (true) {
    const RowFormat& f = t.format();
    counted_ = 0;
    try {
      copy_part(t, t.parts[job.part], f);
      return;
    } catch (const ValueRefused& r) {
      abandon_part(t);
      if (!t.text_only.exchange(true)) {
        spdlog::warn(
            "snapshot: a value of {}.{} is not in the form the {} encoder of COPY's binary format reads; the "
            "table is copied as text",
            t.mapping->target.str(), t.mapping->columns[r.column].target,
            name_of(f.columns[r.column].encoder));
      }
    }
  }
}

PgResult LoadWorker::target_exec(const std::string& sql, const std::string& doing) {
  PgResult res{PQexec(target_.get(), sql.c_str())};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) target_failed(res.get(), doing);
  return res;
}

// A transient failure goes on as it is; anything else the target refused stops the load like a refused
// change stops the stream (exit code 4), naming the table and the snapshot, never a value.
void LoadWorker::target_failed(const PGresult* res, const std::string& doing) {
  PgError e = sink_error(target_.get(), res, doing);
  if (e.transient()) throw e;
  throw PermanentError(current_ != nullptr ? current_->mapping->target.str() : std::string(), snapshot_.point,
                       e.sqlstate(), e.what());
}

void LoadWorker::copy_part(TablePlan& t, const std::string& where, const RowFormat& f) {
  const bool staged = t.method == LoadMethod::Staged;
  const std::string what = t.mapping->target.str();
  if (staged) ensure_stage(t);
  {
    const auto round_trip = target_deadline_.round_trip();
    target_exec(t.freeze ? "BEGIN; TRUNCATE " + t.target : std::string("BEGIN"),
                "starting a part of " + what);
    std::vector<std::string> copy_options;
    if (f.binary) copy_options.emplace_back("FORMAT binary");
    if (t.freeze) copy_options.emplace_back("FREEZE");
    const std::string copy_in = "COPY " + (staged ? t.stage : t.target) + " (" + t.copy_columns +
                                ") FROM STDIN" +
                                (copy_options.empty() ? "" : " (" + join(copy_options, ", ") + ")");
    PgResult in{PQexec(target_.get(), copy_in.c_str())};
    if (!in || PQresultStatus(in.get()) != PGRES_COPY_IN) target_failed(in.get(), "copying into " + what);
    const std::string copy_out = "COPY (SELECT " + join(f.select, ", ") + " FROM " + t.source + " AS t" +
                                 where + ") TO STDOUT" + (f.binary ? " (FORMAT binary)" : "");
    const auto source_round_trip = source_deadline_.round_trip();
    PgResult out{PQexec(source_.get(), copy_out.c_str())};
    if (!out || PQresultStatus(out.get()) != PGRES_COPY_OUT) {
      throw pg_error(source_.get(), out.get(), "copying " + t.mapping->source.str());
    }
    RowRewriter rw(*t.mapping, f, snapshot_.point, t.load->keep);
    stream_rows(t, rw);
    t.source_rows += rw.rows_kept();
    if (!staged) t.written += rw.rows_kept();
  }
  if (staged) {
    if (options_.concurrent) {
      target_exec("LOCK TABLE " + t.target + " IN EXCLUSIVE MODE",
                  "locking " + what + " against concurrent writes");
      check_rows_gone(t);
    }
    PgResult up = target_exec(t.upsert, "copying rows into " + what);
    t.written += std::stoull(PQcmdTuples(up.get()));
  }
  const auto round_trip = target_deadline_.round_trip();
  target_exec("COMMIT", "committing a part of " + what);
}

void LoadWorker::stream_rows(TablePlan& t, RowRewriter& rw) {
  const std::string reading = "copying " + t.mapping->source.str();
  buffer_.clear();
  rw.begin(buffer_);
  std::uint64_t pending = 0;
  while (true) {
    if (queue_.aborted()) throw std::runtime_error("the load was aborted");
    char* raw = nullptr;
    const int n = PQgetCopyData(source_.get(), &raw, 0);
    source_deadline_.touch();
    if (n == -1) break;
    if (n < 0) throw pg_error(source_.get(), nullptr, reading);
    const std::unique_ptr<char, PqFreemem> message{raw};
    pending += rw.add({raw, static_cast<std::size_t>(n)}, buffer_);
    if (buffer_.size() >= kPiece) {
      put("copying into " + t.mapping->target.str());
      t.rows += pending;
      counted_ += pending;
      pending = 0;
    }
  }
  PgResult done{PQgetResult(source_.get())};
  if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK)
    throw pg_error(source_.get(), done.get(), reading);
  while (PgResult more{PQgetResult(source_.get())}) {
  }
  rw.end(buffer_);
  put("copying into " + t.mapping->target.str());
  t.rows += pending;
  counted_ += pending;
  if (PQputCopyEnd(target_.get(), nullptr) != 1)
    target_failed(nullptr, "copying into " + t.mapping->target.str());
  PgResult end{PQgetResult(target_.get())};
  if (!end || PQresultStatus(end.get()) != PGRES_COMMAND_OK) {
    target_failed(end.get(), "copying into " + t.mapping->target.str());
  }
  while (PgResult more{PQgetResult(target_.get())}) {
  }
  // A piece that grew past a wide row's size is not kept for the next part.
  if (buffer_.capacity() > 4 * kPiece) std::string().swap(buffer_);
}

void LoadWorker::put(const std::string& doing) {
  if (!buffer_.empty() &&
      PQputCopyData(target_.get(), buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
    target_failed(nullptr, doing);
  }
  target_deadline_.touch();
  buffer_.clear();
}

// A value refused in the middle of both COPYs: the target's is ended with an error and its transaction rolled
// back; the source's session, in the middle of its COPY, is replaced by a new one in the same snapshot.
void LoadWorker::abandon_part(TablePlan& t) {
  t.rows -= counted_;
  buffer_.clear();
  PQputCopyEnd(target_.get(), "cdcsync: a value not in the form its binary encoder reads");
  drain(target_.get());
  target_exec("ROLLBACK", "rolling back a part of " + t.mapping->target.str());
  connect_source();
}

void LoadWorker::ensure_stage(TablePlan& t) {
  if (stages_.contains(t.index)) return;
  const TableMapping& m = *t.mapping;
  std::string sql = "CREATE TEMP TABLE IF NOT EXISTS " + t.stage + " ON COMMIT DELETE ROWS AS SELECT ";
  for (const auto& c : m.columns) sql += "t." + quote_ident(c.target) + ", ";
  sql += "t." + quote_ident(m.lsn_column);
  if (m.deletes == DeletePolicy::Soft) sql += ", t." + quote_ident(m.tombstone_column);
  sql += " FROM " + t.target + " AS t WITH NO DATA";
  if (options_.concurrent) {
    sql += "; ALTER TABLE " + t.stage;
    for (std::size_t k = 0; k < m.key_indexes().size(); ++k)
      sql += " ADD COLUMN _cdc_src_k" + std::to_string(k) + " text,";
    sql += " ADD COLUMN _cdc_skip boolean NOT NULL DEFAULT false";
  }
  target_exec(sql, "creating the staging table of " + m.target.str());
  stages_.insert(t.index);
}

// Of the staged rows whose key is absent from the target (the EXCLUSIVE lock holds the daemon's writes back),
// those whose key is gone from the source now were deleted since the snapshot: a hard delete streamed after
// it left no row to guard, so writing them would resurrect them. They are marked to skip.
void LoadWorker::check_rows_gone(TablePlan& t) {
  const TableMapping& m = *t.mapping;
  const auto key = m.key_indexes();
  std::vector<std::string> carried, on_key, source_keys, unnest_args, aliases;
  for (std::size_t k = 0; k < key.size(); ++k) {
    const std::string col = quote_ident(m.columns[key[k]].target);
    carried.push_back("_cdc_src_k" + std::to_string(k));
    on_key.push_back("t." + col + " = s." + col);
    source_keys.push_back("t." + quote_ident(m.columns[key[k]].source) + "::text");
    unnest_args.push_back("$" + std::to_string(k + 1) + "::text[]");
    aliases.push_back("a" + std::to_string(k));
  }
  PgResult absent = target_exec("SELECT " + join(carried, ", ") + " FROM " + t.stage +
                                    " AS s WHERE NOT EXISTS (SELECT 1 FROM " + t.target + " AS t WHERE " +
                                    join(on_key, " AND ") + ")",
                                "finding rows absent from " + m.target.str());
  const int n = PQntuples(absent.get());
  if (n == 0) return;
  std::vector<std::vector<std::string>> columns(key.size());
  for (int r = 0; r < n; ++r) {
    for (std::size_t k = 0; k < key.size(); ++k)
      columns[k].push_back(PQgetvalue(absent.get(), r, static_cast<int>(k)));
  }
  std::vector<PgParam> params;
  for (const auto& c : columns) params.push_back(text_array_literal(c));
  if (!now_) now_ = connect_load_session(options_.source_conninfo, "the source", "-crow_security=off");
  const std::string unnest = "unnest(" + join(unnest_args, ", ") + ") AS u(" + join(aliases, ", ") + ")";
  PgResult alive = pg_exec_params(now_.get(),
                                  "SELECT " + join(source_keys, ", ") + " FROM " + t.source +
                                      " AS t WHERE (" + join(source_keys, ", ") + ") IN (SELECT " +
                                      join(aliases, ", ") + " FROM " + unnest + ")",
                                  params, "checking rows on " + m.source.str());
  std::set<std::vector<std::string>> still;
  for (int r = 0; r < PQntuples(alive.get()); ++r) {
    std::vector<std::string> k;
    for (std::size_t c = 0; c < key.size(); ++c)
      k.emplace_back(PQgetvalue(alive.get(), r, static_cast<int>(c)));
    still.insert(std::move(k));
  }
  std::vector<std::vector<std::string>> gone(key.size());
  std::uint64_t skipped = 0;
  for (int r = 0; r < n; ++r) {
    std::vector<std::string> k;
    for (std::size_t c = 0; c < key.size(); ++c) k.push_back(columns[c][static_cast<std::size_t>(r)]);
    if (still.contains(k)) continue;
    ++skipped;
    for (std::size_t c = 0; c < key.size(); ++c) gone[c].push_back(k[c]);
  }
  if (skipped == 0) return;
  std::vector<PgParam> gone_params;
  for (const auto& g : gone) gone_params.push_back(text_array_literal(g));
  const std::string mark = "UPDATE " + t.stage + " SET _cdc_skip = true WHERE (" + join(carried, ", ") +
                           ") IN (SELECT * FROM " + unnest + ")";
  PgResult marked = pg_exec_params(target_.get(), mark, gone_params,
                                   "marking rows deleted since the snapshot", PGRES_COMMAND_OK);
  t.skipped_gone += skipped;
}

}  // namespace cdcsync
