#include "sinks/postgres_sink.h"

#include "sinks/copy_binary.h"
#include "sinks/copy_text.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>

namespace cdcsync {
namespace {

constexpr const char* kSavepoint = "SAVEPOINT cdcsync_apply";
constexpr std::size_t kPipelineDepth = 1000;  // statements between syncs: keeps both socket buffers small
constexpr std::size_t kCopyPiece = 1u << 20;  // COPY data handed to libpq at a time
// After a row inserted as new met an existing key, the table's next flushes upsert every row: the cause
// (a resync, a replay, tombstones of reused keys) tends to last, and each conflict costs a batch applied
// twice.
constexpr std::uint32_t kUpsertOnlyFlushes = 1000;

// A value the binary encoder of its column refused in the middle of a COPY: the COPY was ended with an
// error, and the call is applied again with the table copied as text.
struct BinaryRefused {
  std::size_t table;
  std::size_t column;
  Lsn lsn;  // the source transaction's commit LSN
};

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

// The error of a failed result without DETAIL, with the constraint's name when the server gave one.
PgError sink_error(PGconn* conn, const PGresult* res, std::string_view doing) {
  PgError e = pg_error(conn, res, doing);
  std::string msg = e.sqlstate().starts_with("22") ? without_quoted_values(e.what()) : std::string(e.what());
  if (res != nullptr) {
    const char* constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    if (constraint != nullptr) msg += std::string(" [constraint ") + constraint + "]";
  }
  return PgError{e.sqlstate(), msg};
}

std::string default_applied_by() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string("cdcsync@") + host + ":" + std::to_string(getpid());
}

// Lsn::str() without the allocation: "H/L" in uppercase hex.
void append_lsn(std::string& out, Lsn lsn) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const auto hex = [&](std::uint32_t v) {
    char buf[8];
    int n = 0;
    do {
      buf[n++] = kHex[v & 0xF];
      v >>= 4;
    } while (v != 0);
    while (n > 0) out.push_back(buf[--n]);
  };
  hex(static_cast<std::uint32_t>(lsn.value() >> 32));
  out.push_back('/');
  hex(static_cast<std::uint32_t>(lsn.value()));
}

std::string join(const std::vector<std::string>& parts, std::string_view sep, std::string_view prefix = "") {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += prefix;
    out += parts[i];
  }
  return out;
}

}  // namespace

struct PostgresSink::TableState {
  std::size_t index = 0;
  const TableMapping* mapping = nullptr;
  std::string target;             // quoted schema.table
  std::string stage;              // pg_temp."cdcsync_stage_N"
  std::vector<std::string> cols;  // quoted target columns, mapping order
  std::vector<std::size_t> key;   // indexes into cols
  std::string lsn_col;            // quoted
  std::string tomb_col;           // quoted; empty unless deletes = soft
  TableFold fold;
  bool stage_used = false;         // rows copied into the stage in the open transaction
  bool plain_used = false;         // rows inserted without ON CONFLICT in this apply call
  bool copy_into = false;          // COPY FROM can write the target (a table without row-level security)
  bool binary = false;             // rows are copied in COPY's binary format (set at connect)
  bool binary_refused = false;  // a value no encoder took: text until the process restarts (reconnects too)
  std::vector<BinaryEncoder> col_types;  // the encoder of each of cols (unsupported: none)
  std::uint64_t without_toast = 0;  // rows inserted with an unchanged-TOAST column NULL, open transaction
  std::uint64_t without_toast_at_savepoint = 0;
  std::uint32_t upsert_only = 0;   // flushes left that must not insert without ON CONFLICT
  std::set<std::string> prepared;  // prepared statement names on this connection
  std::string mask_scratch;
  std::vector<std::size_t> offsets;  // parameter offsets into params_ (SIZE_MAX: NULL)

  std::string row_columns() const {
    std::string s = join(cols, ", ");
    s += ", " + lsn_col;
    if (!tomb_col.empty()) s += ", " + tomb_col;
    return s;
  }
  std::string key_columns() const {
    std::vector<std::string> k;
    for (std::size_t i : key) k.push_back(cols[i]);
    return join(k, ", ");
  }
  // SET list of an upsert writing the columns marked '1' in `mask` (empty mask: all).
  std::string set_list(const std::string& mask) const {
    std::string s;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      if (std::find(key.begin(), key.end(), c) != key.end()) continue;
      if (!mask.empty() && mask[c] != '1') continue;
      s += cols[c] + " = EXCLUDED." + cols[c] + ", ";
    }
    s += lsn_col + " = EXCLUDED." + lsn_col;
    if (!tomb_col.empty()) s += ", " + tomb_col + " = EXCLUDED." + tomb_col;
    return s;
  }
  std::string conflict_clause(const std::string& mask) const {
    return " ON CONFLICT (" + key_columns() + ") DO UPDATE SET " + set_list(mask) + " WHERE t." + lsn_col +
           " <= EXCLUDED." + lsn_col;
  }
};

