// Per-table load state, kept in the order DB beside the progress row: where each mapped table's copy from the
// source stands. The bulk loader (daemon/core/bulk_load.h) writes it; a restart reads it to know what to
// redo, and the order-DB sink reads each table's snapshot LSN as the point below which streamed changes of
// that table are already in its copy.
//
//   phase = 'copying'    a copy at snapshot_lsn is under way (or was interrupted): the table's rows are not
//                        yet the source's at any one point; copy it again.
//   phase = 'streaming'  the table holds every source row as of snapshot_lsn (each at version >= it); changes
//                        of source transactions that committed before snapshot_lsn are in the copy and are
//                        not applied to it again, the stream keeps it from there.
//   started_empty        the copy (its first attempt) began on an empty table: every row a copying table
//                        holds is its own, so a new attempt may empty the table and copy straight into it.
//   deferred_indexes     snapshot.rebuild_indexes: the indexes the copy dropped (with the state, in one
//                        transaction), as the statements that build them; built again and cleared in one
//                        transaction when the copy is complete, so a crash in between never loses them.
//
// The table is `<schema of the progress table>.cdc_table_state` (ref.cdc_table_state by default), created by
// the DBA like the progress table (deploy/sql, `cdcsync target-ddl`). Without it a load still runs, but an
// interrupted one starts over instead of resuming.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "decoders/lsn.h"
#include "decoders/pg.h"
#include "sinks/mapping.h"

namespace cdcsync {

enum class TablePhase : std::uint8_t { Copying, Streaming };
std::string_view name_of(TablePhase p);

struct TableLoadState {
  TablePhase phase = TablePhase::Copying;
  Lsn snapshot_lsn;
  bool started_empty = false;
  std::optional<std::uint64_t> rows;  // rows copied, once streaming
  // snapshot.rebuild_indexes: the statements that build the indexes (and the constraints they back) the load
  // dropped, until they are built again; empty otherwise. Read only (defer_indexes, indexes_built).
  std::vector<std::string> deferred_indexes;
};

// Target table (QualifiedName::str()) -> its state.
using TableLoadStates = std::map<std::string, TableLoadState>;

// The state table beside `progress_table`.
QualifiedName load_state_table(const QualifiedName& progress_table);
// Idempotent DDL of the state table (target-ddl, check, deploy/sql).
std::string load_state_table_ddl(const QualifiedName& state_table);

// One pipeline's rows of the state table. Every call runs one statement on `conn`, inside whatever
// transaction it has open; failures throw PgError.
class LoadStateStore {
 public:
  LoadStateStore(QualifiedName table, std::string pipeline)
      : table_(std::move(table)), pipeline_(std::move(pipeline)) {}

  const QualifiedName& table() const { return table_; }
  // Whether the state table exists (to_regclass).
  bool exists(PGconn* conn) const;
  // Every table's state; empty when the state table does not exist.
  TableLoadStates read(PGconn* conn) const;
  void write(PGconn* conn, const std::string& target_table, const TableLoadState& state) const;
  // Removes the pipeline's rows for tables no longer mapped (names not in `keep`), except one that still
  // holds indexes to build.
  void forget_others(PGconn* conn, const std::vector<std::string>& keep) const;
  // Keeps the statements that build a table's dropped indexes (an existing row; the column
  // deferred_indexes, which a state table created before it lacks, then fails with its name) / forgets them.
  void defer_indexes(PGconn* conn, const std::string& target_table,
                     const std::vector<std::string>& statements) const;
  void indexes_built(PGconn* conn, const std::string& target_table) const;

 private:
  QualifiedName table_;
  std::string pipeline_;
};

}  // namespace cdcsync
