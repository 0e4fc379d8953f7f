// `cdcsync target-ddl` and `cdcsync check`: the order-DB tables a mapping needs, and what is wrong with a
// live order DB. DDL generation is pure text (types come in as `format_type` text) so it is testable
// without a server.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sinks/mapping.h"

namespace cdcsync {

// Source column name → SQL type text as PostgreSQL's format_type() prints it ("bigint",
// "character varying(80)", "timestamp with time zone").
using ColumnTypes = std::map<std::string, std::string>;
using SourceTypes = std::map<QualifiedName, ColumnTypes>;

// The target column type of mapped column `c`: text for hmac/mask/constant, else the source type.
// Throws std::invalid_argument when the source type is unknown.
std::string target_type(const ColumnMapping& c, const ColumnTypes& types);

// Idempotent DDL for one table: CREATE SCHEMA/TABLE IF NOT EXISTS (key columns NOT NULL, PRIMARY KEY on the
// key, guard column, tombstone for deletes = soft), ADD COLUMN IF NOT EXISTS for every column (so a
// partly prepared table is completed) and a unique index on the key when the table has none.
std::string table_ddl(const TableMapping& table, const ColumnTypes& types);
// The progress table, shaped as ref.cdc_progress in deploy/sql/order_schema.sql.
std::string progress_table_ddl(const QualifiedName& progress_table);
// Everything: the progress table and the load state beside it (sinks/load_state.h), then every mapped table.
// Throws std::invalid_argument when `types` lacks a mapped table or column.
std::string target_ddl(const Mapping& mapping, const SourceTypes& types,
                       const QualifiedName& progress_table = {"ref", "cdc_progress"});

// Reads the source types of one table (format_type of every live column) on a source connection.
// Throws PgError.
ColumnTypes read_source_types(PGconn* source, const QualifiedName& table);

// What the replication stream would never deliver for one mapped table.
struct SourceStreamProblem {
  enum class Kind : std::uint8_t {
    Column,   // a mapped column missing from the table, or generated
    Routing,  // the table's changes arrive under another table's name (partitions and the publication)
  };
  Kind kind = Kind::Column;
  std::string subject;  // the column, or the table
  std::string problem;  // what is wrong, names only
  std::string fix;
};
// The mapped source columns of `table` that the stream would never carry: missing from the table, or
// generated (PostgreSQL 15's pgoutput leaves generated columns out of every change, while a snapshot would
// copy them). And whether `publication` sends the table's changes under another name: a partitioned table
// whose partitions are published under their own names (publish_via_partition_root = false), or a partition
// published under its root's. Either way nothing of it would match the mapping: silently lost. Empty when the
// table does not exist (said elsewhere). Simple query protocol only, so it runs on a replication connection
// too. Throws PgError.
std::vector<SourceStreamProblem> source_stream_problems(PGconn* source, const TableMapping& table,
                                                        const std::string& publication);

struct TargetProblem {
  std::string table;    // target table (or the database)
  std::string problem;  // what is wrong, names only
  std::string fix;      // the SQL or step that fixes it
};

// Checks a live order DB for everything the sink needs: tables, mapped columns, guard and tombstone
// columns, type compatibility (when `types` is given), a unique index on exactly the key, SELECT/INSERT/
// UPDATE/DELETE on each table, the progress table, the load state table and the TEMP privilege. Empty when
// all is well.
// Throws PgError when the checks themselves cannot run.
std::vector<TargetProblem> check_target(PGconn* target, const Mapping& mapping,
                                        const QualifiedName& progress_table = {"ref", "cdc_progress"},
                                        const SourceTypes* types = nullptr);

}  // namespace cdcsync
