// The order-DB sink: LSN-guarded upserts of mapped columns plus the progress row, one target transaction
// per batch (or per source transaction, when it arrives in chunks).
//
// Connection: the conninfo plus `options=-csearch_path=` (every identifier is schema-qualified and quoted;
// values travel only as parameters or COPY data). At connect the sink takes a session advisory lock
// (`pg_try_advisory_lock(hashtextextended('cdcsync:' || pipeline, 0))`): a second writer gets
// WriterLockHeld. It then reads the progress row, creates one TEMP staging table per mapped table and
// keeps the progress in memory after each commit.
//
// Table floors: a table copied by the bulk loader at snapshot LSN S (its row in the load state beside the
// progress row, sinks/load_state.h) skips the changes of source transactions that committed before S: they
// are in its copy. Read at connect and by load_progress().
//
// Apply: BEGIN; SAVEPOINT; for every source transaction above the durable progress, fold its changes per
// table and key (sinks/fold.h); per table COPY the folded rows into the staging table, then one
// `DELETE … USING staging` and one `INSERT … SELECT … ORDER BY lsn ON CONFLICT (key) DO UPDATE … WHERE
// t._cdc_lsn <= EXCLUDED._cdc_lsn`; upsert the progress row; COMMIT. When the set-based statements fail
// with a non-transient error (a secondary unique constraint tripped by the folded order, two texts of the
// same key value), the sink rolls back to the savepoint and replays the same changes one by one in source
// order (pipelined prepared statements): that is the ground truth, and its error names the exact source
// transaction.
//
// Errors: transient (PgError::transient) → the connection is dropped and TransientError thrown; the next
// call reconnects and rereads the progress row, which also resolves an in-doubt COMMIT. Anything else →
// ROLLBACK and PermanentError{table, source transaction end LSN (final LSN while chunked), SQLSTATE,
// primary message + constraint name}; never DETAIL (it holds key values).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/memory_budget.h"
#include "decoders/pg.h"
#include "sinks/copy_binary.h"
#include "sinks/fold.h"
#include "sinks/mapping.h"
#include "sinks/policy.h"
#include "sinks/sink.h"
#include "sinks/skip_applied.h"

