// The bulk loader's private parts, shared by its coordinator (bulk_load.cpp) and its workers
// (bulk_worker.cpp) and by nothing else: a table's plan and counters, the queue of parts, a worker.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/bulk_load.h"
#include "daemon/core/reply_deadline.h"
#include "decoders/pg.h"

namespace cdcsync {

// One table's plan (fixed before the first part) and its counters (updated by the workers).
struct TablePlan {
  const TableLoad* load = nullptr;
  const TableMapping* mapping = nullptr;
  std::size_t index = 0;
  std::string source;  // quoted
  std::string target;  // quoted
  std::string stage;   // pg_temp."_cdc_load_<index>" (staged)
  RowFormat binary_format;
  RowFormat text_format;
  std::atomic<bool> text_only{false};  // a value no binary encoder took: the table goes as text
  LoadMethod method = LoadMethod::Direct;
  bool freeze = false;             // one part: TRUNCATE and COPY FREEZE in its transaction
  std::vector<std::string> parts;  // WHERE clauses ("" for the whole table)
  std::string copy_columns;        // the target COPY's column list
  std::string upsert;              // staged: stage -> target under the guard
  // snapshot.rebuild_indexes: the statements that build the indexes dropped for the copy, run when it is
  // complete (kept in the load state meanwhile).
  std::vector<std::string> deferred_indexes;
  std::atomic<std::int64_t> estimate{-1};

  std::atomic<std::uint64_t> rows{0};  // read so far (progress)
  std::atomic<std::uint64_t> source_rows{0};
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> skipped_gone{0};
  std::atomic<std::size_t> parts_done{0};
  std::atomic<bool> started{false};
  std::chrono::steady_clock::time_point started_at;
  bool finished = false;  // coordinator only
  TableLoadResult result;

  const RowFormat& format() const { return text_only.load() ? text_format : binary_format; }
};

struct PartJob {
  TablePlan* table = nullptr;
  std::size_t part = 0;
};

// What the coordinator and the workers share: the queue, completions, the first error, the abort flag.
class LoadQueue {
 public:
  void push(PartJob job) { queue_.push_back(job); }
  // The next part; nullopt when none is left or the load is aborted.
  std::optional<PartJob> next();
  void part_done(const PartJob& job);
  void fail(std::exception_ptr e);
  void abort() {
    aborted_ = true;
    cv_.notify_all();
  }
  bool aborted() const { return aborted_.load(); }
  // Waits up to `d` for a completion or a failure; returns the first failure, if any.
  std::exception_ptr wait(std::chrono::milliseconds d);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PartJob> queue_;
  std::exception_ptr error_;
  std::atomic<bool> aborted_{false};
  bool news_ = false;
};

// One worker: a source session in the snapshot and a target session, copying parts until the queue is empty.
class LoadWorker {
 public:
  // `target_settings`: -c options of the target session (default_toast_compression).
  LoadWorker(const ExportedSnapshot& snapshot, const LoadOptions& options, LoadQueue& queue,
             std::string target_settings);
  ~LoadWorker();
  LoadWorker(const LoadWorker&) = delete;
  LoadWorker& operator=(const LoadWorker&) = delete;

  void run();  // the thread's body; any failure goes to the queue
  // From another thread: shuts both sessions' sockets down, so whatever they wait for fails at once (a
  // cancel request would open a connection of its own, and hang on a half-open link).
  void cancel();

 private:
  void connect();
  void connect_source();
  void begin_snapshot();
  void run_part(const PartJob& job);
  void copy_part(TablePlan& t, const std::string& where, const RowFormat& f);
  void stream_rows(TablePlan& t, RowRewriter& rw);
  void ensure_stage(TablePlan& t);
  void check_rows_gone(TablePlan& t);
  void abandon_part(TablePlan& t);
  void put(const std::string& doing);
  PgResult target_exec(const std::string& sql, const std::string& doing);
  [[noreturn]] void target_failed(const PGresult* res, const std::string& doing);

  const ExportedSnapshot& snapshot_;
  const LoadOptions& options_;
  LoadQueue& queue_;
  std::string target_settings_;
  PgConn source_;
  PgConn target_;
  PgConn now_;            // the source outside the snapshot: rows deleted since (concurrent)
  std::mutex cancel_mu_;  // held while source_ or target_ is replaced, and by cancel()
  ReplyDeadline source_deadline_;
  ReplyDeadline target_deadline_;
  std::set<std::size_t> stages_;  // tables whose stage this session created
  std::string buffer_;
  const TablePlan* current_ = nullptr;
  std::uint64_t counted_ = 0;  // rows of the current part added to its table's progress
};

// Connects a loader session: cdcsync's network defaults, no statement_timeout (the reply deadline watches the
// rows instead), `application_name` cdcsync_snapshot, `extra` (-c options) after. Throws PgError.
PgConn connect_load_session(const std::string& conninfo, std::string_view what, const std::string& extra);
// Shuts a connection's socket down (both ways): its blocked calls fail as a lost connection.
void shut_down(PGconn* conn);
// Quotes a text[] literal of `values` for a parameter.
std::string text_array_literal(const std::vector<std::string>& values);

}  // namespace cdcsync
