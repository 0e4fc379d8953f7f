// Initial snapshot: copies the mapped columns of the published tables as they were at the slot's
// consistent point (its exported snapshot), through the same sink path as streamed changes. The copy is
// one source "transaction" ending at the consistent point, handed out in chunks and applied in a single
// target transaction: the order DB sees all of it, with its progress row, or nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"

namespace cdcsync {

struct SnapshotTable {
  std::string schema;
  std::string name;
  std::vector<std::string> columns;  // source columns to read: the mapped ones only, never SELECT *
  std::vector<std::string> key;
};

// Parses one row of COPY's text format (tab-separated, \N for NULL, backslash escapes) into `out`.
// Returns false when the row is malformed (wrong column count, bad escape).
bool parse_copy_text_row(std::string_view line, std::size_t columns, Tuple& out, std::string& scratch);

// Reads `tables` in the snapshot `snapshot_name` exported by CREATE_REPLICATION_SLOT, and calls `apply` with
// chunks of at most `chunk_rows` rows; the last chunk has last_chunk set and end_lsn = consistent_point.
// `progress` is called after each chunk with the table and the rows copied so far. Returns the row count.
std::uint64_t copy_snapshot(const std::string& source_conninfo, const std::string& snapshot_name,
                            Lsn consistent_point, const std::vector<SnapshotTable>& tables,
                            std::size_t chunk_rows, const std::function<void(Transaction&&)>& apply,
                            const std::function<void(const std::string&, std::uint64_t)>& progress = {});

}  // namespace cdcsync