PostgresSink::PostgresSink(Mapping mapping, PostgresSinkOptions options)
    : mapping_(std::move(mapping)),
      options_(std::move(options)),
      binder_(mapping_),
      deadline_(options_.statement_timeout.count() > 0
                    ? options_.statement_timeout +
                          std::min(options_.statement_timeout, std::chrono::milliseconds(5000))
                    : std::chrono::milliseconds(0),
                "the order database") {
  if (options_.pipeline.empty()) throw std::invalid_argument("the sink needs a pipeline name");
  if (options_.applied_by.empty()) options_.applied_by = default_applied_by();
  for (std::size_t i = 0; i < mapping_.tables().size(); ++i) {
    const TableMapping& m = mapping_.tables()[i];
    for (const auto& c : m.columns) {
      if (c.target == "_cdc_stage_op" || c.target == "_cdc_stage_mask") {
        throw std::invalid_argument("target column name " + c.target + " is reserved for the sink's staging");
      }
    }
    auto t = std::make_unique<TableState>();
    t->index = i;
    t->mapping = &m;
    t->target = m.target.quoted();
    t->stage = "pg_temp." + quote_ident("cdcsync_stage_" + std::to_string(i));
    for (const auto& c : m.columns) t->cols.push_back(quote_ident(c.target));
    t->key = m.key_indexes();
    t->lsn_col = quote_ident(m.lsn_column);
    if (m.deletes == DeletePolicy::Soft) t->tomb_col = quote_ident(m.tombstone_column);
    t->fold = TableFold(m);
    tables_.push_back(std::move(t));
  }
}

PostgresSink::~PostgresSink() = default;

void PostgresSink::drop_connection() {
  deadline_.watch(-1);
  conn_.reset();
  in_txn_ = false;
  skipping_chunks_ = false;
  pending_.clear();
  for (auto& t : tables_) {
    t->prepared.clear();
    t->stage_used = false;
    t->fold.clear();
    t->without_toast = 0;
  }
}

PgResult PostgresSink::exec(const std::string& sql, const char* doing, int n, const char* const* values) {
  const auto round_trip = deadline_.round_trip();
  PgResult res{n == 0 ? PQexec(conn_.get(), sql.c_str())
                      : PQexecParams(conn_.get(), sql.c_str(), n, nullptr, values, nullptr, nullptr, 0)};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw sink_error(conn_.get(), res.get(), doing);
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
  PgConn conn = pg_connect_with_defaults(
      options_.conninfo, {{"options", session_options.c_str()}, {"application_name", "cdcsync"}});
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw TransientError("cannot connect to the order database: " + pg_connection_error(conn));
  }
  conn_ = std::move(conn);
  deadline_.watch(PQsocket(conn_.get()));
  error_lsn_ = Lsn{};
  try {
    error_table_ = options_.progress_table.str();
    const std::string lock_name = "cdcsync:" + options_.pipeline;
    if (options_.track_progress) {
      const char* lock_params[] = {lock_name.c_str()};
      auto lock = exec("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "taking the writer lock", 1,
                       lock_params);
      if (std::string_view(PQgetvalue(lock.get(), 0, 0)) != "t") {
        drop_connection();
        throw WriterLockHeld("another cdcsync session holds the writer lock of pipeline " +
                             options_.pipeline);
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
    for (auto& t : tables_) {
      error_table_ = t->mapping->target.str();
      std::string sql = "CREATE TEMP TABLE IF NOT EXISTS " + t->stage + " ON COMMIT DELETE ROWS AS SELECT " +
                        join(t->cols, ", ", "t.") + ", t." + t->lsn_col;
      if (!t->tomb_col.empty()) sql += ", t." + t->tomb_col;
      sql += ", NULL::\"char\" AS _cdc_stage_op, NULL::integer AS _cdc_stage_mask FROM " + t->target +
             " AS t WITH NO DATA";
      exec(sql, "creating the staging table");
      // Staged values are read once and written again into the target, which compresses them as its
      // columns say: compressing them in staging too (the types' default EXTENDED) only costs CPU.
      const char* stage_params[] = {t->stage.c_str()};
      auto columns = exec(
          "SELECT string_agg(format('ALTER COLUMN %I SET STORAGE EXTERNAL', attname), ', ' ORDER BY attnum) "
          "FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped "
          "AND attstorage IN ('x', 'm')",
          "reading the staging table's columns", 1, stage_params);
      if (!PQgetisnull(columns.get(), 0, 0)) {
        exec("ALTER TABLE " + t->stage + " " + PQgetvalue(columns.get(), 0, 0), "creating the staging table");
      }
      // COPY FROM refuses views and tables with row-level security; those get every row through the stage.
      const char* target_params[] = {t->target.c_str()};
      auto kind = exec(
          "SELECT relkind IN ('r', 'p') AND NOT relrowsecurity FROM pg_catalog.pg_class WHERE oid = "
          "$1::regclass",
          "reading the target table's kind", 1, target_params);
      t->copy_into = std::string_view(PQgetvalue(kind.get(), 0, 0)) == "t";
      read_column_types(*t);
    }
  } catch (const PgError& e) {
    raise(e);
  }
  spdlog::info(
      "order database connected; pipeline {} at {}; large values compressed with {}; COPY in binary for {} "
      "of {} tables",
      options_.pipeline, progress_ ? progress_->end_lsn.str() : std::string("(no progress yet)"),
      toast_compression_, binary_tables().size(), tables_.size());
}

TargetColumnTypes read_target_column_types(PGresult* res) {
  TargetColumnTypes types;
  const auto oid = [&](int r, int c) {
    return static_cast<std::uint32_t>(std::stoul(PQgetvalue(res, r, c)));
  };
  for (int r = 0; r < PQntuples(res); ++r) {
    types[PQgetvalue(res, r, 0)] = {.oid = oid(r, 1),
                                    .shown = PQgetvalue(res, r, 2),
                                    .base = oid(r, 3),
                                    .base_kind = PQgetvalue(res, r, 4)[0],
                                    .element = oid(r, 5),
                                    .element_base = oid(r, 6),
                                    .element_kind = PQgetvalue(res, r, 7)[0]};
  }
  return types;
}

CopyPlan plan_copy(const TableMapping& table, const TargetColumnTypes& types) {
  CopyPlan plan;
  const auto need = [&](const std::string& column, const char* what) {
    const auto it = types.find(column);
    if (it == types.end()) {
      if (plan.text_because.empty()) plan.text_because = std::string(what) + " \"" + column + "\" is missing";
      return BinaryEncoder{};
    }
    const BinaryEncoder b = binary_encoder_of(it->second);
    if (!b.supported() && plan.text_because.empty())
      plan.text_because = std::string(what) + " \"" + column + "\" is " + it->second.shown;
    return b;
  };
  for (const auto& c : table.columns) plan.columns.push_back(need(c.target, "column"));
  // The sink writes the LSN and the tombstone itself, as a pg_lsn and a boolean.
  if (need(table.lsn_column, "LSN column") != BinaryEncoder{BinaryType::PgLsn} && plan.text_because.empty())
    plan.text_because = "LSN column \"" + table.lsn_column + "\" is not pg_lsn";
  if (table.deletes == DeletePolicy::Soft &&
      need(table.tombstone_column, "tombstone column") != BinaryEncoder{BinaryType::Bool} &&
      plan.text_because.empty())
    plan.text_because = "tombstone column \"" + table.tombstone_column + "\" is not boolean";
  return plan;
}

void PostgresSink::read_column_types(TableState& t) {
  t.binary = false;
  t.col_types.assign(t.cols.size(), BinaryEncoder{});
  // Only the set-based method copies rows (the in-order method binds text parameters).
  if (options_.method != ApplyMethod::Copy || options_.copy_format != CopyFormat::Binary || t.binary_refused)
    return;
  const char* params[] = {t.target.c_str()};
  auto res = exec(kTargetColumnTypesQuery, "reading the target table's column types", 1, params);
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
    const auto round_trip = deadline_.round_trip();
    PgResult res{PQexec(conn_.get(), "ROLLBACK")};
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
      drop_connection();
      return;
    }
  }
  in_txn_ = false;
  skipping_chunks_ = false;
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
    return progress_;
  } catch (const PgError& e) {
    raise(e);
  }
}