namespace cdcsync {

// Another session holds the pipeline's writer lock: stand by, do not write.
class WriterLockHeld : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ApplyMethod : std::uint8_t {
  Copy,      // fold per key, COPY into staging, set-based statements (default, fastest)
  Pipeline,  // one prepared statement per change, libpq pipeline mode (also the fallback path)
};

// The error of a failed result on the order DB without DETAIL, with the constraint's name when the server
// gave one; a data exception's quoted value is left out (the sink's and the bulk loader's target errors).
PgError sink_error(PGconn* conn, const PGresult* res, std::string_view doing);

// What the daemon's metrics count; called on the applying thread.
struct PostgresSinkObserver {
  // Rows inserted with an unchanged-TOAST column left NULL (the change did not carry the value and the target
  // had no row to keep it from), per target table, once their transaction committed.
  std::function<void(const std::string& table, std::uint64_t rows)> inserted_without_toast;
  // A batch's set-based apply fell back on `table`: "existing_key" (a key inserted as new was there already:
  // applied again with upserts) or "replay_in_order" (a statement failed: replayed change by change).
  std::function<void(const std::string& table, std::string_view reason)> apply_fallback;
};

// What the session's default_toast_compression becomes for `wanted`, given the server's `setting`, its
// pg_settings.source and whether the server has lz4. `lz4_missing`: lz4 was asked for and the server lacks it
// (the server's setting is kept).
struct ToastCompressionChoice {
  std::string method;
  bool lz4_missing = false;
};
ToastCompressionChoice choose_toast_compression(ToastCompression wanted, std::string_view setting,
                                                std::string_view source, bool has_lz4);
// setting, source, has lz4 ('t'/'f'); no row before PostgreSQL 14 (pglz is then the only method).
inline constexpr const char* kToastCompressionSettingsQuery =
    "SELECT setting, source, 'lz4' = ANY(enumvals) FROM pg_catalog.pg_settings WHERE name = "
    "'default_toast_compression'";

// The synchronous_commit of the sink's session given the server's setting for its role and database: a batch
// is confirmed once its commit returned, so that commit must wait for the flush. "off" becomes "local"
// (this server's disk only: no standby wait nobody configured); the others are kept.
inline std::string session_synchronous_commit(std::string_view setting) {
  return setting == "off" ? std::string("local") : std::string(setting);
}

// A target table's columns by name, from kTargetColumnTypesQuery ($1: the table's quoted name): each type,
// its base under any domains, and an array's element type (array_recv is its receive function).
using TargetColumnTypes = std::map<std::string, ColumnType, std::less<>>;
inline constexpr const char* kTargetColumnTypesQuery =
    "WITH RECURSIVE cols AS ("
    " SELECT attname, atttypid, pg_catalog.format_type(atttypid, atttypmod) AS shown"
    " FROM pg_catalog.pg_attribute WHERE attrelid = $1::pg_catalog.regclass AND attnum > 0 AND NOT "
    "attisdropped),"
    " chain AS ("
    " SELECT t.oid AS start, t.oid, t.typtype, t.typbasetype, t.typelem, t.typreceive, 0 AS depth"
    " FROM pg_catalog.pg_type t WHERE t.oid IN (SELECT atttypid FROM cols)"
    " UNION ALL SELECT c.start, t.oid, t.typtype, t.typbasetype, t.typelem, t.typreceive, c.depth + 1"
    " FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.typbasetype WHERE c.typtype = 'd' AND c.depth < "
    "32),"
    " base AS (SELECT start, oid, typtype, CASE WHEN typreceive = 'pg_catalog.array_recv'::pg_catalog.regproc"
    " THEN typelem ELSE 0 END AS elem FROM chain WHERE typtype <> 'd'),"
    " echain AS ("
    " SELECT t.oid AS start, t.oid, t.typtype, t.typbasetype, 0 AS depth"
    " FROM pg_catalog.pg_type t WHERE t.oid IN (SELECT elem FROM base)"
    " UNION ALL SELECT c.start, t.oid, t.typtype, t.typbasetype, c.depth + 1"
    " FROM echain c JOIN pg_catalog.pg_type t ON t.oid = c.typbasetype WHERE c.typtype = 'd' AND c.depth < "
    "32),"
    " ebase AS (SELECT start, oid, typtype FROM echain WHERE typtype <> 'd')"
    " SELECT c.attname, c.atttypid, c.shown, b.oid, b.typtype, b.elem, coalesce(e.oid, 0),"
    " coalesce(e.typtype, 'b') FROM cols c JOIN base b ON b.start = c.atttypid"
    " LEFT JOIN ebase e ON e.start = b.elem";
TargetColumnTypes read_target_column_types(PGresult* res);

// How a table's rows are copied under CopyFormat::Binary: the encoder of each mapped column, or why the
// table is copied as text (a column, the LSN column or the tombstone column without an encoder, or missing).
struct CopyPlan {
  std::vector<BinaryEncoder> columns;  // mapping order
  std::string text_because;            // empty: binary
  bool binary() const { return text_because.empty(); }
};
CopyPlan plan_copy(const TableMapping& table, const TargetColumnTypes& types);

struct PostgresSinkOptions {
  std::string conninfo;  // libpq conninfo or URI; never logged
  std::string pipeline;  // the progress row's key, also the writer lock's name
  QualifiedName progress_table{"ref", "cdc_progress"};
  std::string applied_by;  // audit value for the progress row; default "cdcsync@<host>:<pid>"
  ApplyMethod method = ApplyMethod::Copy;
  // Called once per session for each source column found unmapped (schema drift; names only), on the
  // applying thread: cdcsync_schema_drift_columns_total{table}.
  std::function<void(const std::string& table, const std::string& column)> on_drift;
  PostgresSinkObserver observer;
  // statement_timeout of the session (0: the server's default); a batch that takes longer fails as a
  // transient error and is retried. When set, a reply that has not come statement_timeout + min(it, 5 s)
  // after its statement was sent means a dead connection (the reply deadline, decoders/pg_link.h):
  // reconnect. 0: the process's default deadline (network.reply_timeout_ms).
  std::chrono::milliseconds statement_timeout{0};
  ToastCompression toast_compression = ToastCompression::Auto;
  CopyFormat copy_format = CopyFormat::Binary;
  // A batch of whole source transactions with at most this many changes (none a TRUNCATE or carrying an
  // unchanged TOAST value) goes in one round trip: BEGIN, one prepared upsert or delete per change under the
  // LSN guard, the progress row and COMMIT, queued in pipeline mode behind one sync. The set-based path
  // takes four (BEGIN, COPY, its rows, COMMIT). 0: every batch takes the set-based (or in-order) path.
  std::size_t one_trip_max_changes = 0;
  // false for re-applying dead-lettered transactions next to a running daemon: no writer lock, the progress
  // row is neither read nor written and nothing is skipped; rows still pass the LSN guard.
  bool track_progress = true;
  // memory.limit_bytes: the COPY buffer counts against it (null: not counted).
  MemoryBudget* memory = nullptr;
};

struct PostgresSinkStats {
  std::uint64_t transactions_applied = 0;
  std::uint64_t transactions_skipped = 0;  // at or below the durable progress
  std::uint64_t changes_applied = 0;
  std::uint64_t rows_written = 0;            // folded rows sent to the target
  std::uint64_t inserted_without_toast = 0;  // rows inserted with an unchanged-TOAST column left NULL
  std::uint64_t replays_in_order = 0;        // set-based apply fell back to change-by-change
  std::uint64_t rows_inserted_as_new = 0;  // folded rows inserted without ON CONFLICT (see FoldedRow::fresh)
  std::uint64_t plain_insert_conflicts = 0;  // ... of which one met an existing key: batch applied again
  std::uint64_t direct_copies = 0;    // flushes whose rows were all new: copied into the target, no stage
  std::uint64_t binary_copies = 0;    // COPY statements (stage or target) in the binary format
  std::uint64_t binary_refusals = 0;  // tables switched to text (until restart) by a value no encoder took
  std::uint64_t truncates_applied = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t commits_unflushed = 0;   // commits that did not wait for their flush (Batch::durable false)
  std::uint64_t syncs = 0;               // sync() calls that flushed such commits
  std::uint64_t one_trip_batches = 0;    // batches applied and committed in one round trip
  std::uint64_t one_trip_fallbacks = 0;  // ... that failed and were applied again the usual way
};

class PostgresSink final : public Sink {
 public:
  // Does not connect; the first call that needs the target does. Throws std::invalid_argument when the
  // pipeline name is empty.
  PostgresSink(Mapping mapping, PostgresSinkOptions options);
  ~PostgresSink() override;
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // Connects now (lock, progress, staging tables). Throws WriterLockHeld, TransientError, PermanentError.
  void connect();
  bool connected() const { return conn_ != nullptr; }

