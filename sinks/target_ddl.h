// `cdcsync target-ddl` and `cdcsync check`: the order-DB tables a mapping needs, and what is wrong with a
// live order DB. DDL generation is pure text (types come in as `format_type` text) so it is testable
// without a server.
#pragma once

#include <libpq-fe.h>

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
