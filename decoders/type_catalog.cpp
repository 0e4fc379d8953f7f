#include "decoders/type_catalog.h"

#include <cstdlib>

#include "decoders/pg.h"
#include "decoders/pg_types.h"

namespace cdcsync {
namespace {

struct Builtin {
  Oid oid;
  const char* name;
  TypeKind kind;
};

constexpr Builtin kBuiltins[] = {
    {pgtype::kBool, "bool", TypeKind::Bool},
    {pgtype::kBytea, "bytea", TypeKind::Bytea},
    {pgtype::kChar, "char", TypeKind::Text},
    {pgtype::kName, "name", TypeKind::Text},
    {pgtype::kInt8, "int8", TypeKind::Int8},
    {pgtype::kInt2, "int2", TypeKind::Int2},
    {pgtype::kInt4, "int4", TypeKind::Int4},
    {pgtype::kText, "text", TypeKind::Text},
    {pgtype::kOid, "oid", TypeKind::Int8},
    {pgtype::kJson, "json", TypeKind::Json},
    {pgtype::kXml, "xml", TypeKind::Xml},
    {pgtype::kPoint, "point", TypeKind::Point},
    {pgtype::kCidr, "cidr", TypeKind::Text},
    {pgtype::kFloat4, "float4", TypeKind::Float4},
    {pgtype::kFloat8, "float8", TypeKind::Float8},
    {pgtype::kMacaddr8, "macaddr8", TypeKind::Text},
    {pgtype::kMoney, "money", TypeKind::Money},
    {pgtype::kMacaddr, "macaddr", TypeKind::Text},
    {pgtype::kInet, "inet", TypeKind::Text},
    {pgtype::kBpchar, "bpchar", TypeKind::Text},
    {pgtype::kVarchar, "varchar", TypeKind::Text},
    {pgtype::kDate, "date", TypeKind::Date},
    {pgtype::kTime, "time", TypeKind::Time},
    {pgtype::kTimestamp, "timestamp", TypeKind::Timestamp},
    {pgtype::kTimestampTz, "timestamptz", TypeKind::TimestampTz},
    {pgtype::kInterval, "interval", TypeKind::Interval},
    {pgtype::kTimeTz, "timetz", TypeKind::TimeTz},
    {pgtype::kBit, "bit", TypeKind::Bit},
    {pgtype::kVarbit, "varbit", TypeKind::Varbit},
    {pgtype::kNumeric, "numeric", TypeKind::Numeric},
    {pgtype::kUuid, "uuid", TypeKind::Uuid},
    {pgtype::kTsvector, "tsvector", TypeKind::Text},
    {pgtype::kJsonb, "jsonb", TypeKind::Json},
    {pgtype::kInt4Range, "int4range", TypeKind::Range},
    {pgtype::kNumRange, "numrange", TypeKind::Range},
    {pgtype::kTsRange, "tsrange", TypeKind::Range},
    {pgtype::kTstzRange, "tstzrange", TypeKind::Range},
    {pgtype::kDateRange, "daterange", TypeKind::Range},
    {pgtype::kInt8Range, "int8range", TypeKind::Range},
    {4451, "int4multirange", TypeKind::Range},
    {4532, "nummultirange", TypeKind::Range},
    {4533, "tsmultirange", TypeKind::Range},
    {4534, "tstzmultirange", TypeKind::Range},
    {4535, "datemultirange", TypeKind::Range},
    {4536, "int8multirange", TypeKind::Range},
};

struct BuiltinArray {
  Oid oid;
  Oid element;
};

constexpr BuiltinArray kBuiltinArrays[] = {
    {1000, pgtype::kBool},      {1001, pgtype::kBytea},       {1002, pgtype::kChar},
    {1003, pgtype::kName},      {1005, pgtype::kInt2},        {1007, pgtype::kInt4},
    {1009, pgtype::kText},      {1028, pgtype::kOid},         {1015, pgtype::kVarchar},
    {1014, pgtype::kBpchar},    {1016, pgtype::kInt8},        {1017, pgtype::kPoint},
    {1021, pgtype::kFloat4},    {1022, pgtype::kFloat8},      {791, pgtype::kMoney},
    {1040, pgtype::kMacaddr},   {1041, pgtype::kInet},        {651, pgtype::kCidr},
    {775, pgtype::kMacaddr8},   {1182, pgtype::kDate},        {1183, pgtype::kTime},
    {1115, pgtype::kTimestamp}, {1185, pgtype::kTimestampTz}, {1187, pgtype::kInterval},
    {1270, pgtype::kTimeTz},    {1561, pgtype::kBit},         {1563, pgtype::kVarbit},
    {1231, pgtype::kNumeric},   {2951, pgtype::kUuid},        {199, pgtype::kJson},
    {3807, pgtype::kJsonb},     {143, pgtype::kXml},          {3643, pgtype::kTsvector},
    {3905, pgtype::kInt4Range}, {3907, pgtype::kNumRange},    {3909, pgtype::kTsRange},
    {3911, pgtype::kTstzRange}, {3913, pgtype::kDateRange},   {3927, pgtype::kInt8Range},
};

// Domains over domains are legal; a cycle is not, but a bad catalog must not hang the encoder.
constexpr int kMaxDomainDepth = 16;

class StringCollector final : public ArrayTextParser::Handler {
 public:
  explicit StringCollector(std::vector<std::string>& out) : out_(out) {}
  void open() override {}
  void close() override {}
  void element(std::string_view text, bool is_null) override {
    if (!is_null) out_.emplace_back(text);
  }