void PostgresSink::read_progress() {
  error_table_ = options_.progress_table.str();
  const char* params[] = {options_.pipeline.c_str()};
  // FOR NO KEY UPDATE: locking the row writes WAL, so this statement's commit waits for the flush of the
  // WAL (synchronous_commit is never off here), and with it for every commit before it, including those
  // that did not wait for theirs. The row read is durable.
  auto res = exec(
      "SELECT end_lsn::text, xid::text, (extract(epoch FROM commit_time - "
      "'2000-01-01 00:00:00+00'::timestamptz) * 1000000)::bigint::text, acked_lsn::text FROM " +
          options_.progress_table.quoted() + " WHERE pipeline = $1 FOR NO KEY UPDATE",
      "reading the progress row", 1, params);
  unflushed_ = false;
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
    const std::string lsn_text = lsn.str();
    const char* params[] = {options_.pipeline.c_str(), lsn_text.c_str(), options_.applied_by.c_str()};
    exec("INSERT INTO " + options_.progress_table.quoted() +
             " AS p (pipeline, end_lsn, xid, acked_lsn, applied_by) VALUES ($1, '0/0', 0, $2::pg_lsn, $3) "
             "ON CONFLICT (pipeline) DO UPDATE SET acked_lsn = greatest(p.acked_lsn, EXCLUDED.acked_lsn), "
             "updated_at = now()",
         "recording the acknowledged position", 3, params);
    unflushed_ = false;  // the upsert's commit waited for the flush of everything before it
    if (progress_) {
      progress_->acked_lsn = std::max(progress_->acked_lsn, lsn);
    } else {
      progress_ = Progress{.acked_lsn = lsn};
    }
  } catch (const PgError& e) {
    raise(e);
  }
}

bool PostgresSink::already_applied(const TransactionInfo& info) const {
  if (!progress_ || !progress_->end_lsn.valid()) return false;
  if (info.end_lsn.valid()) return info.end_lsn <= progress_->end_lsn;
  // A first chunk knows its commit record's position only: it committed before the progress point.
  return info.final_lsn.valid() && info.final_lsn < progress_->end_lsn;
}

