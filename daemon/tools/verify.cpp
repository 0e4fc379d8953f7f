// Verify's building blocks: canonical row hashes, bucket sums on both sides, row diffs and the re-copy.
#include "daemon/tools/verify.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <random>
#include <stdexcept>

#include "daemon/core/initial_load.h"
#include "daemon/core/runner.h"
#include "daemon/core/snapshot.h"

namespace cdcsync::verify {
namespace {

std::array<unsigned char, 16> md5(std::string_view text) {
  std::array<unsigned char, 16> out{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), out.data(), &len, EVP_md5(), nullptr) != 1 || len != 16) {
    throw std::runtime_error("md5 failed");
  }
  return out;
}

std::string column_expr(const std::string& column) {
  return "t." + quote_ident(column);
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// A text[] literal for a parameter.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string bucket_list(const std::set<std::uint32_t>& only) {
  std::string out = "{";
  for (auto b : only) out += (out.size() > 1 ? "," : "") + std::to_string(b);
  return out + "}";
}

}  // namespace

void append_canonical(std::string& out, std::optional<std::string_view> value) {
  if (!value) {
    out += "N;";
    return;
  }
  out += std::to_string(value->size());
  out += ':';
  out += *value;
  out += ';';
}

std::int64_t row_hash(std::string_view canonical_row) {
  const auto d = md5(canonical_row);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return static_cast<std::int64_t>(v);
}

std::uint32_t bucket_of(std::string_view canonical_key, std::uint32_t buckets) {
  const auto d = md5(canonical_key);
  const std::uint32_t v =
      (std::uint32_t{d[0]} << 24) | (std::uint32_t{d[1]} << 16) | (std::uint32_t{d[2]} << 8) | d[3];
  return buckets == 0 ? 0 : v % buckets;
}

std::string to_string(HashSum sum) {
  if (sum == 0) return "0";
  const bool negative = sum < 0;
  std::string out;
  while (sum != 0) {
    const int digit = static_cast<int>(sum % 10);
    out.push_back(static_cast<char>('0' + (digit < 0 ? -digit : digit)));
    sum /= 10;
  }
  if (negative) out.push_back('-');
  std::reverse(out.begin(), out.end());
  return out;
}

std::optional<HashSum> parse_sum(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool negative = false;
  if (text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 38) return std::nullopt;
  HashSum v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (negative ? -(c - '0') : (c - '0'));
  }
  return v;
}

std::string canonical_sql(const std::vector<std::string>& column_exprs) {
  std::vector<std::string> parts;
  for (const auto& e : column_exprs) {
    parts.push_back("coalesce(octet_length((" + e + ")::text)::text || ':' || (" + e +
                    ")::text || ';', 'N;')");
  }
  return "(" + join(parts, " || ") + ")";
}

std::string row_hash_sql(const std::vector<std::string>& column_exprs) {
  return "('x' || left(md5(" + canonical_sql(column_exprs) + "), 16))::bit(64)::bigint";
}

std::string bucket_sql(const std::vector<std::string>& key_exprs, std::uint32_t buckets) {
  return "(('x' || '00000000' || left(md5(" + canonical_sql(key_exprs) + "), 8))::bit(64)::bigint % " +
         std::to_string(buckets) + ")";
}

RowDiff RowDiff::intersect(const RowDiff& earlier) const {
  const auto before = earlier.keys();
  RowDiff out;
  auto keep = [&](const std::vector<KeyRef>& in, std::vector<KeyRef>& to) {
    for (const auto& k : in) {
      if (before.contains(k.canonical)) to.push_back(k);
    }
  };
  keep(missing, out.missing);
  keep(extra, out.extra);
  keep(different, out.different);
  return out;
}

std::set<std::string> RowDiff::keys() const {
  std::set<std::string> out;
  for (const auto* v : {&missing, &extra, &different}) {
    for (const auto& k : *v) out.insert(k.canonical);
  }
  return out;
}

std::string describe_key(const TableMapping& table, const RowDigest& row) {
  const auto idx = table.key_indexes();
  std::string out;
  for (std::size_t i = 0; i < idx.size() && i < row.key.size(); ++i) {
    if (i) out += ", ";
    out += table.columns[idx[i]].target + "=" + row.key[i].value_or("NULL");
  }
  return idx.size() > 1 ? "(" + out + ")" : out;
}