 private:
  std::vector<std::string>& out_;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

TypeCatalog::TypeCatalog() {
  for (const Builtin& b : kBuiltins)
    add({.oid = b.oid, .schema = "pg_catalog", .name = b.name, .kind = b.kind});
  for (const BuiltinArray& a : kBuiltinArrays) {
    const TypeInfo* element = find(a.element);
    add({.oid = a.oid,
         .schema = "pg_catalog",
         .name = "_" + (element ? element->name : std::string{"unknown"}),
         .kind = TypeKind::Array,
         .element_oid = a.element});
  }
}

void TypeCatalog::add(TypeInfo info) {
  const Oid oid = info.oid;
  types_.insert_or_assign(oid, std::move(info));
}

const TypeInfo* TypeCatalog::find(Oid oid) const {
  const auto it = types_.find(oid);
  return it == types_.end() ? nullptr : &it->second;
}

ResolvedType TypeCatalog::resolve(Oid oid, std::int32_t typmod) const {
  ResolvedType out;
  out.typmod = typmod;
  const TypeInfo* t = find(oid);
  for (int depth = 0; t != nullptr && t->kind == TypeKind::Domain; ++depth) {
    if (depth == kMaxDomainDepth) return ResolvedType{.typmod = typmod};
    if (out.typmod < 0) out.typmod = t->base_typmod;
    t = find(t->base_oid);
  }
  out.type = t;
  if (t != nullptr && t->kind == TypeKind::Array) {
    // An array column's typmod applies to its elements (numeric(12,2)[] has typmod of numeric(12,2)).
    const ResolvedType element = resolve(t->element_oid, out.typmod);
    out.element = element.type;
    out.element_typmod = element.typmod;
  }
  return out;
}

void TypeCatalog::add_enum(Oid oid, std::string schema, std::string name, std::vector<std::string> labels) {
  add({.oid = oid,
       .schema = std::move(schema),
       .name = std::move(name),
       .kind = TypeKind::Enum,
       .labels = std::move(labels)});
}

void TypeCatalog::add_domain(Oid oid, std::string schema, std::string name, Oid base_oid,
                             std::int32_t base_typmod) {
  add({.oid = oid,
       .schema = std::move(schema),
       .name = std::move(name),
       .kind = TypeKind::Domain,
       .base_oid = base_oid,
       .base_typmod = base_typmod});
}

void TypeCatalog::add_array(Oid oid, std::string schema, std::string name, Oid element_oid) {
  add({.oid = oid,
       .schema = std::move(schema),
       .name = std::move(name),
       .kind = TypeKind::Array,
       .element_oid = element_oid});
}

void TypeCatalog::add_type(Oid oid, std::string schema, std::string name, TypeKind kind) {
  add({.oid = oid, .schema = std::move(schema), .name = std::move(name), .kind = kind});
}

void TypeCatalog::add_extension_type(Oid oid, std::string schema, std::string name) {
  TypeKind kind = TypeKind::Unknown;
  if (name == "citext") {
    kind = TypeKind::Text;
  } else if (name == "hstore") {
    kind = TypeKind::Hstore;
  } else if (name == "ltree") {
    kind = TypeKind::Ltree;
  }
  add_type(oid, std::move(schema), std::move(name), kind);
}

std::size_t TypeCatalog::load(PGconn* conn) {
  // Composite row types (one per table) are left out: the encoder has no use for them.
  static constexpr const char* kSql =
      "SELECT t.oid, n.nspname, t.typname, t.typtype, t.typcategory, t.typbasetype, t.typtypmod, t.typelem, "
      "ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid "
      "ORDER BY e.enumsortorder) "
      "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
      "WHERE t.oid >= 16384 AND t.typtype IN ('b', 'd', 'e', 'r', 'm') ORDER BY t.oid";
  PgResult res = pg_exec(conn, kSql, "load type catalog", PGRES_TUPLES_OK);
  const int rows = PQntuples(res.get());
  for (int r = 0; r < rows; ++r) {
    const auto oid = static_cast<Oid>(std::strtoul(PQgetvalue(res.get(), r, 0), nullptr, 10));
    std::string schema = PQgetvalue(res.get(), r, 1);
    std::string name = PQgetvalue(res.get(), r, 2);
    const char typtype = PQgetvalue(res.get(), r, 3)[0];
    const char category = PQgetvalue(res.get(), r, 4)[0];
    const auto base = static_cast<Oid>(std::strtoul(PQgetvalue(res.get(), r, 5), nullptr, 10));
    const auto typmod = static_cast<std::int32_t>(std::strtol(PQgetvalue(res.get(), r, 6), nullptr, 10));
    const auto elem = static_cast<Oid>(std::strtoul(PQgetvalue(res.get(), r, 7), nullptr, 10));
    switch (typtype) {
      case 'e': {
        std::vector<std::string> labels;
        ArrayTextParser::strings(PQgetvalue(res.get(), r, 8), labels);
        add_enum(oid, std::move(schema), std::move(name), std::move(labels));
        break;
      }
      case 'd':
        add_domain(oid, std::move(schema), std::move(name), base, typmod);
        break;
      case 'r':
      case 'm':
        add_type(oid, std::move(schema), std::move(name), TypeKind::Range);
        break;
      default:
        if (category == 'A' && elem != 0) {
          add_array(oid, std::move(schema), std::move(name), elem);
        } else {
          add_extension_type(oid, std::move(schema), std::move(name));
        }
    }
  }
  return static_cast<std::size_t>(rows);
}

bool ArrayTextParser::parse(std::string_view text, Handler& handler, std::string& scratch, char delimiter) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  // Arrays whose lower bound is not 1 are prefixed with their dimensions: "[0:2]={1,2,3}".
  if (n > 0 && text[0] == '[') {
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos) return false;
    i = eq + 1;
  }
  int depth = 0;
  bool expect_element = true;  // after '{' or a delimiter
  while (i < n) {
    const char c = text[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (c == '{') {
      if (!expect_element) return false;
      handler.open();
      ++depth;
      ++i;
      // An empty level: "{}".
      std::size_t j = i;
      while (j < n && is_space(text[j])) ++j;
      if (j < n && text[j] == '}') {
        handler.close();
        --depth;
        i = j + 1;
        expect_element = false;
        if (depth == 0) break;
      }
      continue;
    }
    if (depth == 0) return false;
    if (c == '}') {
      if (expect_element) return false;
      handler.close();
      --depth;
      ++i;
      if (depth == 0) break;
      continue;
    }
    if (c == delimiter) {
      if (expect_element) return false;
      expect_element = true;
      ++i;
      continue;
    }
    if (!expect_element) return false;
    scratch.clear();
    if (c == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char q = text[i++];
        if (q == '\\') {
          if (i == n) return false;
          scratch.push_back(text[i++]);
        } else if (q == '"') {
          closed = true;
          break;
        } else {
          scratch.push_back(q);
        }
      }
      if (!closed) return false;
      handler.element(scratch, false);
    } else {
      bool escaped = false;
      std::size_t trailing_space = 0;  // unquoted elements lose surrounding whitespace
      while (i < n && text[i] != delimiter && text[i] != '}' && text[i] != '{') {
        const char u = text[i++];
        if (u == '\\') {
          if (i == n) return false;
          scratch.push_back(text[i++]);
          escaped = true;
          trailing_space = 0;
        } else {
          scratch.push_back(u);
          trailing_space = is_space(u) ? trailing_space + 1 : 0;
        }
      }
      scratch.resize(scratch.size() - trailing_space);
      const bool is_null = !escaped && scratch.size() == 4 && (scratch[0] | 0x20) == 'n' &&
                           (scratch[1] | 0x20) == 'u' && (scratch[2] | 0x20) == 'l' &&
                           (scratch[3] | 0x20) == 'l';
      handler.element(is_null ? std::string_view{} : std::string_view{scratch}, is_null);
    }
    expect_element = false;
  }
  if (depth != 0 || expect_element) return false;
  while (i < n && is_space(text[i])) ++i;
  return i == n;
}

bool ArrayTextParser::strings(std::string_view text, std::vector<std::string>& out) {
  std::string scratch;
  StringCollector collect{out};
  return parse(text, collect, scratch);
}

}  // namespace cdcsync
