// `cdcsync target-ddl` (idempotent DDL for the mapped tables and the progress table) and `cdcsync check`
// (what the target lacks, each problem with its fix).
#include "sinks/target_ddl.h"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "decoders/pg.h"
#include "sinks/load_state.h"

namespace cdcsync {
namespace {

std::string quote_literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

// A text[] literal of `items` for a parameter.
std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('"');
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

std::vector<std::string> sorted_key_targets(const TableMapping& t) {
  std::vector<std::string> keys;
  for (std::size_t k : t.key_indexes()) keys.push_back(t.columns[k].target);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// Unique, non-partial, plain-column index on exactly the key columns (what ON CONFLICT (key) needs).
constexpr const char* kKeyIndexQuery =
    "SELECT count(*) FROM pg_catalog.pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND "
    "i.indpred IS NULL AND i.indexprs IS NULL AND (SELECT array_agg(a.attname::text ORDER BY a.attname) "
    "FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = "
    "$2::text[]";

// Each column of `table` by name, with its type as format_type() shows it.
ColumnTypes column_types(PGconn* conn, const QualifiedName& table, std::string_view doing) {
  auto res =
      pg_exec_params(conn,
                     "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM "
                     "pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT "
                     "a.attisdropped",
                     {table.quoted()}, doing);
  ColumnTypes out;
  for (int r = 0; r < PQntuples(res.get()); ++r)
    out[PQgetvalue(res.get(), r, 0)] = PQgetvalue(res.get(), r, 1);
  return out;
}

}  // namespace

std::string target_type(const ColumnMapping& c, const ColumnTypes& types) {
  if (c.transform.yields_text()) return "text";
  const auto it = types.find(c.source);
  if (it == types.end()) throw std::invalid_argument("no source type for column " + c.source);
  return it->second;
}

std::string table_ddl(const TableMapping& t, const ColumnTypes& types) {
  const std::string table = t.target.quoted();
  const auto keys = t.key_indexes();
  std::string out = "CREATE SCHEMA IF NOT EXISTS " + quote_ident(t.target.schema) + ";\n";
  out += "CREATE TABLE IF NOT EXISTS " + table + " (\n";
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    const bool is_key = std::find(keys.begin(), keys.end(), i) != keys.end();
    out += "    " + quote_ident(t.columns[i].target) + " " + target_type(t.columns[i], types) +
           (is_key ? " NOT NULL" : "") + ",\n";
  }
  out += "    " + quote_ident(t.lsn_column) + " pg_lsn NOT NULL,\n";
  if (t.deletes == DeletePolicy::Soft) {
    out += "    " + quote_ident(t.tombstone_column) + " boolean NOT NULL DEFAULT false,\n";
  }
  out += "    PRIMARY KEY (";
  for (std::size_t i = 0; i < keys.size(); ++i)
    out += (i ? ", " : "") + quote_ident(t.columns[keys[i]].target);
  out += ")\n);\n";
  for (const auto& c : t.columns) {
    out += "ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS " + quote_ident(c.target) + " " +
           target_type(c, types) + ";\n";
  }
  // Rows that predate the guard column get 0/0: any change overwrites them.
  out += "ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS " + quote_ident(t.lsn_column) +
         " pg_lsn NOT NULL DEFAULT '0/0';\n";
  if (t.deletes == DeletePolicy::Soft) {
    out += "ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS " + quote_ident(t.tombstone_column) +
           " boolean NOT NULL DEFAULT false;\n";
  }
  // A table prepared by hand may lack a unique index on the key: add one only then.
  const std::string key_index = quote_ident(t.target.name + "_cdc_key");
  std::string cols;
  for (std::size_t i = 0; i < keys.size(); ++i)
    cols += (i ? ", " : "") + quote_ident(t.columns[keys[i]].target);
  std::string check = kKeyIndexQuery;
  const auto replace = [&](std::string_view from, const std::string& to) {
    check.replace(check.find(from), from.size(), to);
  };
  replace("$1", quote_literal(table));
  replace("$2", quote_literal(text_array(sorted_key_targets(t))));
  out +=
      "DO $cdcsync$ BEGIN IF (" + check + ") = 0 THEN EXECUTE " +
      quote_literal("CREATE UNIQUE INDEX IF NOT EXISTS " + key_index + " ON " + table + " (" + cols + ")") +
      "; END IF; END $cdcsync$;\n";
  return out;
}

std::string progress_table_ddl(const QualifiedName& p) {
  return "CREATE SCHEMA IF NOT EXISTS " + quote_ident(p.schema) + ";\nCREATE TABLE IF NOT EXISTS " +
         p.quoted() +
         " (\n"
         "    pipeline     text        PRIMARY KEY,\n"
         "    end_lsn      pg_lsn      NOT NULL,\n"
         "    xid          bigint      NOT NULL,\n"
         "    commit_time  timestamptz,\n"
         "    acked_lsn    pg_lsn      NOT NULL,\n"
         "    applied_by   text,\n"
         "    updated_at   timestamptz NOT NULL DEFAULT now()\n"
         ");\n";
}

std::string target_ddl(const Mapping& mapping, const SourceTypes& types,
                       const QualifiedName& progress_table) {
  std::string out = "-- generated by cdcsync target-ddl; safe to run again\n" +
                    progress_table_ddl(progress_table) +
                    load_state_table_ddl(load_state_table(progress_table));
  for (const auto& t : mapping.tables()) {
    const auto it = types.find(t.source);
    if (it == types.end()) throw std::invalid_argument("no source types for table " + t.source.str());
    out += "\n" + table_ddl(t, it->second);
  }
  return out;
}

ColumnTypes read_source_types(PGconn* source, const QualifiedName& table) {
  return column_types(source, table, "reading source column types");
}

std::vector<SourceStreamProblem> source_stream_problems(PGconn* source, const TableMapping& table,
                                                        const std::string& publication) {
  using Kind = SourceStreamProblem::Kind;
  // On a replication connection only the simple query protocol: names go in as literals.
  const std::string name = pg_quote_literal(source, table.source.quoted());
  const std::string sql =
      "SELECT a.attname::text, a.attgenerated::text, "
      "coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') FROM pg_catalog.pg_attribute a "
      "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
      "WHERE a.attrelid = pg_catalog.to_regclass(" +
      name + ") AND a.attnum > 0 AND NOT a.attisdropped";
  auto res =
      pg_exec(source, sql.c_str(), "reading the source columns of " + table.source.str(), PGRES_TUPLES_OK);
  std::vector<SourceStreamProblem> out;
  if (PQntuples(res.get()) == 0) return out;
  std::map<std::string, std::pair<std::string, std::string>> columns;  // name → (attgenerated, expression)
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    columns[PQgetvalue(res.get(), r, 0)] = {PQgetvalue(res.get(), r, 1), PQgetvalue(res.get(), r, 2)};
  }
  for (const auto& c : table.columns) {
    const auto it = columns.find(c.source);
    if (it == columns.end()) {
      out.push_back({Kind::Column, c.source,
                     "mapped column " + c.source + " does not exist in " + table.source.str(),
                     "correct or remove it in [[tables]].columns"});
    } else if (!it->second.first.empty()) {
      out.push_back(
          {Kind::Column, c.source,
           "mapped column " + c.source + " is generated (GENERATED ALWAYS AS (" + it->second.second +
               ") STORED): logical replication leaves generated columns out of every change",
           "remove it from [[tables]].columns; if the order DB needs it, make " + table.target.str() + "." +
               c.target + " a generated column there (GENERATED ALWAYS AS (...) STORED)"});
    }
  }