  std::optional<Lsn> apply(const Batch& batch) override;
  void abort() override;
  // The committed row, re-read from the target when no transaction is open; a row written only by
  // record_ack (end_lsn 0/0) is returned too, so the caller sees acked_lsn.
  std::optional<Progress> load_progress() override;
  // Autocommit upsert: acked_lsn = greatest(acked_lsn, lsn); inserts the row (end_lsn 0/0) if missing.
  // Throws std::logic_error inside an open chunked transaction.
  void record_ack(Lsn lsn) override;
  // After commits that did not wait for their flush: re-reads the progress row under a row lock, whose
  // commit waits for the WAL flush and so makes every earlier commit durable.
  std::optional<Lsn> sync() override;
  // Reads the order server's WAL flush position (pg_current_wal_flush_lsn) against the WAL position after
  // each commit that did not wait for its flush.
  std::optional<Lsn> flushed() override;
  ApplyTimings last_timings() const override { return timings_; }

  const PostgresSinkStats& stats() const { return stats_; }
  // The session's default_toast_compression once connected ("lz4" or "pglz"); empty before.
  const std::string& toast_compression() const { return toast_compression_; }
  // The session's synchronous_commit once connected: the server's, or "local" where it was "off".
  const std::string& synchronous_commit() const { return synchronous_commit_; }
  // Target tables copied in the binary format, by their quoted names, once connected.
  std::vector<std::string> binary_tables() const;
  // Distinct unmapped source columns (schema drift) per source table: never forwarded; the sink logs each
  // new one once (names only).
  std::map<std::string, std::uint64_t> drift_counts() const { return binder_.drift_counts(); }

 private:
  // Split by role over postgres_sink.cpp (a batch's transaction), postgres_sink_session.cpp (the session,
  // settings and the progress row), postgres_sink_copy.cpp (the set-based path) and
  // postgres_sink_in_order.cpp (the in-order path); postgres_sink_table.h holds what they share.
  struct TableState;
  struct StagedRows;
  struct Pending {
    std::size_t table;
    Lsn lsn;
  };

  // A batch's target transaction.
  std::optional<Lsn> apply_inner(const Batch& batch, bool reconnected);
  // After the batch's last whole transaction committed: the progress kept, what apply() returns.
  std::optional<Lsn> committed(const TransactionInfo& last_whole);
  bool open_savepoint(const Batch& batch, bool reconnected);
  void apply_set_based_or_fall_back(const std::vector<const Transaction*>& txns);
  void roll_back_to_savepoint();
  bool retry_after_failure(const PgError& e);
  void commit(const Batch& batch, const TransactionInfo& last_whole);
  std::string progress_statement(const TransactionInfo& info);
  // The progress row's upsert, `values` being its pipeline, end_lsn, xid, commit_time, acked_lsn and
  // applied_by as SQL (literals, or parameters of a prepared statement).
  std::string progress_upsert(const std::string& values) const;
  const BoundTable* bind(const RelationPtr& relation, Lsn txn_lsn);

