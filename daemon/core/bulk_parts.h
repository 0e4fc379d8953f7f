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

// Tables smaller than this go in one part: splitting them costs more statements than it saves.
inline constexpr std::uint64_t kSplitFromPages = 2048;  // 16 MB

// What the source's catalog says of a table's size.
struct TableSize {
  bool has_ctid = true;     // a table or a partitioned table, whose ctid the role may read
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

// Where ctid cannot serve (the role may not read it: deploy/sql grants it, an older grant may not; or a
// relation without it): ranges of the first key column, cut at the bounds of its histogram in pg_stats,
// about four per session, the first one taking NULLs too. One part ("") without statistics.
std::vector<std::string> split_by_key(PGconn* source, const TableMapping& table, int sessions);

// Picks `parts - 1` cut points out of `bounds` (sorted, as pg_stats lists them), evenly, without repeats.
std::vector<std::string> pick_bounds(const std::vector<std::string>& bounds, std::size_t parts);

}  // namespace cdcsync
