// The bulk loader's parts: a table's size from the source's catalog, and its block ranges.
#include "daemon/core/bulk_parts.h"

#include <algorithm>

namespace cdcsync {
namespace {

// Tables smaller than this go in one part: splitting them costs more statements than it saves.
constexpr std::uint64_t kSplitFromPages = 2048;  // 16 MB
constexpr int kPartsPerSession = 4;

std::string tid(std::uint64_t block) {
  return "'(" + std::to_string(block) + ",0)'::pg_catalog.tid";
}

}  // namespace

TableSize read_table_size(PGconn* source, const QualifiedName& table) {
  // The leaves of a partitioned table, or the table itself (pg_partition_tree lists nothing for it).
  auto res = pg_exec_params(
      source,
      "WITH c AS (SELECT oid, relkind FROM pg_catalog.pg_class WHERE oid = $1::regclass), leaves AS (SELECT "
      "l.relid "
      "AS oid FROM c, pg_catalog.pg_partition_tree(c.oid) l WHERE c.relkind = 'p' AND l.isleaf UNION ALL "
      "SELECT "
      "c.oid FROM c WHERE c.relkind <> 'p') SELECT (SELECT relkind IN ('r', 'p') FROM c), (SELECT "
      "coalesce(max(pg_catalog.pg_relation_size(oid)), 0) FROM leaves) / "
      "pg_catalog.current_setting('block_size')::int, (SELECT CASE WHEN bool_and(k.reltuples >= 0) THEN "
      "sum(k.reltuples)::bigint END FROM leaves JOIN pg_catalog.pg_class k USING (oid))",
      {table.quoted()}, "measuring " + table.str());
  TableSize s;
  if (PQntuples(res.get()) != 1) return s;
  s.has_ctid = std::string_view(PQgetvalue(res.get(), 0, 0)) == "t";
  if (!PQgetisnull(res.get(), 0, 1)) s.pages = std::stoull(PQgetvalue(res.get(), 0, 1));
  if (!PQgetisnull(res.get(), 0, 2)) s.rows = std::stoull(PQgetvalue(res.get(), 0, 2));
  return s;
}

std::vector<std::string> split_by_ctid(const TableSize& size, int sessions, std::uint64_t max_part_pages) {
  if (!size.has_ctid || size.pages < kSplitFromPages || sessions < 1) return {""};
  const std::uint64_t wanted = static_cast<std::uint64_t>(sessions) * kPartsPerSession;
  std::uint64_t per = std::max<std::uint64_t>((size.pages + wanted - 1) / wanted, 1);
  if (max_part_pages > 0) per = std::min(per, max_part_pages);
  std::vector<std::string> parts;
  for (std::uint64_t lo = 0; lo < size.pages; lo += per) {
    const std::uint64_t hi = lo + per;
    std::string where = lo == 0 ? "" : "ctid >= " + tid(lo);
    if (hi < size.pages) where += std::string(where.empty() ? "" : " AND ") + "ctid < " + tid(hi);
    parts.push_back(where.empty() ? std::string() : " WHERE " + where);
  }
  return parts;
}

}  // namespace cdcsync
