// Initial snapshot: the mapped columns of each table, read in the slot's exported snapshot, as chunks.
#include "daemon/core/snapshot.h"

#include <memory>
#include <stdexcept>

#include "decoders/pg.h"

namespace cdcsync {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Unescapes one field of COPY text format into `out`; false on a malformed escape.
bool unescape(std::string_view field, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < field.size(); ++i) {
    const char c = field[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i == field.size()) return false;
    const char e = field[i];
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case 'x': {
        int v = 0, n = 0;
        while (n < 2 && i + 1 < field.size() && hex_digit(field[i + 1]) >= 0)
          v = v * 16 + hex_digit(field[++i]), ++n;
        if (n == 0) return false;
        out.push_back(static_cast<char>(v));
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          int v = e - '0', n = 1;
          while (n < 3 && i + 1 < field.size() && field[i + 1] >= '0' && field[i + 1] <= '7')
            v = v * 8 + (field[++i] - '0'), ++n;
          out.push_back(static_cast<char>(v));
        } else {
          out.push_back(e);  // "\\" and any other escaped character stand for themselves
        }
    }
  }
  return true;
}

std::string qualified(const std::string& schema, const std::string& name) {
  return quote_ident(schema) + "." + quote_ident(name);
}

RelationPtr describe(PGconn* conn, const SnapshotTable& t) {
  auto rel = std::make_shared<RelationDef>();
  rel->schema = t.schema;
  rel->name = t.name;
  const std::string table = qualified(t.schema, t.name);
  PgResult oid = pg_exec_params(conn, "SELECT $1::regclass::oid", {table}, "looking up " + table);
  rel->id = RelationId{static_cast<std::uint32_t>(std::stoul(PQgetvalue(oid.get(), 0, 0)))};
  for (const auto& column : t.columns) {
    PgResult res =
        pg_exec_params(conn,
                       "SELECT atttypid, atttypmod FROM pg_catalog.pg_attribute "
                       "WHERE attrelid = $1::oid AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                       {std::string(PQgetvalue(oid.get(), 0, 0)), column}, "describing " + table);
    if (PQntuples(res.get()) != 1) {
      throw std::runtime_error("source table " + t.schema + "." + t.name + " has no column \"" + column +
                               "\"");
    }
    ColumnDef def;
    def.name = column;
    def.type_oid = static_cast<Oid>(std::stoul(PQgetvalue(res.get(), 0, 0)));
    def.type_modifier = std::stoi(PQgetvalue(res.get(), 0, 1));
    for (const auto& k : t.key) def.part_of_key = def.part_of_key || k == column;
    rel->columns.push_back(std::move(def));
  }
  return rel;
}

}  // namespace

bool parse_copy_text_row(std::string_view line, std::size_t columns, Tuple& out, std::string& scratch) {
  out.clear();
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::size_t start = 0;
  for (std::size_t col = 0; col < columns; ++col) {
    const std::size_t tab = line.find('\t', start);
    const bool last = col + 1 == columns;
    if (last != (tab == std::string_view::npos)) return false;  // too few or too many fields
    const std::string_view field = line.substr(start, last ? std::string_view::npos : tab - start);
    if (field == "\\N") {
      out.add_null();
    } else {
      if (!unescape(field, scratch)) return false;
      out.add_text(scratch);
    }
    start = tab + 1;
  }
  return true;
}

std::uint64_t copy_snapshot(const std::string& source_conninfo, const std::string& snapshot_name,
                            Lsn consistent_point, const std::vector<SnapshotTable>& tables,
                            std::size_t chunk_rows, const std::function<void(Transaction&&)>& apply,
                            const std::function<void(const std::string&, std::uint64_t)>& progress) {
  PgConn conn = pg_connect(source_conninfo, "the source (snapshot)");
  pg_exec(conn.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the snapshot transaction");
  {
    std::unique_ptr<char, PqFreemem> lit{
        PQescapeLiteral(conn.get(), snapshot_name.data(), snapshot_name.size())};
    pg_exec(conn.get(), (std::string("SET TRANSACTION SNAPSHOT ") + lit.get()).c_str(),
            "importing the slot's exported snapshot");
  }

  TransactionInfo info;
  info.final_lsn = consistent_point;
  info.snapshot = true;
  Transaction chunk;
  chunk.info = info;
  chunk.first_chunk = true;
  chunk.last_chunk = false;
  std::uint64_t total = 0;
  std::string scratch;

  auto flush = [&](bool last) {
    chunk.last_chunk = last;
    if (last) chunk.info.end_lsn = consistent_point;
    apply(std::move(chunk));
    chunk = Transaction{};
    chunk.info = info;
    chunk.first_chunk = false;
    chunk.last_chunk = false;
  };

  for (const auto& t : tables) {
    const RelationPtr rel = describe(conn.get(), t);
    std::string select = "COPY (SELECT ";
    for (std::size_t i = 0; i < t.columns.size(); ++i) select += (i ? ", " : "") + quote_ident(t.columns[i]);
    select += " FROM " + qualified(t.schema, t.name) + ") TO STDOUT";
    PgResult res{PQexec(conn.get(), select.c_str())};
    if (!res || PQresultStatus(res.get()) != PGRES_COPY_OUT) {
      throw pg_error(conn.get(), res.get(), "copying " + t.schema + "." + t.name);
    }
    std::uint64_t rows = 0;
    while (true) {
      char* raw = nullptr;
      const int n = PQgetCopyData(conn.get(), &raw, 0);
      if (n == -1) break;
      if (n < 0) throw pg_error(conn.get(), nullptr, "copying " + t.schema + "." + t.name);
      std::unique_ptr<char, PqFreemem> line{raw};
      Change& change = chunk.changes.emplace_back();
      change.op = ChangeOp::Insert;
      change.lsn = consistent_point;
      change.relation = rel;
      if (!parse_copy_text_row({raw, static_cast<std::size_t>(n)}, t.columns.size(), change.after, scratch)) {
        throw std::runtime_error("malformed COPY row from " + t.schema + "." + t.name + " (row " +
                                 std::to_string(rows + 1) + ")");
      }
      ++rows;
      ++total;
      if (chunk.changes.size() >= chunk_rows) {
        flush(false);
        if (progress) progress(t.schema + "." + t.name, rows);
      }
    }
    PgResult done{PQgetResult(conn.get())};
    if (!done || PQresultStatus(done.get()) != PGRES_COMMAND_OK) {
      throw pg_error(conn.get(), done.get(), "copying " + t.schema + "." + t.name);
    }
    while (PgResult more{PQgetResult(conn.get())}) {
    }
    if (progress) progress(t.schema + "." + t.name, rows);
  }
  flush(true);
  pg_exec(conn.get(), "COMMIT", "ending the snapshot transaction");
  return total;
}

}  // namespace cdcsync
