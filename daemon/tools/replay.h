// `cdcsync replay`: re-applies archived changes (sinks/redis_archive_sink.h) to the order DB through the
// PostgresSink's LSN guard, so a row already newer in the target is left alone and replaying twice changes
// nothing.
//
// Which transactions: every archived one whose commit LSN is at or after `from` (the progress LSN an order-DB
// dump holds: the transaction that ended there committed before it) and at or below `to`. The chain over that
// range is checked before anything is written (a gap or an altered entry stops the replay).
//
// Progress: the replay writes through its own progress row ("<pipeline>.replay", reset first) so that
// transactions at or below the pipeline's progress are re-applied too, not skipped. Over every table, and
// when `from` is at or below the pipeline's progress row, the pipeline's progress moves to the last replayed
// transaction afterwards: after an order DB restored from a dump, the daemon then starts again (instead of
// exiting 3, "target behind the checkpoint"). That needs the pipeline's writer lock, i.e. the daemon stopped;
// with the daemon running the rows are still replayed (the guard keeps them safe) but its progress is left as
// it is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "daemon/config/config.h"
#include "decoders/lsn.h"
#include "sinks/mapping.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync::replay {

// The archive cannot serve the request (empty, trimmed past `from`, chain broken): nothing was replayed.
class ReplayError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Request {
  Lsn from;
  std::optional<Lsn> to;              // nullopt: up to the newest entry
  std::optional<QualifiedName> only;  // a mapped target table (table_named); nullopt: every table
  bool dry_run = false;               // compare with the target and write nothing
  // Told what the operator should know while the replay runs (the archive's first entry, a running daemon).
  std::function<void(const std::string&)> note;
};

// One row the replay would change (dry run).
struct PreviewRow {
  std::string action;  // insert, insert tombstoned, update, tombstone, revive, delete
  std::vector<std::pair<std::string, std::string>> key;
  // column, current value in the target, new value (nullopt: NULL)
  std::vector<std::tuple<std::string, std::optional<std::string>, std::optional<std::string>>> columns;
  std::optional<Lsn> target_lsn;  // the target row's guard LSN; nullopt: no row in the target
  Lsn archive_lsn;
};

struct PreviewTable {
  std::string table;
  std::vector<Lsn> truncates;  // of each archived TRUNCATE
  std::vector<PreviewRow> rows;
};

struct Result {
  std::uint64_t transactions = 0;
  std::uint64_t changes = 0;
  std::uint64_t entries_in_range = 0;
  std::uint64_t rows_written = 0;
  std::uint64_t skipped_unmapped = 0;      // changes of tables no longer mapped
  std::uint64_t skipped_other_tables = 0;  // changes of tables other than Request::only
  bool incomplete_head = false;            // the unfinished transaction at the head was not replayed
  std::optional<Lsn> last_end_lsn;         // of the last whole transaction replayed
  std::string progress;                    // what happened to the pipeline's progress row
  std::vector<PreviewTable> preview;       // dry run only
};

// The mapped table whose source or target name is `name` (schema.table): its target name.
std::optional<QualifiedName> table_named(const Mapping& mapping, std::string_view name);

// Replays (or, dry, previews) from `archive`. Throws ReplayError, ArchiveFormatError, PgError.
Result run(const config::Config& config, RedisArchive& archive, const Request& request);

// What `cdcsync replay` prints; `from` is the request's.
std::string render_text(const Result& result, Lsn from);
std::string render_json(const Result& result);
std::string render_preview_text(const Result& result);
std::string render_preview_json(const Result& result);

}  // namespace cdcsync::replay
