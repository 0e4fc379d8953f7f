// The bulk loader's parts: a table cut into ranges of heap blocks (ctid), so that several sessions copy it
// at once and each range commits on its own.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "decoders/pg.h"
#include "sinks/mapping.h"

namespace cdcsync {

// What the source's catalog says of a table's size.
struct TableSize {
  bool has_ctid = true;     // a table or a partitioned table (each partition has its own ctids)
  std::uint64_t pages = 0;  // blocks of the largest relation scanned (the table, or its largest partition)
  std::optional<std::uint64_t> rows;  // pg_class.reltuples (summed over partitions); nullopt: never analyzed
};

// Reads the size of `table` on the source.
TableSize read_table_size(PGconn* source, const QualifiedName& table);

// The WHERE clauses of a table's parts, each a range of blocks: [0, a), [a, b), ..., [z, end) where the last
// one is open, so a table that grew since it was measured loses nothing. About four parts per session (the
// sessions finish together), none larger than `max_part_pages`; one part ("") for a small table or a relation
// without ctid. For a partitioned table every range applies to each partition (the ranges are cut on the
// largest), which PostgreSQL scans with a TID range scan too.
std::vector<std::string> split_by_ctid(const TableSize& size, int sessions, std::uint64_t max_part_pages);

}  // namespace cdcsync