  // The set-based path: fold, COPY into the stage (or the target), set-based statements.
  void apply_set_based(const std::vector<const Transaction*>& txns);
  void flush_all();
  void flush_table(std::size_t table);
  StagedRows copy_rows(std::size_t table, bool direct, bool plain_ok);
  void put_copy_data(const char* what);
  // Sends `bytes` to the open COPY in pieces of at most kCopyPiece, so libpq's output buffer stays that size.
  void put_copy_bytes(std::string_view bytes, const char* what);
  [[noreturn]] void refuse_copy(std::size_t table, std::size_t column, Lsn lsn, const char* what);
  void apply_staged(TableState& t, const StagedRows& staged);

  // The in-order path: one prepared statement per change, pipelined.
  void apply_in_order(const std::vector<const Transaction*>& txns);
  void apply_truncate(const Change& change, Lsn txn_lsn, bool pipelined);
  void send_row(TableState& t, const FoldedRow& row, Lsn txn_lsn);
  void sync_and_drain();
  // The in-order path's statements for `txns`, queued in pipeline mode (already entered).
  void send_in_order(const std::vector<const Transaction*>& txns);
  // One round trip (PostgresSinkOptions::one_trip_max_changes): whether the batch qualifies, and the trip.
  // false from apply_in_one_trip: a statement failed; the transaction was rolled back and nothing is open.
  bool fits_one_trip(const Batch& batch, const std::vector<const Transaction*>& txns) const;
  bool apply_in_one_trip(const Batch& batch, const std::vector<const Transaction*>& txns,
                         const TransactionInfo& last_whole);

  // The session.
  void ensure_connected();
  void create_stage(TableState& t);
  void set_toast_compression();
  void set_synchronous_commit();
  // A COMMIT went through (the transaction is closed): with `positions` (the server's WAL insert and flush
  // positions read after it) it is kept as not yet flushed; without, it waited for its flush.
  void committed_at(const PGresult* positions, Lsn end_lsn);
  // The order server has flushed its WAL up to `flush`: the commits at or below it are durable.
  void learn_flushed(Lsn flush);
  // Every commit is known flushed now.
  void all_flushed();
  void read_progress();
  void read_table_floors();
  bool below_floor(std::size_t table, Lsn txn_lsn) const;
  void read_column_types(TableState& t);
  void drop_connection();
  void rollback_quietly();
  [[noreturn]] void raise(const PgError& e);
  // A statement without parameters (several may share the string); any failure throws sink_error.
  PgResult exec(const std::string& sql, const char* doing);
  // A statement with text parameters, through pg_exec_params; `ok` is the status it succeeds with.
  PgResult exec_params(const std::string& sql, const std::vector<PgParam>& params, const char* doing,
                       ExecStatusType ok);

  Mapping mapping_;
  PostgresSinkOptions options_;
  RelationBinder binder_;
  PgConn conn_;
  std::optional<Progress> progress_;
  std::vector<std::unique_ptr<TableState>> tables_;
  PostgresSinkStats stats_;
  ApplyTimings timings_;
  std::string quoted_pipeline_;  // options_.pipeline and applied_by as SQL literals, once connected
  std::string quoted_applied_by_;
  std::string toast_compression_;
  std::string synchronous_commit_;

  bool in_txn_ = false;         // a target transaction is open
  bool trip_prepared_ = false;  // the one trip's own statements are prepared in the session
  bool unflushed_ = false;      // a commit since the last flushed one did not wait for its flush
  // Those commits, oldest first, until the order server is seen to have flushed them: its WAL insert position
  // read right after the COMMIT (at or past the end of the commit record) and the source end LSN committed.
  // Forgotten with the session: after a crash the server's WAL positions start again from what it flushed.
  struct UnflushedCommit {
    Lsn target_wal;
    Lsn end_lsn;
  };
  std::deque<UnflushedCommit> unflushed_commits_;
  std::optional<Lsn> newly_flushed_;  // the newest end LSN found flushed and not returned yet
  SkipApplied skip_;                  // source transactions at or below the progress
  // Where the last error happened, for PermanentError.
  std::string error_table_;
  Lsn error_lsn_;
  std::string copy_buffer_;
  MemoryBudget::Account copy_account_;  // copy_buffer_'s capacity
  std::string params_;
  std::vector<const char*> param_ptrs_;
  std::vector<Pending> pending_;
};

}  // namespace cdcsync