RowDiff diff_rows(const TableMapping& table, const RowDigests& source, const RowDigests& target) {
  RowDiff out;
  for (const auto& [key, row] : source) {
    const auto it = target.find(key);
    if (it == target.end()) {
      out.missing.push_back({key, describe_key(table, row)});
    } else if (it->second.hash != row.hash) {
      out.different.push_back({key, describe_key(table, row)});
    }
  }
  if (table.deletes != DeletePolicy::Ignore) {
    for (const auto& [key, row] : target) {
      if (!source.contains(key)) out.extra.push_back({key, describe_key(table, row)});
    }
  }
  return out;
}

std::vector<std::uint32_t> differing_buckets(const BucketSums& source, const BucketSums& target) {
  std::vector<std::uint32_t> out;
  for (const auto& [b, s] : source) {
    const auto it = target.find(b);
    if (it == target.end() || !(it->second == s)) out.push_back(b);
  }
  for (const auto& [b, t] : target) {
    if (!source.contains(b)) out.push_back(b);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void set_canonical_session(PGconn* conn) {
  pg_exec(conn,
          "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
          "SET extra_float_digits = 3; SET bytea_output = 'hex'; SET row_security = off; "
          "SET statement_timeout = 0",
          "setting the session's output styles");
}

SourceSnapshot::SourceSnapshot(const std::string& conninfo, std::string_view purpose) {
  std::random_device rd;
  const std::string slot = "cdcsync_" + std::string(purpose) + "_" + std::to_string(getpid()) + "_" +
                           std::to_string(rd() % 1000000);
  // The replication connection ends at the end of this scope: the temporary slot goes with it, once the
  // snapshot is imported (an imported snapshot stays valid for the importing transaction).
  ReplicationStream repl{conninfo};
  const CreatedSlot created = repl.create_slot(slot, /*temporary=*/true, /*export_snapshot=*/true, false);
  conn_ = pg_connect(conninfo, "the source");
  set_canonical_session(conn_.get());
  pg_exec(conn_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the source snapshot");
  std::unique_ptr<char, PqFreemem> lit{
      PQescapeLiteral(conn_.get(), created.snapshot_name.data(), created.snapshot_name.size())};
  pg_exec(conn_.get(), (std::string("SET TRANSACTION SNAPSHOT ") + lit.get()).c_str(),
          "importing the exported snapshot");
  point_ = created.consistent_point;
}

void SourceSnapshot::finish() {
  pg_exec(conn_.get(), "COMMIT", "ending the source snapshot");
}

std::optional<Lsn> target_position(PGconn* target, const QualifiedName& progress_table,
                                   const std::string& pipeline) {
  auto res = pg_exec_params(
      target,
      "SELECT greatest(end_lsn, acked_lsn)::text FROM " + progress_table.quoted() + " WHERE pipeline = $1",
      {pipeline}, "reading the progress row");
  if (PQntuples(res.get()) == 0) return std::nullopt;
  return Lsn::parse(PQgetvalue(res.get(), 0, 0));
}

bool TableReader::source_in_sql() const {
  return std::all_of(table_.columns.begin(), table_.columns.end(),
                     [](const ColumnMapping& c) { return c.transform.kind() == TransformKind::Copy; });
}

std::string TableReader::target_filter() const {
  if (table_.deletes != DeletePolicy::Soft) return "";
  return " WHERE NOT t." + quote_ident(table_.tombstone_column);
}

std::uint32_t TableReader::bucket_count(PGconn* source, std::uint64_t rows_per_bucket) const {
  auto res =
      pg_exec_params(source, "SELECT reltuples::bigint FROM pg_catalog.pg_class WHERE oid = $1::regclass",
                     {table_.source.quoted()}, "estimating the rows of " + table_.source.str());
  long long estimate = PQntuples(res.get()) ? std::stoll(PQgetvalue(res.get(), 0, 0)) : -1;
  if (estimate < 0) {  // never analyzed: count
    auto c = pg_exec(source, ("SELECT count(*) FROM " + table_.source.quoted()).c_str(),
                     "counting the rows of " + table_.source.str(), PGRES_TUPLES_OK);
    estimate = std::stoll(PQgetvalue(c.get(), 0, 0));
  }
  const std::uint64_t per = std::max<std::uint64_t>(rows_per_bucket, 1);
  const std::uint64_t n = (static_cast<std::uint64_t>(estimate) + per - 1) / per;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(n, 1, 1u << 20));
}

namespace {

struct Exprs {
  std::vector<std::string> columns;
  std::vector<std::string> key;
};

Exprs exprs_of(const TableMapping& t, bool target) {
  Exprs e;
  for (const auto& c : t.columns) e.columns.push_back(column_expr(target ? c.target : c.source));
  for (auto i : t.key_indexes()) e.key.push_back(e.columns[i]);
  return e;
}

BucketSums sums_sql(PGconn* conn, const std::string& table, const Exprs& e, const std::string& filter,
                    std::uint32_t buckets, std::string_view doing) {
  const std::string sql = "SELECT b, count(*), sum(h)::text FROM (SELECT " + bucket_sql(e.key, buckets) +
                          " AS b, " + row_hash_sql(e.columns) + " AS h FROM " + table + " AS t" + filter +
                          ") x GROUP BY b";
  auto res = pg_exec(conn, sql.c_str(), doing, PGRES_TUPLES_OK);
  BucketSums out;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    const auto b = static_cast<std::uint32_t>(std::stoul(PQgetvalue(res.get(), r, 0)));
    const auto sum = parse_sum(PQgetvalue(res.get(), r, 2));
    if (!sum) throw std::runtime_error(std::string(doing) + ": unreadable hash sum");
    out[b] = BucketSum{std::stoull(PQgetvalue(res.get(), r, 1)), *sum};
  }
  return out;
}

RowDigests rows_sql(PGconn* conn, const std::string& table, const Exprs& e, const std::string& filter,
                    std::uint32_t buckets, const std::set<std::uint32_t>& only, std::string_view doing) {
  std::string sql = "SELECT " + canonical_sql(e.key) + ", " + row_hash_sql(e.columns);
  for (const auto& k : e.key) sql += ", (" + k + ")::text";
  sql += " FROM " + table + " AS t" + (filter.empty() ? " WHERE " : filter + " AND ") +
         bucket_sql(e.key, buckets) + " = ANY($1::bigint[])";
  auto res = pg_exec_params(conn, sql, {bucket_list(only)}, doing);
  RowDigests out;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    RowDigest d;
    d.hash = std::stoll(PQgetvalue(res.get(), r, 1));
    for (std::size_t k = 0; k < e.key.size(); ++k)
      d.key.push_back(pg_value(res.get(), r, static_cast<int>(k) + 2));
    out.emplace(PQgetvalue(res.get(), r, 0), std::move(d));
  }
  return out;
}

}  // namespace