std::optional<Lsn> PostgresSink::apply(const Batch& batch) {
  try {
    return apply_inner(batch, false);
  } catch (const PgError& e) {
    raise(e);
  } catch (const PermanentError&) {
    rollback_quietly();
    throw;
  } catch (const TransientError&) {
    drop_connection();
    throw;
  } catch (const WriterLockHeld&) {
    throw;
  } catch (...) {
    rollback_quietly();
    throw;
  }
}

std::optional<Lsn> PostgresSink::apply_inner(const Batch& batch, bool reconnected) {
  ensure_connected();
  if (!batch.empty() && !batch.transactions.front().first_chunk && !in_txn_ && !skipping_chunks_) {
    throw PermanentError("", batch.transactions.front().info.final_lsn, "",
                         "a continuation chunk arrived without the start of its source transaction");
  }
  std::vector<const Transaction*> todo;
  const TransactionInfo* last_whole = nullptr;
  for (const auto& t : batch.transactions) {
    bool skip;
    if (t.first_chunk) {
      skip = already_applied(t.info);
      skipping_chunks_ = skip && !t.last_chunk;
    } else {
      skip = skipping_chunks_;
      if (t.last_chunk) skipping_chunks_ = false;
    }
    if (skip) {
      if (t.last_chunk) ++stats_.transactions_skipped;
      continue;
    }
    todo.push_back(&t);
    if (t.last_chunk) last_whole = &t.info;
  }

  if (!todo.empty()) {
    error_lsn_ = Lsn{};
    error_table_.clear();
    if (in_txn_) {
      exec(kSavepoint, "opening a savepoint");
    } else {
      try {
        exec(std::string("BEGIN; ") + kSavepoint, "opening the transaction");
      } catch (const PgError& e) {
        // The session died while idle (target restart, idle timeout): nothing was open, so reconnect
        // once, reread the progress and start over.
        if (!e.transient() || reconnected || !batch.transactions.front().first_chunk) throw;
        spdlog::info("order database session lost while idle; reconnecting");
        drop_connection();
        return apply_inner(batch, true);
      }
    }
    in_txn_ = true;
    for (auto& t : tables_) t->without_toast_at_savepoint = t->without_toast;
    if (options_.method == ApplyMethod::Copy) {
      const auto rolled_back = [this] {
        for (auto& t : tables_) {
          t->fold.clear();
          // The rollback may have undone this call's TRUNCATE of rows staged by an earlier chunk of the
          // open transaction: empty the stage before it is used again.
          t->stage_used = true;
          t->without_toast = t->without_toast_at_savepoint;
        }
      };
      while (true) {
        try {
          apply_set_based(todo);
          break;
        } catch (const BinaryRefused& r) {
          exec("ROLLBACK TO SAVEPOINT cdcsync_apply", "rolling back to the savepoint");
          rolled_back();
          for (auto& t : tables_) t->plain_used = false;
          TableState& t = *tables_[r.table];
          t.binary = false;
          t.binary_refused = true;
          ++stats_.binary_refusals;
          spdlog::warn(
              "{}: a value of column {} (source transaction at LSN {}) is not in the form the {} encoder of "
              "COPY's binary format reads; the table is copied as text from now on",
              t.mapping->target.str(), t.cols[r.column], r.lsn.str(), name_of(t.col_types[r.column]));
          continue;
        } catch (const PgError& e) {
          if (e.transient()) throw;
          exec("ROLLBACK TO SAVEPOINT cdcsync_apply", "rolling back to the savepoint");
          rolled_back();
          const bool conflict =
              e.sqlstate() == "23505" &&
              std::any_of(tables_.begin(), tables_.end(), [](const auto& t) { return t->plain_used; });
          // COPY FROM refused (row-level security enabled since the session began): stage from now on.
          const bool copy_refused = e.sqlstate() == "0A000" &&
                                    std::any_of(tables_.begin(), tables_.end(),
                                                [](const auto& t) { return t->plain_used && t->copy_into; });
          for (auto& t : tables_) {
            if (conflict && t->plain_used) t->upsert_only = kUpsertOnlyFlushes;
            if (copy_refused && t->plain_used) t->copy_into = false;
            t->plain_used = false;
          }
          if (copy_refused) {
            spdlog::info("COPY into {} refused; its rows go through the staging table from now on",
                         error_table_);
            continue;
          }
          if (conflict) {
            // A row inserted as new already existed (its first change in the batch was an insert): apply
            // the batch again with upserts, which the LSN guard makes exact.
            spdlog::info(
                "a key inserted in the batch already existed in {}; applying the batch again with "
                "upserts",
                error_table_);
            ++stats_.plain_insert_conflicts;
            if (options_.observer.apply_fallback)
              options_.observer.apply_fallback(error_table_, "existing_key");
            continue;
          }
          // The folded order tripped a constraint (or two texts of one key value met): replay change by
          // change in source order, which also names the exact source transaction if it fails again.
          spdlog::warn("set-based apply failed on {} (SQLSTATE {}); replaying the batch in source order",
                       error_table_, e.sqlstate());
          ++stats_.replays_in_order;
          if (options_.observer.apply_fallback)
            options_.observer.apply_fallback(error_table_, "replay_in_order");
          apply_in_order(todo);
          break;
        }
      }
    } else {
      apply_in_order(todo);
    }
    // Inside a chunked source transaction, merge this call's savepoint into the transaction.
    if (!batch.ends_whole()) exec("RELEASE SAVEPOINT cdcsync_apply", "releasing the savepoint");
    for (const auto* t : todo) {
      stats_.changes_applied += t->changes.size();
      if (t->last_chunk) ++stats_.transactions_applied;
    }
  }

  if (!batch.ends_whole()) return std::nullopt;
  if (in_txn_) {
    if (last_whole == nullptr)
      throw std::logic_error("open transaction without a finished source transaction");
    write_progress(*last_whole);
    error_table_ = options_.progress_table.str();
    // A backlog follows this batch (Batch::durable false): its commit need not wait for the flush; a later
    // one's does, and nothing past the last flushed commit is returned (so confirmed) before it.
    const bool wait_for_flush = batch.durable || !options_.track_progress;
    exec(wait_for_flush ? "COMMIT" : "SET LOCAL synchronous_commit = off; COMMIT", "committing");
    in_txn_ = false;
    if (wait_for_flush) {
      unflushed_ = false;
    } else {
      unflushed_ = true;
      ++stats_.commits_unflushed;
    }
    for (auto& t : tables_) {
      t->stage_used = false;
      if (t->without_toast > 0 && options_.observer.inserted_without_toast) {
        options_.observer.inserted_without_toast(t->mapping->target.str(), t->without_toast);
      }
      t->without_toast = 0;
    }
    if (!options_.track_progress) return last_whole->end_lsn;
    const Lsn acked = progress_ ? std::max(progress_->acked_lsn, last_whole->end_lsn) : last_whole->end_lsn;
    progress_ = Progress{last_whole->end_lsn, last_whole->xid, last_whole->commit_time_us, acked};
  } else if (batch.durable && unflushed_) {
    // Nothing left to commit (every transaction was applied before), but the caller wants what was
    // committed durable.
    read_progress();
    ++stats_.syncs;
  }
  if (unflushed_) return std::nullopt;
  return progress_ ? progress_->end_lsn : Lsn{};
}