  // Under which names the publication sends this table's changes: its own, its partitions' or an ancestor's.
  const std::string pub = pg_quote_literal(source, publication);
  const std::string routing =
      "WITH m AS (SELECT pg_catalog.to_regclass(" + name +
      ") AS oid), pub AS (SELECT schemaname || '.' || tablename AS name, "
      "pg_catalog.format('%I.%I', schemaname, tablename)::regclass AS oid "
      "FROM pg_catalog.pg_publication_tables WHERE pubname = " +
      pub +
      ") SELECT EXISTS (SELECT 1 FROM pub, m WHERE pub.oid = m.oid), "
      "(SELECT coalesce(pg_catalog.string_agg(pub.name, ', ' ORDER BY pub.name), '') FROM pub, m "
      "WHERE pub.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(m.oid) WHERE relid <> m.oid)), "
      "(SELECT coalesce(pg_catalog.string_agg(pub.name, ', ' ORDER BY pub.name), '') FROM pub, m "
      "WHERE pub.oid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors(m.oid) WHERE relid <> m.oid))";
  auto r =
      pg_exec(source, routing.c_str(),
              "reading how publication " + publication + " sends " + table.source.str(), PGRES_TUPLES_OK);
  if (PQntuples(r.get()) != 1 || std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") return out;
  const std::string partitions = PQgetvalue(r.get(), 0, 1);
  const std::string ancestors = PQgetvalue(r.get(), 0, 2);
  const std::string quoted_pub = quote_ident(publication);
  if (!partitions.empty()) {
    out.push_back({Kind::Routing, table.source.str(),
                   "is partitioned, and publication " + publication +
                       " sends its partitions' changes under their own names (" + partitions +
                       "; publish_via_partition_root = false): none would match this [[tables]] entry",
                   "ALTER PUBLICATION " + quoted_pub + " SET (publish_via_partition_root = true);"});
  } else if (!ancestors.empty()) {
    out.push_back({Kind::Routing, table.source.str(),
                   "is a partition, and publication " + publication +
                       " sends its changes under the name of " + ancestors +
                       " (publish_via_partition_root = true): none would match this [[tables]] entry",
                   "map the partitioned table in [[tables]].source instead, or ALTER PUBLICATION " +
                       quoted_pub + " SET (publish_via_partition_root = false);"});
  }
  return out;
}

std::vector<TargetProblem> check_target(PGconn* conn, const Mapping& mapping,
                                        const QualifiedName& progress_table, const SourceTypes* types) {
  std::vector<TargetProblem> problems;
  const auto user_res = pg_exec_params(conn, "SELECT current_user::text", {}, "reading the current user");
  const std::string user = PQgetvalue(user_res.get(), 0, 0);
  const auto exists = [&](const QualifiedName& t) {
    auto r = pg_exec_params(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", {t.quoted()},
                            "looking up a table");
    return std::string_view(PQgetvalue(r.get(), 0, 0)) == "t";
  };
  const auto columns_of = [&](const QualifiedName& t) {
    return column_types(conn, t, "reading target columns");
  };
  const auto privileges = [&](const QualifiedName& t, const std::vector<std::string>& wanted) {
    for (const auto& p : wanted) {
      auto r = pg_exec_params(conn, "SELECT pg_catalog.has_table_privilege($1, $2)", {t.quoted(), p},
                              "checking privileges");
      if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
        problems.push_back({t.str(), "role " + user + " lacks " + p + " on the table",
                            "GRANT " + p + " ON " + t.quoted() + " TO " + quote_ident(user) + ";"});
      }
    }
  };