void TableReader::stream_source(
    PGconn* source,
    const std::function<void(const std::string& key, const std::vector<std::optional<std::string>>& values,
                             const std::vector<std::optional<std::string>>& source_key)>& row) const {
  std::vector<std::string> select;
  for (const auto& c : table_.columns) {
    // Copied columns through ::text like the SQL side; transformed ones in their output form, which is what
    // the daemon's transforms see.
    select.push_back(column_expr(c.source) + (c.transform.kind() == TransformKind::Copy ? "::text" : ""));
  }
  const std::string sql =
      "COPY (SELECT " + join(select, ", ") + " FROM " + table_.source.quoted() + " AS t) TO STDOUT";
  const std::string doing = "reading " + table_.source.str();
  PgResult res{PQexec(source, sql.c_str())};
  if (!res || PQresultStatus(res.get()) != PGRES_COPY_OUT) throw pg_error(source, res.get(), doing);
  const auto key_idx = table_.key_indexes();
  Tuple tuple;
  std::string scratch;
  std::string key;
  std::string out;
  std::vector<std::optional<std::string>> values(table_.columns.size());
  std::vector<std::optional<std::string>> source_key(key_idx.size());
  while (true) {
    char* raw = nullptr;
    const int n = PQgetCopyData(source, &raw, 0);
    if (n == -1) break;
    if (n < 0) throw pg_error(source, nullptr, doing);
    std::unique_ptr<char, PqFreemem> line{raw};
    if (!parse_copy_text_row({raw, static_cast<std::size_t>(n)}, table_.columns.size(), tuple, scratch)) {
      throw std::runtime_error("malformed COPY row from " + table_.source.str());
    }
    for (std::size_t i = 0; i < table_.columns.size(); ++i) {
      const std::optional<std::string_view> in =
          tuple.is_null(i) ? std::nullopt : std::optional<std::string_view>(tuple.value(i));
      out.clear();
      if (table_.columns[i].transform.apply(in, out)) {
        values[i] = out;
      } else {
        values[i].reset();
      }
    }
    key.clear();
    for (std::size_t k = 0; k < key_idx.size(); ++k) {
      const auto& v = values[key_idx[k]];
      append_canonical(key, v ? std::optional<std::string_view>(*v) : std::nullopt);
      source_key[k] = tuple.is_null(key_idx[k])
                          ? std::nullopt
                          : std::optional<std::string>(std::string(tuple.value(key_idx[k])));
    }
    row(key, values, source_key);
  }
  PgResult done{PQgetResult(source)};
  if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK) throw pg_error(source, done.get(), doing);
  while (PgResult more{PQgetResult(source)}) {
  }
}