void PostgresSink::write_progress(const TransactionInfo& info) {
  if (!options_.track_progress) return;
  error_table_ = options_.progress_table.str();
  error_lsn_ = info.end_lsn;
  const std::string lsn = info.end_lsn.str();
  const std::string xid = std::to_string(info.xid.value);
  const std::string commit_time = std::to_string(info.commit_time_us);
  const char* params[] = {options_.pipeline.c_str(), lsn.c_str(), xid.c_str(), commit_time.c_str(),
                          options_.applied_by.c_str()};
  exec("INSERT INTO " + options_.progress_table.quoted() +
           " AS p (pipeline, end_lsn, xid, commit_time, acked_lsn, applied_by, updated_at) VALUES ($1, "
           "$2::pg_lsn, $3::bigint, '2000-01-01 00:00:00+00'::timestamptz + $4::bigint * interval '1 "
           "microsecond', $2::pg_lsn, $5, now()) ON CONFLICT (pipeline) DO UPDATE SET end_lsn = "
           "EXCLUDED.end_lsn, xid = EXCLUDED.xid, commit_time = EXCLUDED.commit_time, acked_lsn = "
           "greatest(p.acked_lsn, EXCLUDED.end_lsn), applied_by = EXCLUDED.applied_by, updated_at = now()",
       "writing the progress row", 5, params);
}

const BoundTable* PostgresSink::bind(const RelationPtr& relation, Lsn txn_lsn) {
  const BoundTable* b = binder_.bind(relation, txn_lsn);
  for (const auto& d : binder_.take_new_drift()) {
    spdlog::warn("source table {} has column {} that is not mapped: it is not forwarded", d.table, d.column);
    if (options_.on_drift) options_.on_drift(d.table, d.column);
  }
  return b;
}

void PostgresSink::apply_set_based(const std::vector<const Transaction*>& txns) {
  for (auto& t : tables_) t->plain_used = false;
  for (const Transaction* txn : txns) {
    // The commit LSN: the rows' version, and what names the source transaction in errors.
    const Lsn lsn = txn->info.final_lsn;
    error_lsn_ = lsn;
    for (const Change& c : txn->changes) {
      switch (c.op) {
        case ChangeOp::Insert:
        case ChangeOp::Update:
        case ChangeOp::Delete:
          if (const BoundTable* b = bind(c.relation, lsn))
            tables_[b->table]->fold.add(*b, c, lsn, txn->info.snapshot);
          break;
        case ChangeOp::Truncate:
          flush_all();
          apply_truncate(c, lsn, false);
          break;
        case ChangeOp::Message:
          break;
      }
    }
  }
  error_lsn_ = Lsn{};
  flush_all();
}

void PostgresSink::flush_all() {
  for (std::size_t i = 0; i < tables_.size(); ++i) flush_table(i);
}

