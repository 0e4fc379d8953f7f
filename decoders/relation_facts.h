// What the source's catalog says of a table that its Relation message does not: per column whether it is
// NOT NULL and its default expression, and the columns of the table's message key. Debezium's PostgreSQL
// connector reads the same facts out of band for every Relation message
// (PgOutputMessageDecoder.handleRelationMessage: getColumns, readPrimaryKeyNames, readTableUniqueIndices);
// CatalogFacts is where an encoder asks for them, PgCatalogFacts the one that asks the source.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/pg.h"
#include "decoders/type_catalog.h"

namespace cdcsync {

struct ColumnFacts {
  std::string name;
  bool not_null = false;
  std::optional<std::string> default_expression;  // pg_get_expr(adbin): "nextval('t_id_seq'::regclass)"
};

struct RelationFacts {
  std::vector<ColumnFacts> columns;  // in attnum order, dropped columns left out
  // The message key: the primary key's columns in key order; without one, the first unique index's (in
  // pgjdbc's getIndexInfo order, skipping indexes on expressions); else none (a null key).
  std::vector<std::string> key;

  const ColumnFacts* column(std::string_view name) const {
    for (const ColumnFacts& c : columns) {
      if (c.name == name) return &c;
    }
    return nullptr;
  }
};

// Whether transaction `xid` (32 bits, as the stream carries it) has ended in `snapshot`, the text of
// pg_current_snapshot() ("xmin:xmax:xip,..."): below xmax and not in progress.
bool transaction_visible(std::string_view snapshot, Xid xid);

// The catalog could not be read; the message names the table (or says it was the type catalog).
class CatalogError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CatalogFacts {
 public:
  virtual ~CatalogFacts() = default;
  // The facts of `relation` as the catalog has them now, in a snapshot that sees transaction `xid` (the one
  // the Relation message came with; 0: no such wait) committed: one query. The stream can carry a commit a
  // moment before other sessions see it, and a Relation message after DDL in the same transaction must not
  // read the catalog as it was before. Encoders ask once per Relation message (each one is a new
  // RelationDef), never per row. A table the catalog no longer has gives empty facts. Throws CatalogError
  // naming the table.
  virtual RelationFacts relation_facts(const RelationDef& relation, Xid xid) = 0;
  // Reads the source's user and extension types again into the catalog the encoder resolves with (a type
  // created after the last read); false when this source cannot (a fake). Throws CatalogError.
  virtual bool reload_types() = 0;
};

// Asks the source over one ordinary connection, opened on first use. A query that fails on a lost
// connection is tried once more on a new one; then it throws CatalogError naming the table. A transaction not
// yet visible is waited for (the query again after 1, 2, 4... ms) for up to `visibility_wait`; after that the
// facts are taken as they are (a transaction streamed before its commit).
class PgCatalogFacts final : public CatalogFacts {
 public:
  // `catalog` is the one reload_types() keeps current; it must outlive this object.
  PgCatalogFacts(std::string conninfo, TypeCatalog& catalog,
                 std::chrono::milliseconds visibility_wait = std::chrono::seconds(5));

  RelationFacts relation_facts(const RelationDef& relation, Xid xid) override;
  bool reload_types() override;
  // Opens the connection now (so a bad conninfo fails at start); throws PgError.
  void connect();

  std::uint64_t queries() const { return queries_; }

 private:
  template <class Query>
  auto with_connection(const std::string& what, Query&& query);

  std::string conninfo_;
  TypeCatalog& catalog_;
  std::chrono::milliseconds visibility_wait_;
  PgConn conn_;
  std::uint64_t queries_ = 0;
};

}  // namespace cdcsync
