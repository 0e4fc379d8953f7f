// TypeCatalog: what a column's type OID means to an encoder. Builtin types are known without a server; user
// types (enums, domains, arrays of them) and extension types with dynamic OIDs (citext, hstore, ltree) are
// read from pg_type/pg_enum with one query, or added by hand in tests.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "decoders/change.h"

namespace cdcsync {

// How a value of the type is represented; domains are resolved to their base type before this is used.
enum class TypeKind : std::uint8_t {
  Unknown,  // not known to the catalog: encoded as its text form and counted
  Bool,
  Bit,     // bit(n); bit(1) is a boolean
  Varbit,  // bit varying(n)
  Int2,
  Int4,
  Int8,  // also oid
  Float4,
  Float8,
  Numeric,
  Money,
  Text,  // text, varchar, bpchar, char, name, citext and the builtins that are plain strings
  Date,
  Time,
  TimeTz,
  Timestamp,
  TimestampTz,
  Interval,
  Bytea,
  Uuid,
  Json,  // json and jsonb
  Xml,
  Point,
  Range,  // builtin and user ranges and multiranges: their text form
  Ltree,
  Hstore,
  Enum,
  Domain,
  Array,
};

struct TypeInfo {
  Oid oid = 0;
  std::string schema;  // "pg_catalog" for builtins
  std::string name;
  TypeKind kind = TypeKind::Unknown;
  Oid base_oid = 0;                 // Domain: the type it constrains
  std::int32_t base_typmod = -1;    // Domain: the typmod it declares (numeric(12,2) as a domain)
  Oid element_oid = 0;              // Array: the element type
  std::vector<std::string> labels;  // Enum: labels in sort order
};

// A column type with domains resolved: what the encoder switches on.
struct ResolvedType {
  const TypeInfo* type = nullptr;     // never a Domain; null when the OID is unknown
  std::int32_t typmod = -1;           // the column's, else the innermost domain's declared typmod
  const TypeInfo* element = nullptr;  // Array: the resolved element type (null when unknown)
  std::int32_t element_typmod = -1;

  TypeKind kind() const { return type ? type->kind : TypeKind::Unknown; }
  TypeKind element_kind() const { return element ? element->kind : TypeKind::Unknown; }
};

class TypeCatalog {
 public:
  TypeCatalog();  // with every builtin type the encoder knows

  const TypeInfo* find(Oid oid) const;
  ResolvedType resolve(Oid oid, std::int32_t typmod) const;

  // By hand (tests) or from load(). A later add with the same OID replaces the earlier one.
  void add_enum(Oid oid, std::string schema, std::string name, std::vector<std::string> labels);
  void add_domain(Oid oid, std::string schema, std::string name, Oid base_oid, std::int32_t base_typmod);
  void add_array(Oid oid, std::string schema, std::string name, Oid element_oid);
  void add_type(Oid oid, std::string schema, std::string name, TypeKind kind);
  // Extension types are recognised by name: citext -> Text, hstore -> Hstore, ltree -> Ltree.
  void add_extension_type(Oid oid, std::string schema, std::string name);

  // Reads every user and extension type (OID >= 16384: enums with their labels, domains, arrays, ranges,
  // citext/hstore/ltree) with one query on an ordinary connection. Throws PgError. Returns how many types
  // were added.
  std::size_t load(PGconn* conn);

  std::size_t size() const { return types_.size(); }

 private:
  void add(TypeInfo info);

  std::unordered_map<Oid, TypeInfo> types_;
};

// Parses PostgreSQL's array text output for one dimension level ("{a,\"b c\",NULL}"), used by the catalog
// for enum labels and by the encoder for array values. Calls `element(text, is_null)` for each element of a
// one-dimensional array; nested dimensions are reported through `open()`/`close()`. Returns false on
// malformed input. `scratch` holds unescaped element text between calls.
class ArrayTextParser {
 public:
  struct Handler {
    virtual ~Handler() = default;
    virtual void open() = 0;
    virtual void close() = 0;
    virtual void element(std::string_view text, bool is_null) = 0;
  };
  // `delimiter` is ',' for every builtin type except box (';').
  static bool parse(std::string_view text, Handler& handler, std::string& scratch, char delimiter = ',');
  // The non-null elements of a one-dimensional text[] (enum labels, key column names), appended to `out`.
  // Returns false on malformed input.
  static bool strings(std::string_view text, std::vector<std::string>& out);
};

}  // namespace cdcsync
