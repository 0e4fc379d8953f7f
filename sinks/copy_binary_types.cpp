// COPY's binary format: which encoder a target column's type gets (by OID, through domains, enums and
// arrays) and the encoders' names. Used at connect and by `cdcsync check`, never per value.
#include "decoders/pg_types.h"
#include "sinks/copy_binary.h"

namespace cdcsync {

BinaryType binary_type_of(std::uint32_t type_oid) {
  using namespace pgtype;
  switch (type_oid) {
    case kBool:
      return BinaryType::Bool;
    case kBytea:
      return BinaryType::Bytea;
    case kInt8:
      return BinaryType::Int8;
    case kInt2:
      return BinaryType::Int2;
    case kInt4:
      return BinaryType::Int4;
    case kText:
    case kJson:
    case kBpchar:
    case kVarchar:
      return BinaryType::Text;
    case kFloat4:
      return BinaryType::Float4;
    case kFloat8:
      return BinaryType::Float8;
    case kDate:
      return BinaryType::Date;
    case kTimestamp:
      return BinaryType::Timestamp;
    case kTimestampTz:
      return BinaryType::Timestamptz;
    case kNumeric:
      return BinaryType::Numeric;
    case kUuid:
      return BinaryType::Uuid;
    case kPgLsn:
      return BinaryType::PgLsn;
    case kJsonb:
      return BinaryType::Jsonb;
    case kTime:
      return BinaryType::Time;
    case kTimeTz:
      return BinaryType::Timetz;
    case kInterval:
      return BinaryType::Interval;
    case kInet:
      return BinaryType::Inet;
    case kCidr:
      return BinaryType::Cidr;
    case kMacaddr:
      return BinaryType::Macaddr;
    case kMacaddr8:
      return BinaryType::Macaddr8;
    case kOid:
      return BinaryType::Oid;
    default:
      return BinaryType::Unsupported;
  }
}

std::string_view name_of(BinaryType t) {
  switch (t) {
    case BinaryType::Unsupported:
      return "unsupported";
    case BinaryType::Bool:
      return "bool";
    case BinaryType::Int2:
      return "int2";
    case BinaryType::Int4:
      return "int4";
    case BinaryType::Int8:
      return "int8";
    case BinaryType::Float4:
      return "float4";
    case BinaryType::Float8:
      return "float8";
    case BinaryType::Numeric:
      return "numeric";
    case BinaryType::Text:
      return "text";
    case BinaryType::Jsonb:
      return "jsonb";
    case BinaryType::Bytea:
      return "bytea";
    case BinaryType::Uuid:
      return "uuid";
    case BinaryType::Date:
      return "date";
    case BinaryType::Timestamp:
      return "timestamp";
    case BinaryType::Timestamptz:
      return "timestamptz";
    case BinaryType::PgLsn:
      return "pg_lsn";
    case BinaryType::Time:
      return "time";
    case BinaryType::Timetz:
      return "timetz";
    case BinaryType::Interval:
      return "interval";
    case BinaryType::Inet:
      return "inet";
    case BinaryType::Cidr:
      return "cidr";
    case BinaryType::Macaddr:
      return "macaddr";
    case BinaryType::Macaddr8:
      return "macaddr8";
    case BinaryType::Oid:
      return "oid";
  }
  return "unsupported";
}

std::string name_of(const BinaryEncoder& e) {
  std::string name(name_of(e.type));
  if (e.array_of != 0) name += "[]";
  return name;
}

BinaryEncoder binary_encoder_of(const ColumnType& c) {
  // A base type with an encoder, or an enum, whose receive function reads the label's text.
  const auto scalar = [](std::uint32_t oid, char kind) {
    return kind == 'e' ? BinaryType::Text : kind == 'b' ? binary_type_of(oid) : BinaryType::Unsupported;
  };
  if (c.element == 0) return {scalar(c.base, c.base_kind), 0};
  const BinaryType t = scalar(c.element_base, c.element_kind);
  if (t == BinaryType::Unsupported) return {};
  return {t, c.element};
}

}  // namespace cdcsync