void PostgresSink::flush_table(std::size_t index) {
  TableState& t = *tables_[index];
  if (t.fold.empty()) return;
  error_table_ = t.mapping->target.str();
  const bool plain_ok = t.upsert_only == 0;
  if (t.upsert_only > 0) --t.upsert_only;
  // When every row is a key new to the source with all its columns (a bulk load, new rows with large
  // values), the rows are copied straight into the target: no stage to write, read back and (for TOASTed
  // values) store twice. An existing key fails the COPY like the plain INSERT below (unique violation),
  // and the call is applied again with upserts.
  const bool direct =
      plain_ok && t.copy_into && std::all_of(t.fold.rows().begin(), t.fold.rows().end(), [](const auto& row) {
        return row.action == RowAction::Upsert && row.fresh && !row.has_absent;
      });
  if (direct) t.plain_used = true;
  if (!direct && t.stage_used) exec("TRUNCATE " + t.stage, "emptying the staging table");

  // COPY streams: the rows go out in pieces of about kCopyPiece bytes while they are written, so the buffer
  // stays small and no value is copied more than once on its way out.
  const char* const what = direct ? "copying new rows into the target" : "staging rows";
  const bool binary = t.binary;
  const std::string copy_sql =
      (direct ? "COPY " + t.target + " (" + t.row_columns() + ") FROM STDIN"
              : "COPY " + t.stage + " (" + t.row_columns() + ", _cdc_stage_op, _cdc_stage_mask) FROM STDIN") +
      (binary ? " (FORMAT binary)" : "");
  const auto round_trip = deadline_.round_trip();
  PgResult res{PQexec(conn_.get(), copy_sql.c_str())};
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_IN) throw sink_error(conn_.get(), res.get(), what);
  const auto put = [&] {
    if (PQputCopyData(conn_.get(), copy_buffer_.data(), static_cast<int>(copy_buffer_.size())) != 1)
      throw sink_error(conn_.get(), nullptr, what);
    copy_buffer_.clear();
  };
  // A value its column's binary encoder refused: end the COPY with an error; the caller applies the call
  // again with the table in text.
  const auto refuse = [&](std::size_t column, Lsn lsn) {
    copy_buffer_.clear();
    if (PQputCopyEnd(conn_.get(), "cdcsync: a value not in the form its binary encoder reads") != 1)
      throw sink_error(conn_.get(), nullptr, what);
    while (PgResult ended{PQgetResult(conn_.get())}) {
    }
    throw BinaryRefused{index, column, lsn};
  };

  // Masks of rows with unchanged-TOAST columns get their own statement (their SET lists differ).
  std::map<std::string, int> masks;
  bool any_delete = false;
  bool any_upsert = false;
  std::size_t plain = 0;
  copy_buffer_.clear();
  const std::size_t ncols = t.fold.columns();
  const std::size_t fields = ncols + 1 + (t.tomb_col.empty() ? 0 : 1) + (direct ? 0 : 2);
  if (binary) append_copy_binary_header(copy_buffer_);
  for (std::size_t r : t.fold.apply_order()) {
    const FoldedRow& row = t.fold.rows()[r];
    int mask_id = 0;
    if (row.action == RowAction::Upsert && row.has_absent) {
      t.mask_scratch.assign(ncols, '1');
      for (std::size_t c = 0; c < ncols; ++c) {
        if (t.fold.value(row, c).state == ValueState::Absent) t.mask_scratch[c] = '0';
      }
      mask_id = masks.try_emplace(t.mask_scratch, static_cast<int>(masks.size()) + 1).first->second;
    }
    if (binary) {
      append_copy_binary_row(copy_buffer_, fields);
      for (std::size_t c = 0; c < ncols; ++c) {
        const auto& v = t.fold.value(row, c);
        if (v.state != ValueState::Value)
          append_copy_binary_null(copy_buffer_);
        else if (!append_copy_binary(copy_buffer_, t.col_types[c], t.fold.text(v)))
          refuse(c, row.lsn);
      }
      append_copy_binary_lsn(copy_buffer_, row.lsn.value());
      if (!t.tomb_col.empty()) append_copy_binary_bool(copy_buffer_, row.tombstone);
    } else {
      for (std::size_t c = 0; c < ncols; ++c) {
        const auto& v = t.fold.value(row, c);
        if (v.state == ValueState::Value)
          append_copy_text(copy_buffer_, t.fold.text(v));
        else
          copy_buffer_ += "\\N";
        copy_buffer_.push_back('\t');
      }
      append_lsn(copy_buffer_, row.lsn);
      if (!t.tomb_col.empty()) copy_buffer_ += row.tombstone ? "\tt" : "\tf";
    }
    if (direct) {
      if (!binary) copy_buffer_.push_back('\n');
      ++plain;
      if (copy_buffer_.size() >= kCopyPiece) put();
      continue;
    }
    // 'i': a key new to the source, inserted without ON CONFLICT (no arbiter probe, no speculative
    // insertion); 'u': upserted under the LSN guard; 'd': deleted under it.
    const bool as_new = plain_ok && row.action == RowAction::Upsert && row.fresh && mask_id == 0;
    const char op = row.action == RowAction::Delete ? 'd' : as_new ? 'i' : 'u';
    if (binary) {
      append_copy_binary_char(copy_buffer_, op);
      append_copy_binary_int4(copy_buffer_, mask_id);
    } else {
      const char text[] = {'\t', op, '\t'};
      copy_buffer_.append(text, 3);
      copy_buffer_ += std::to_string(mask_id);
      copy_buffer_.push_back('\n');
    }
    any_delete = any_delete || row.action == RowAction::Delete;
    any_upsert = any_upsert || (row.action == RowAction::Upsert && !as_new);
    plain += as_new ? 1 : 0;
    if (copy_buffer_.size() >= kCopyPiece) put();
  }
  if (binary) append_copy_binary_trailer(copy_buffer_);
  if (!copy_buffer_.empty()) put();
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) throw sink_error(conn_.get(), nullptr, what);
  res.reset(PQgetResult(conn_.get()));
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) throw sink_error(conn_.get(), res.get(), what);
  while (PgResult extra{PQgetResult(conn_.get())}) {
  }
  // A piece that grew past a wide row's size is not kept for the next batch.
  if (copy_buffer_.capacity() > 4 * kCopyPiece) std::string().swap(copy_buffer_);
  if (binary) ++stats_.binary_copies;
  if (direct) {
    ++stats_.direct_copies;
    stats_.rows_written += t.fold.size();
    stats_.rows_inserted_as_new += plain;
    t.fold.clear();
    return;
  }
  t.stage_used = true;

  std::string sql;
  if (any_delete) {
    sql += "DELETE FROM " + t.target + " AS t USING " + t.stage + " AS s WHERE s._cdc_stage_op = 'd'";
    for (std::size_t k : t.key) sql += " AND t." + t.cols[k] + " = s." + t.cols[k];
    sql += " AND t." + t.lsn_col + " <= s." + t.lsn_col + "; ";
  }
  if (plain > 0) {
    sql += "INSERT INTO " + t.target + " (" + t.row_columns() + ") SELECT " + t.row_columns() + " FROM " +
           t.stage + " WHERE _cdc_stage_op = 'i'; ";
    t.plain_used = true;
  }
  if (any_upsert) {
    sql += "INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") SELECT " + t.row_columns() +
           " FROM " + t.stage + " WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = 0 ORDER BY " + t.lsn_col +
           t.conflict_clause("");
  }
  exec(sql, "applying rows");
  for (const auto& [mask, id] : masks) {
    std::string counted =
        "WITH w AS (INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") SELECT " + t.row_columns() +
        " FROM " + t.stage + " WHERE _cdc_stage_op = 'u' AND _cdc_stage_mask = " + std::to_string(id) +
        " ORDER BY " + t.lsn_col + t.conflict_clause(mask) + " RETURNING (t.xmax = 0) AS ins" +
        (t.tomb_col.empty() ? std::string(", false AS tomb") : ", t." + t.tomb_col + " AS tomb") +
        ") SELECT count(*) FILTER (WHERE ins AND NOT tomb) FROM w";
    auto r = exec(counted, "applying rows with unchanged TOAST columns");
    const std::uint64_t without_toast = std::stoull(PQgetvalue(r.get(), 0, 0));
    stats_.inserted_without_toast += without_toast;
    t.without_toast += without_toast;
  }
  stats_.rows_written += t.fold.size();
  stats_.rows_inserted_as_new += plain;
  t.fold.clear();
}