  if (!exists(progress_table)) {
    problems.push_back({progress_table.str(), "progress table missing", progress_table_ddl(progress_table)});
  } else {
    privileges(progress_table, {"SELECT", "INSERT", "UPDATE"});
  }
  const QualifiedName state = load_state_table(progress_table);
  if (!exists(state)) {
    problems.push_back({state.str(),
                        "load state table missing (an interrupted initial snapshot could not resume)",
                        load_state_table_ddl(state)});
  } else {
    privileges(state, {"SELECT", "INSERT", "UPDATE", "DELETE"});
  }
  {
    auto r = pg_exec_params(conn, "SELECT pg_catalog.has_database_privilege(current_database(), 'TEMP')", {},
                            "checking the TEMP privilege");
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) != "t") {
      problems.push_back({"(database)", "role " + user + " cannot create temporary (staging) tables",
                          "GRANT TEMP ON DATABASE <this database> TO " + quote_ident(user) + ";"});
    }
  }

  for (const auto& t : mapping.tables()) {
    const ColumnTypes* source = nullptr;
    if (types != nullptr) {
      if (auto it = types->find(t.source); it != types->end()) source = &it->second;
    }
    if (!exists(t.target)) {
      problems.push_back({t.target.str(), "table missing",
                          source ? table_ddl(t, *source) : "run `cdcsync target-ddl` and apply its output"});
      continue;
    }
    const ColumnTypes actual = columns_of(t.target);
    // Columns the order server fills itself: a generated one takes no value, an identity GENERATED ALWAYS
    // one takes it on insert (the sink says OVERRIDING SYSTEM VALUE) but never on update.
    auto kinds = pg_exec_params(conn,
                                "SELECT a.attname::text, a.attgenerated::text, a.attidentity::text FROM "
                                "pg_catalog.pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 "
                                "AND NOT a.attisdropped AND (a.attgenerated <> '' OR a.attidentity = 'a')",
                                {t.target.quoted()}, "reading target generated columns");
    const auto key = t.key_indexes();
    for (int r = 0; r < PQntuples(kinds.get()); ++r) {
      const std::string column = PQgetvalue(kinds.get(), r, 0);
      const auto mapped = std::find_if(t.columns.begin(), t.columns.end(),
                                       [&](const ColumnMapping& c) { return c.target == column; });
      if (mapped == t.columns.end()) continue;
      const bool is_key = std::find(key.begin(), key.end(),
                                    static_cast<std::size_t>(mapped - t.columns.begin())) != key.end();
      if (std::string_view(PQgetvalue(kinds.get(), r, 1)) != "") {
        problems.push_back({t.target.str(),
                            "column " + column + " is generated on the order DB: it takes no value, yet " +
                                mapped->source + " is mapped to it",
                            "remove " + mapped->source + " from [[tables]].columns (the order DB computes " +
                                column + "), or ALTER TABLE " + t.target.quoted() + " ALTER COLUMN " +
                                quote_ident(column) + " DROP EXPRESSION;"});
      } else if (!is_key) {
        problems.push_back({t.target.str(),
                            "column " + column +
                                " is an identity GENERATED ALWAYS: an update cannot write the source's value",
                            "ALTER TABLE " + t.target.quoted() + " ALTER COLUMN " + quote_ident(column) +
                                " SET GENERATED BY DEFAULT;"});
      }
    }
    for (const auto& c : t.columns) {
      const std::string expected = source ? target_type(c, *source) : std::string("<type>");
      const auto it = actual.find(c.target);
      if (it == actual.end()) {
        problems.push_back({t.target.str(), "column " + c.target + " missing",
                            "ALTER TABLE " + t.target.quoted() + " ADD COLUMN " + quote_ident(c.target) +
                                " " + expected + ";"});
      } else if (source && it->second != expected && it->second != "text") {
        problems.push_back(
            {t.target.str(),
             "column " + c.target + " has type " + it->second + ", the source gives " + expected,
             "ALTER TABLE " + t.target.quoted() + " ALTER COLUMN " + quote_ident(c.target) + " TYPE " +
                 expected + ";"});
      }
    }
    const auto guard = actual.find(t.lsn_column);
    if (guard == actual.end() || guard->second != "pg_lsn") {
      problems.push_back(
          {t.target.str(),
           "LSN guard column " + t.lsn_column + (guard == actual.end() ? " missing" : " is not pg_lsn"),
           "ALTER TABLE " + t.target.quoted() + " ADD COLUMN IF NOT EXISTS " + quote_ident(t.lsn_column) +
               " pg_lsn NOT NULL DEFAULT '0/0';"});
    }
    if (t.deletes == DeletePolicy::Soft) {
      const auto tomb = actual.find(t.tombstone_column);
      if (tomb == actual.end() || tomb->second != "boolean") {
        problems.push_back({t.target.str(),
                            "tombstone column " + t.tombstone_column +
                                (tomb == actual.end() ? " missing" : " is not boolean"),
                            "ALTER TABLE " + t.target.quoted() + " ADD COLUMN IF NOT EXISTS " +
                                quote_ident(t.tombstone_column) + " boolean NOT NULL DEFAULT false;"});
      }
    }
    auto idx = pg_exec_params(conn, kKeyIndexQuery, {t.target.quoted(), text_array(sorted_key_targets(t))},
                              "looking for the key's unique index");
    if (std::string_view(PQgetvalue(idx.get(), 0, 0)) == "0") {
      std::string cols;
      for (std::size_t k : t.key_indexes())
        cols += (cols.empty() ? "" : ", ") + quote_ident(t.columns[k].target);
      problems.push_back({t.target.str(),
                          "no unique index on exactly the key columns (ON CONFLICT needs one)",
                          "CREATE UNIQUE INDEX ON " + t.target.quoted() + " (" + cols + ");"});
    }
    privileges(t.target, {"SELECT", "INSERT", "UPDATE", "DELETE"});
  }
  return problems;
}

}  // namespace cdcsync