namespace {

std::int64_t hash_values(const std::vector<std::optional<std::string>>& values, std::string& scratch) {
  scratch.clear();
  for (const auto& v : values)
    append_canonical(scratch, v ? std::optional<std::string_view>(*v) : std::nullopt);
  return row_hash(scratch);
}

}  // namespace

BucketSums TableReader::source_sums(PGconn* source, std::uint32_t buckets) const {
  if (source_in_sql()) {
    return sums_sql(source, table_.source.quoted(), exprs_of(table_, false), "", buckets,
                    "hashing " + table_.source.str());
  }
  BucketSums out;
  std::string scratch;
  stream_source(source, [&](const std::string& key, const auto& values, const auto&) {
    auto& s = out[bucket_of(key, buckets)];
    ++s.rows;
    s.sum += hash_values(values, scratch);
  });
  return out;
}

BucketSums TableReader::target_sums(PGconn* target, std::uint32_t buckets) const {
  return sums_sql(target, table_.target.quoted(), exprs_of(table_, true), target_filter(), buckets,
                  "hashing " + table_.target.str());
}

RowDigests TableReader::source_rows(PGconn* source, std::uint32_t buckets,
                                    const std::set<std::uint32_t>& only) const {
  if (source_in_sql()) {
    return rows_sql(source, table_.source.quoted(), exprs_of(table_, false), "", buckets, only,
                    "reading row hashes of " + table_.source.str());
  }
  RowDigests out;
  std::string scratch;
  const auto key_idx = table_.key_indexes();
  stream_source(source, [&](const std::string& key, const auto& values, const auto&) {
    if (!only.contains(bucket_of(key, buckets))) return;
    RowDigest d;
    d.hash = hash_values(values, scratch);
    for (auto i : key_idx) d.key.push_back(values[i]);
    out.emplace(key, std::move(d));
  });
  return out;
}

RowDigests TableReader::target_rows(PGconn* target, std::uint32_t buckets,
                                    const std::set<std::uint32_t>& only) const {
  return rows_sql(target, table_.target.quoted(), exprs_of(table_, true), target_filter(), buckets, only,
                  "reading row hashes of " + table_.target.str());
}

RecopyResult recopy_table(const config::Config& config, const TableMapping& table,
                          const std::optional<std::set<std::string>>& only_keys,
                          const LoadObserver& observer) {
  TableLoad load{.table = &table};
  if (only_keys) {
    load.keep = [only_keys,
                 scratch = std::string()](const std::vector<std::optional<std::string>>& key) mutable {
      scratch.clear();
      for (const auto& v : key)
        append_canonical(scratch, v ? std::optional<std::string_view>(*v) : std::nullopt);
      return only_keys->contains(scratch);
    };
    std::vector<std::string> key_exprs;
    for (auto i : table.key_indexes()) key_exprs.push_back(column_expr(table.columns[i].target));
    load.sweep_condition = canonical_sql(key_exprs) + " = ANY($2::text[])";
    load.sweep_parameter = text_array(std::vector<std::string>(only_keys->begin(), only_keys->end()));
  }
  LoadOptions options = load_options(config);
  options.concurrent = true;
  const TemporarySnapshot snapshot{source_conninfo(config), "resync"};
  const std::atomic<bool> never{false};
  const TableLoadResult r = load_tables(snapshot.snapshot(), {load}, options, observer, never).front();
  return RecopyResult{.point = snapshot.snapshot().point,
                      .source_rows = r.source_rows,
                      .upserted = r.written,
                      .removed = r.removed,
                      .skipped_gone = r.skipped_gone};
}

}  // namespace cdcsync::verify
