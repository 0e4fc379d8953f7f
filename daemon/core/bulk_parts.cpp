// The bulk loader's parts: a table's size from the source's catalog, and its block ranges.
#include "daemon/core/bulk_parts.h"

#include <algorithm>

namespace cdcsync {
namespace {

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
      "c.oid FROM c WHERE c.relkind <> 'p') SELECT (SELECT relkind IN ('r', 'p') AND "
      "pg_catalog.has_column_privilege(oid, 'ctid', 'SELECT') FROM c), (SELECT "
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

std::vector<std::string> pick_bounds(const std::vector<std::string>& bounds, std::size_t parts) {
  std::vector<std::string> out;
  if (parts < 2 || bounds.size() < 3) return out;
  for (std::size_t i = 1; i < parts; ++i) {
    const std::string& b = bounds[i * (bounds.size() - 1) / parts];
    if (out.empty() || out.back() != b) out.push_back(b);
  }
  return out;
}

std::vector<std::string> split_by_key(PGconn* source, const TableMapping& table, int sessions) {
  const std::string& column = table.columns[table.key_indexes().front()].source;
  // The column's type for the literals, and its histogram (a partitioned table's spans its partitions).
  auto res = pg_exec_params(
      source,
      "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT s.histogram_bounds::text::text[] FROM "
      "pg_catalog.pg_stats s WHERE s.schemaname = $2 AND s.tablename = $3 AND s.attname = $4 ORDER BY "
      "s.inherited DESC LIMIT 1) FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass AND "
      "a.attname = $4",
      {table.source.quoted(), table.source.schema, table.source.name, column},
      "reading the statistics of " + table.source.str());
  if (PQntuples(res.get()) != 1 || PQgetisnull(res.get(), 0, 1)) return {""};
  const std::string type = PQgetvalue(res.get(), 0, 0);
  auto bounds =
      pg_exec_params(source, "SELECT unnest($1::text[])", {std::string(PQgetvalue(res.get(), 0, 1))},
                     "reading the statistics of " + table.source.str());
  std::vector<std::string> all;
  for (int r = 0; r < PQntuples(bounds.get()); ++r) all.emplace_back(PQgetvalue(bounds.get(), r, 0));
  const auto cuts = pick_bounds(all, static_cast<std::size_t>(std::max(sessions, 1)) * kPartsPerSession);
  if (cuts.empty()) return {""};
  const std::string key = "t." + quote_ident(column);
  const auto literal = [&](const std::string& v) { return pg_quote_literal(source, v) + "::" + type; };
  std::vector<std::string> parts;
  parts.push_back(" WHERE " + key + " < " + literal(cuts.front()) + " OR " + key + " IS NULL");
  for (std::size_t i = 1; i < cuts.size(); ++i) {
    parts.push_back(" WHERE " + key + " >= " + literal(cuts[i - 1]) + " AND " + key + " < " +
                    literal(cuts[i]));
  }
  parts.push_back(" WHERE " + key + " >= " + literal(cuts.back()));
  return parts;
}

}  // namespace cdcsync