void PostgresSink::apply_truncate(const Change& change, Lsn txn_lsn, bool pipelined) {
  for (const auto& rel : change.truncated) {
    const BoundTable* b = bind(rel, txn_lsn);
    if (b == nullptr) continue;
    const TableMapping& m = *b->mapping;
    TableState& t = *tables_[b->table];
    error_table_ = m.target.str();
    error_lsn_ = txn_lsn;
    if (m.truncates == TruncatePolicy::Ignore) continue;
    if (m.truncates == TruncatePolicy::Fail) {
      throw PermanentError(m.source.str(), txn_lsn, "",
                           "TRUNCATE of source table " + m.source.str() + " (truncate = fail)");
    }
    // DELETE, not TRUNCATE: the target role has no TRUNCATE privilege. Guarded like every write.
    const std::string sql = t.tomb_col.empty()
                                ? "DELETE FROM " + t.target + " AS t WHERE t." + t.lsn_col + " <= $1::pg_lsn"
                                : "UPDATE " + t.target + " AS t SET " + t.tomb_col + " = true, " + t.lsn_col +
                                      " = $1::pg_lsn WHERE t." + t.lsn_col + " <= $1::pg_lsn";
    const std::string lsn = txn_lsn.str();
    const char* params[] = {lsn.c_str()};
    if (pipelined) {
      if (PQsendQueryParams(conn_.get(), sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0) != 1) {
        throw sink_error(conn_.get(), nullptr, "sending a truncate");
      }
      pending_.push_back({b->table, txn_lsn});
    } else {
      exec(sql, "applying a truncate", 1, params);
    }
    ++stats_.truncates_applied;
  }
}

