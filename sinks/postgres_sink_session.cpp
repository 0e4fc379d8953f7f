// PostgresSink's session with the order database: connect (writer lock, settings, staging tables), errors,
// the progress row (read, sync, record_ack) and which tables copy in binary.
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>
#include <thread>

#include "sinks/load_state.h"
#include "sinks/postgres_sink.h"
#include "sinks/postgres_sink_table.h"

namespace cdcsync {
namespace {

// A data exception's primary message quotes the value it refused (`invalid input syntax for type
// integer: "12.50"`): the quoted parts go, the rest (type, SQLSTATE) stays.
std::string without_quoted_values(const std::string& msg) {
  std::string out;
  bool quoted = false;
  for (char c : msg) {
    if (c == '"') {
      if (!quoted) out += "(value not shown)";
      quoted = !quoted;
    } else if (!quoted) {
      out.push_back(c);
    }
  }
  return out;
}

// A session of this process that has just ended (a reconnect after a lost or timed-out link, a sink
// replaced) may still hold the writer lock while its backend exits: it is given this long to let go before
// the lock counts as another session's.
constexpr std::chrono::milliseconds kWriterLockGrace{1000};
constexpr std::chrono::milliseconds kWriterLockRetry{20};

}  // namespace

PgError sink_error(PGconn* conn, const PGresult* res, std::string_view doing) {
  PgError e = pg_error(conn, res, doing);
  std::string msg = e.sqlstate().starts_with("22") ? without_quoted_values(e.what()) : std::string(e.what());
  if (res != nullptr) {
    const char* constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    if (constraint != nullptr) msg += std::string(" [constraint ") + constraint + "]";
  }
  return PgError{e.sqlstate(), msg};
}

void PostgresSink::drop_connection() {
  conn_.reset();
  in_txn_ = false;
  trip_prepared_ = false;
  skip_.reset();
  pending_.clear();
  // The server's WAL positions mean nothing after the session: it may have crashed and written over them.
  unflushed_commits_.clear();
  newly_flushed_.reset();
  for (auto& t : tables_) {
    t->prepared.clear();
    t->stage_used = false;
    t->fold.clear();
    t->without_toast = 0;
  }
}

PgResult PostgresSink::exec(const std::string& sql, const char* doing) {
  PgResult res{PQexec(conn_.get(), sql.c_str())};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw sink_error(conn_.get(), res.get(), doing);
  return res;
}

PgResult PostgresSink::exec_params(const std::string& sql, const std::vector<PgParam>& params,
                                   const char* doing, ExecStatusType ok) {
  // A failed result comes back rather than thrown so that the error keeps the constraint's name (sink_error).
  PgResult res = pg_exec_params(conn_.get(), sql, params, doing, ok, PGRES_FATAL_ERROR);
  if (!res || PQresultStatus(res.get()) == PGRES_FATAL_ERROR) throw sink_error(conn_.get(), res.get(), doing);
  return res;
}

void PostgresSink::raise(const PgError& e) {
  if (e.transient()) {
    drop_connection();
    throw TransientError(e.what());
  }
  rollback_quietly();
  throw PermanentError(error_table_, error_lsn_, e.sqlstate(), e.what());
}

void PostgresSink::connect() {
  drop_connection();
  // temp_buffers: a batch's staging rows (up to batch.max_bytes, 16 MiB by default) stay in the session's
  // memory instead of being written out to temporary files and read back (the default is 8 MB).
  std::string session_options = "-csearch_path= -ctemp_buffers=32MB";
  if (options_.statement_timeout.count() > 0) {
    session_options += " -cstatement_timeout=" + std::to_string(options_.statement_timeout.count());
  }
  // The reply deadline: statement_timeout lets a slow statement end with an error; no reply a while after it
  // means a dead link.
  std::optional<std::chrono::milliseconds> reply_timeout;
  if (options_.statement_timeout.count() > 0) {
    reply_timeout =
        options_.statement_timeout + std::min(options_.statement_timeout, std::chrono::milliseconds(5000));
  }
  try {
    conn_ = pg_connect(options_.conninfo, "the order database",
                       {.reply_timeout = reply_timeout,
                        .after = {{"options", session_options}, {"application_name", "cdcsync"}}});
  } catch (const PgError& e) {
    throw TransientError(e.what());
  }
  error_lsn_ = Lsn{};
  try {
    error_table_ = options_.progress_table.str();
    if (options_.track_progress) {
      const auto give_up = std::chrono::steady_clock::now() + kWriterLockGrace;
      while (true) {
        auto lock = exec_params("SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                                {"cdcsync:" + options_.pipeline}, "taking the writer lock", PGRES_TUPLES_OK);
        if (std::string_view(PQgetvalue(lock.get(), 0, 0)) == "t") break;
        if (std::chrono::steady_clock::now() >= give_up) {
          drop_connection();
          throw WriterLockHeld("another cdcsync session holds the writer lock of pipeline " +
                               options_.pipeline);
        }
        std::this_thread::sleep_for(kWriterLockRetry);
      }
    }
    set_synchronous_commit();
    if (options_.track_progress) {
      // The progress row as this session finds it, made durable (read_progress): when it is behind what
      // this sink committed before it reconnected, the target lost commits that never reached its disk (a
      // crash before their flush, a failover, a restore). Streaming on from here would skip them.
      const std::optional<Progress> before = progress_;
      read_progress();
      if (before && before->end_lsn.valid() && (!progress_ || progress_->end_lsn < before->end_lsn)) {
        const std::string now = progress_ ? progress_->end_lsn.str() : std::string("(none)");
        drop_connection();
        throw TransientError("the order database lost committed transactions: its progress went back from " +
                             before->end_lsn.str() + " to " + now +
                             " (it restarted before flushing them, or was restored or failed over); "
                             "streaming again from its progress");
      }
    }
    set_toast_compression();
    read_table_floors();
    for (auto& t : tables_) create_stage(*t);
  } catch (const PgError& e) {
    raise(e);
  }
  spdlog::info(
      "order database connected; pipeline {} at {}; large values compressed with {}; COPY in binary for {} "
      "of {} tables",
      options_.pipeline, progress_ ? progress_->end_lsn.str() : std::string("(no progress yet)"),
      toast_compression_, binary_tables().size(), tables_.size());
}

// The TEMP staging table of `t` (the target's mapped columns without its constraints, plus the op and the
// unchanged-TOAST mask), stored uncompressed; and whether COPY can write the target itself.
void PostgresSink::create_stage(TableState& t) {
  error_table_ = t.mapping->target.str();
  std::string sql = "CREATE TEMP TABLE IF NOT EXISTS " + t.stage + " ON COMMIT DELETE ROWS AS SELECT " +
                    join(t.cols, ", ", "t.") + ", t." + t.lsn_col;
  if (!t.tomb_col.empty()) sql += ", t." + t.tomb_col;
  sql += ", NULL::\"char\" AS _cdc_stage_op, NULL::integer AS _cdc_stage_mask FROM " + t.target +
         " AS t WITH NO DATA";
  exec(sql, "creating the staging table");
  // Staged values are read once and written again into the target, which compresses them as its
  // columns say: compressing them in staging too (the types' default EXTENDED) only costs CPU.
  auto columns = exec_params(
      "SELECT string_agg(format('ALTER COLUMN %I SET STORAGE EXTERNAL', attname), ', ' ORDER BY attnum) "
      "FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
      "AND attstorage IN ('x', 'm')",
      {t.stage}, "reading the staging table's columns", PGRES_TUPLES_OK);
  if (!PQgetisnull(columns.get(), 0, 0)) {
    exec("ALTER TABLE " + t.stage + " " + PQgetvalue(columns.get(), 0, 0), "creating the staging table");
  }
  // COPY FROM refuses views and tables with row-level security; those get every row through the stage.
  auto kind = exec_params(
      "SELECT relkind IN ('r', 'p') AND NOT relrowsecurity FROM pg_catalog.pg_class WHERE oid = "
      "$1::regclass",
      {t.target}, "reading the target table's kind", PGRES_TUPLES_OK);
  t.copy_into = std::string_view(PQgetvalue(kind.get(), 0, 0)) == "t";
  read_column_types(t);
}

void PostgresSink::read_column_types(TableState& t) {
  t.binary = false;
  t.col_types.assign(t.cols.size(), BinaryEncoder{});
  // Only the set-based method copies rows (the in-order method binds text parameters).
  if (options_.method != ApplyMethod::Copy || options_.copy_format != CopyFormat::Binary || t.binary_refused)
    return;
  auto res = exec_params(kTargetColumnTypesQuery, {t.target}, "reading the target table's column types",
                         PGRES_TUPLES_OK);
  CopyPlan plan = plan_copy(*t.mapping, read_target_column_types(res.get()));
  t.col_types = std::move(plan.columns);
  t.binary = plan.text_because.empty();
  if (!t.binary) spdlog::debug("{}: rows copied as text: {}", t.mapping->target.str(), plan.text_because);
}

std::vector<std::string> PostgresSink::binary_tables() const {
  std::vector<std::string> out;
  if (!conn_) return out;
  for (const auto& t : tables_) {
    if (t->binary) out.push_back(t->target);
  }
  return out;
}

ToastCompressionChoice choose_toast_compression(ToastCompression wanted, std::string_view setting,
                                                std::string_view source, bool has_lz4) {
  switch (wanted) {
    case ToastCompression::Auto:
      // lz4 compresses several times faster than pglz (and gives up on incompressible values sooner); a
      // method somebody chose for the server, the database or the role is theirs to keep.
      return {std::string(source == "default" && has_lz4 ? "lz4" : setting)};
    case ToastCompression::Server:
      return {std::string(setting)};
    case ToastCompression::Lz4:
      return has_lz4 ? ToastCompressionChoice{"lz4"} : ToastCompressionChoice{std::string(setting), true};
    case ToastCompression::Pglz:
      return {"pglz"};
  }
  return {std::string(setting)};
}

void PostgresSink::set_toast_compression() {
  auto res = exec(kToastCompressionSettingsQuery, "reading default_toast_compression");
  if (PQntuples(res.get()) == 0) {  // before PostgreSQL 14: pglz is the only method
    toast_compression_ = "pglz";
    return;
  }
  const std::string setting = PQgetvalue(res.get(), 0, 0);
  const auto choice =
      choose_toast_compression(options_.toast_compression, setting, PQgetvalue(res.get(), 0, 1),
                               std::string_view(PQgetvalue(res.get(), 0, 2)) == "t");
  if (choice.lz4_missing) {
    spdlog::warn(
        "target.toast_compression = \"lz4\", but the order database was built without lz4: large values "
        "are compressed with {}",
        setting);
  }
  if (choice.method != setting) {
    exec("SET default_toast_compression = " + choice.method, "setting default_toast_compression");
  }
  toast_compression_ = choice.method;
}

void PostgresSink::ensure_connected() {
  if (conn_ && PQstatus(conn_.get()) != CONNECTION_OK) {
    drop_connection();
  }
  if (!conn_) {
    connect();
    ++stats_.reconnects;
  }
}

void PostgresSink::rollback_quietly() {
  if (!conn_) return;
  if (PQpipelineStatus(conn_.get()) != PQ_PIPELINE_OFF ||
      PQtransactionStatus(conn_.get()) == PQTRANS_ACTIVE) {
    drop_connection();
    return;
  }
  if (PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
    PgResult res{PQexec(conn_.get(), "ROLLBACK")};
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      drop_connection();
      return;
    }
  }
  in_txn_ = false;
  skip_.reset();
  for (auto& t : tables_) {
    t->stage_used = false;
    t->fold.clear();
    t->without_toast = 0;
  }
}

void PostgresSink::abort() {
  rollback_quietly();
}

std::optional<Progress> PostgresSink::load_progress() {
  if (in_txn_ || !options_.track_progress) return progress_;
  if (!conn_) {
    ensure_connected();
    return progress_;
  }
  try {
    read_progress();
    read_table_floors();
    return progress_;
  } catch (const PgError& e) {
    raise(e);
  }
}

void PostgresSink::read_table_floors() {
  if (!options_.track_progress) return;
  const LoadStateStore store{load_state_table(options_.progress_table), options_.pipeline};
  const TableLoadStates states = store.read(conn_.get());
  for (auto& t : tables_) {
    const auto it = states.find(t->mapping->target.str());
    const bool copied = it != states.end() && it->second.phase == TablePhase::Streaming;
    t->floor = copied ? it->second.snapshot_lsn : Lsn{};
  }
}

bool PostgresSink::below_floor(std::size_t table, Lsn txn_lsn) const {
  return txn_lsn < tables_[table]->floor;
}

void PostgresSink::read_progress() {
  error_table_ = options_.progress_table.str();
  // FOR NO KEY UPDATE: locking the row writes WAL, so this statement's commit waits for the flush of the
  // WAL (synchronous_commit is never off here), and with it for every commit before it, including those
  // that did not wait for theirs. The row read is durable.
  auto res = exec_params(
      "SELECT end_lsn::text, xid::text, (extract(epoch FROM commit_time - "
      "'2000-01-01 00:00:00+00'::timestamptz) * 1000000)::bigint::text, acked_lsn::text FROM " +
          options_.progress_table.quoted() + " WHERE pipeline = $1 FOR NO KEY UPDATE",
      {options_.pipeline}, "reading the progress row", PGRES_TUPLES_OK);
  all_flushed();
  if (PQntuples(res.get()) == 0) {
    progress_.reset();
    return;
  }
  Progress p;
  p.end_lsn = Lsn::parse(PQgetvalue(res.get(), 0, 0)).value_or(Lsn{});
  p.xid = Xid{static_cast<std::uint32_t>(std::stoull(PQgetvalue(res.get(), 0, 1)))};
  if (!PQgetisnull(res.get(), 0, 2)) p.commit_time_us = std::stoll(PQgetvalue(res.get(), 0, 2));
  p.acked_lsn = Lsn::parse(PQgetvalue(res.get(), 0, 3)).value_or(Lsn{});
  progress_ = p;
}

std::optional<Lsn> PostgresSink::sync() {
  if (!unflushed_ || in_txn_) return std::nullopt;
  ensure_connected();
  if (!unflushed_) return progress_ ? progress_->end_lsn : Lsn{};  // the reconnect made it durable
  try {
    read_progress();
    ++stats_.syncs;
  } catch (const PgError& e) {
    raise(e);
  }
  return progress_ ? progress_->end_lsn : Lsn{};
}

std::optional<Lsn> PostgresSink::flushed() {
  // Without a session the commits' positions were forgotten: sync (or the next apply) reconnects.
  if (!unflushed_ || in_txn_ || !conn_) return std::nullopt;
  try {
    auto res = exec("SELECT pg_catalog.pg_current_wal_flush_lsn()::text", "reading the flushed position");
    learn_flushed(Lsn::parse(PQgetvalue(res.get(), 0, 0)).value_or(Lsn{}));
  } catch (const PgError& e) {
    raise(e);
  }
  if (unflushed_) return std::exchange(newly_flushed_, std::nullopt);
  newly_flushed_.reset();
  return progress_ ? progress_->end_lsn : Lsn{};
}

void PostgresSink::set_synchronous_commit() {
  auto res = exec("SELECT pg_catalog.current_setting('synchronous_commit')", "reading synchronous_commit");
  const std::string setting = PQgetvalue(res.get(), 0, 0);
  synchronous_commit_ = session_synchronous_commit(setting);
  if (synchronous_commit_ != setting) {
    exec("SET synchronous_commit = " + synchronous_commit_, "setting synchronous_commit");
    spdlog::info(
        "the order database has synchronous_commit = {} for cdcsync's role or database; its session uses {}, "
        "so that what it confirms to the source is on the target's disk",
        setting, synchronous_commit_);
  }
}

void PostgresSink::record_ack(Lsn lsn) {
  if (in_txn_) throw std::logic_error("record_ack inside an open source transaction");
  ensure_connected();
  try {
    error_table_ = options_.progress_table.str();
    error_lsn_ = lsn;
    exec_params(
        "INSERT INTO " + options_.progress_table.quoted() +
            " AS p (pipeline, end_lsn, xid, acked_lsn, applied_by) VALUES ($1, '0/0', 0, $2::pg_lsn, $3) "
            "ON CONFLICT (pipeline) DO UPDATE SET acked_lsn = greatest(p.acked_lsn, EXCLUDED.acked_lsn), "
            "updated_at = now()",
        {options_.pipeline, lsn.str(), options_.applied_by}, "recording the acknowledged position",
        PGRES_COMMAND_OK);
    all_flushed();  // the upsert's commit waited for the flush of everything before it
    if (progress_) {
      progress_->acked_lsn = std::max(progress_->acked_lsn, lsn);
    } else {
      progress_ = Progress{.acked_lsn = lsn};
    }
  } catch (const PgError& e) {
    raise(e);
  }
}
}  // namespace cdcsync