void PostgresSink::send_row(TableState& t, const FoldedRow& row, Lsn txn_lsn) {
  const std::size_t ncols = t.fold.columns();
  params_.clear();
  t.offsets.clear();
  auto add_param = [&](std::optional<std::string_view> v) {
    if (!v) {
      t.offsets.push_back(SIZE_MAX);
      return;
    }
    t.offsets.push_back(params_.size());
    params_.append(*v);
    params_.push_back('\0');
  };
  std::string name = "cdcsync_" + std::to_string(t.index);
  if (row.action == RowAction::Delete) {
    name += "_d";
    for (std::size_t k : t.key) add_param(t.fold.text(t.fold.value(row, k)));
  } else {
    t.mask_scratch.assign(ncols, '1');
    for (std::size_t c = 0; c < ncols; ++c) {
      const auto& v = t.fold.value(row, c);
      if (v.state == ValueState::Absent) t.mask_scratch[c] = '0';
      add_param(v.state == ValueState::Value ? std::optional<std::string_view>(t.fold.text(v))
                                             : std::nullopt);
    }
    name += "_u";
    if (row.has_absent) name += "_" + t.mask_scratch;
  }
  const std::string lsn = row.lsn.str();
  add_param(lsn);
  if (row.action == RowAction::Upsert && !t.tomb_col.empty()) add_param(row.tombstone ? "t" : "f");
  const int n = static_cast<int>(t.offsets.size());

  if (!t.prepared.contains(name)) {
    std::string sql;
    if (row.action == RowAction::Delete) {
      sql = "DELETE FROM " + t.target + " AS t WHERE ";
      int i = 1;
      for (std::size_t k : t.key) sql += "t." + t.cols[k] + " = $" + std::to_string(i++) + " AND ";
      sql += "t." + t.lsn_col + " <= $" + std::to_string(i);
    } else {
      sql = "INSERT INTO " + t.target + " AS t (" + t.row_columns() + ") VALUES (";
      for (int i = 1; i <= n; ++i) sql += (i > 1 ? ", $" : "$") + std::to_string(i);
      sql += ")" + t.conflict_clause(row.has_absent ? t.mask_scratch : std::string());
    }
    if (PQsendPrepare(conn_.get(), name.c_str(), sql.c_str(), n, nullptr) != 1) {
      throw sink_error(conn_.get(), nullptr, "preparing a statement");
    }
    pending_.push_back({t.index, txn_lsn});
    t.prepared.insert(name);
  }
  param_ptrs_.clear();
  for (std::size_t off : t.offsets) param_ptrs_.push_back(off == SIZE_MAX ? nullptr : params_.data() + off);
  if (PQsendQueryPrepared(conn_.get(), name.c_str(), n, param_ptrs_.data(), nullptr, nullptr, 0) != 1) {
    throw sink_error(conn_.get(), nullptr, "sending a row");
  }
  pending_.push_back({t.index, txn_lsn});
  if (pending_.size() >= kPipelineDepth) sync_and_drain();
}

void PostgresSink::sync_and_drain() {
  if (pending_.empty()) return;
  const auto round_trip = deadline_.round_trip();
  if (PQpipelineSync(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "syncing the pipeline");
  std::optional<PgError> first;
  for (const Pending& p : pending_) {
    PgResult r{PQgetResult(conn_.get())};
    deadline_.touch();
    if (!r) throw sink_error(conn_.get(), nullptr, "reading pipelined results");
    if (PQresultStatus(r.get()) == PGRES_FATAL_ERROR && !first) {
      error_table_ = tables_[p.table]->mapping->target.str();
      error_lsn_ = p.lsn;
      first = sink_error(conn_.get(), r.get(), "applying a change to " + error_table_);
    }
    PgResult end{PQgetResult(conn_.get())};  // each queued query's results end with a null
  }
  PgResult sync{PQgetResult(conn_.get())};
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
    throw sink_error(conn_.get(), sync.get(), "reading the pipeline sync");
  }
  pending_.clear();
  if (first) {
    if (first->transient()) throw *first;
    // Leave pipeline mode (the connection is idle now) so the caller can roll back.
    PQexitPipelineMode(conn_.get());
    throw *first;
  }
}

void PostgresSink::apply_in_order(const std::vector<const Transaction*>& txns) {
  if (PQenterPipelineMode(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "entering pipeline mode");
  for (const Transaction* txn : txns) {
    // The commit LSN: the rows' version, and what names the source transaction in errors.
    const Lsn lsn = txn->info.final_lsn;
    for (const Change& c : txn->changes) {
      switch (c.op) {
        case ChangeOp::Insert:
        case ChangeOp::Update:
        case ChangeOp::Delete: {
          const BoundTable* b = bind(c.relation, lsn);
          if (b == nullptr) break;
          TableState& t = *tables_[b->table];
          t.fold.clear();
          t.fold.add(*b, c, lsn);
          for (std::size_t r : t.fold.apply_order()) send_row(t, t.fold.rows()[r], lsn);
          stats_.rows_written += t.fold.size();
          t.fold.clear();
          break;
        }
        case ChangeOp::Truncate:
          apply_truncate(c, lsn, true);
          if (pending_.size() >= kPipelineDepth) sync_and_drain();
          break;
        case ChangeOp::Message:
          break;
      }
    }
  }
  sync_and_drain();
  if (PQexitPipelineMode(conn_.get()) != 1) throw sink_error(conn_.get(), nullptr, "leaving pipeline mode");
}

}  // namespace cdcsync
