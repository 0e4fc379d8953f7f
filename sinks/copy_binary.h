// COPY's binary format, writing side: each field in its type's binary receive format, encoded from the text
// that pgoutput sends (the source type's output function).
//
// The target parses text COPY field by field (scanning every byte for delimiters and escapes, then calling
// the type's input function); the binary format hands it length-prefixed values it copies or reads as
// integers. An encoder accepts only the text the type's output function produces in its usual form and
// gives exactly the value the type's input function would read from it; anything else (another DateStyle,
// an exponent, a year before 1 or after 9999, another IntervalStyle, an array with other bounds) is refused,
// and the caller copies the table as text instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cdcsync {

// The target column types that have an encoder (built-in type OIDs).
enum class BinaryType : std::uint8_t {
  Unsupported,
  Bool,         // bool
  Int2,         // smallint
  Int4,         // integer
  Int8,         // bigint
  Float4,       // real
  Float8,       // double precision
  Numeric,      // numeric
  Text,         // text, varchar, bpchar, json: the bytes themselves
  Jsonb,        // jsonb: version 1, then the text
  Bytea,        // bytea, from its hex output (\x…)
  Uuid,         // uuid
  Date,         // date, ISO
  Timestamp,    // timestamp without time zone, ISO
  Timestamptz,  // timestamp with time zone, ISO with its UTC offset
  PgLsn,        // pg_lsn
  Time,         // time without time zone
  Timetz,       // time with time zone, with its UTC offset
  Interval,     // interval, IntervalStyle postgres
  Inet,         // inet
  Cidr,         // cidr, with its mask length
  Macaddr,      // macaddr, six colon-separated hex bytes
  Macaddr8,     // macaddr8, eight colon-separated hex bytes
  Oid,          // oid
};
inline constexpr BinaryType kLastBinaryType = BinaryType::Oid;

// The encoder for a built-in type `type_oid`; Unsupported for every other type.
BinaryType binary_type_of(std::uint32_t type_oid);
std::string_view name_of(BinaryType t);

// How a column's values are encoded: with one scalar encoder, or (array_of set) as a one-dimensional array
// whose elements that encoder encodes, `array_of` being the element type written in each array's header.
struct BinaryEncoder {
  BinaryType type = BinaryType::Unsupported;
  std::uint32_t array_of = 0;
  bool supported() const { return type != BinaryType::Unsupported; }
  friend bool operator==(const BinaryEncoder&, const BinaryEncoder&) = default;
};
std::string name_of(const BinaryEncoder& e);  // "int4", "text[]"

// A target column's type as the catalog describes it: the type, and under any domains its base type (an
// enum's 'e' kind included), and when that is an array its element type, declared and under any domains.
struct ColumnType {
  std::uint32_t oid = 0;
  std::string shown;  // format_type()
  std::uint32_t base = 0;
  char base_kind = 'b';       // pg_type.typtype of base
  std::uint32_t element = 0;  // base is an array (array_recv): its element type; else 0
  std::uint32_t element_base = 0;
  char element_kind = 'b';
};
// The encoder for a column of that type; unsupported when the type or its elements have none. An enum is
// read by its receive function as its label's text; a domain as its base type.
BinaryEncoder binary_encoder_of(const ColumnType& c);

// Appends one field (length, then the value's bytes) for the text `v` of a value of a column of type `t`.
// Returns false, with `out` as it was, when `v` is not text this encoder accepts.
bool append_copy_binary(std::string& out, BinaryType t, std::string_view v);
// The same for any encoder: an array's text is read as array_out writes it, one dimension, lower bound 1.
bool append_copy_binary(std::string& out, const BinaryEncoder& e, std::string_view v);

inline void append_be16(std::string& out, std::uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 2);
}
inline void append_be32(std::string& out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}
inline void append_be64(std::string& out, std::uint64_t v) {
  append_be32(out, static_cast<std::uint32_t>(v >> 32));
  append_be32(out, static_cast<std::uint32_t>(v));
}

// The stream's header (signature, no flags, no extension), a row's field count, a NULL field, the trailer.
inline void append_copy_binary_header(std::string& out) {
  out.append("PGCOPY\n\377\r\n\0", 11);
  append_be32(out, 0);
  append_be32(out, 0);
}
inline void append_copy_binary_row(std::string& out, std::size_t fields) {
  append_be16(out, static_cast<std::uint16_t>(fields));
}
inline void append_copy_binary_null(std::string& out) {
  append_be32(out, 0xFFFFFFFFu);
}
inline void append_copy_binary_trailer(std::string& out) {
  append_be16(out, 0xFFFFu);
}

// Fields the sink writes itself: an int4, a pg_lsn, a bool, a "char".
inline void append_copy_binary_int4(std::string& out, std::int32_t v) {
  append_be32(out, 4);
  append_be32(out, static_cast<std::uint32_t>(v));
}
inline void append_copy_binary_lsn(std::string& out, std::uint64_t lsn) {
  append_be32(out, 8);
  append_be64(out, lsn);
}
inline void append_copy_binary_bool(std::string& out, bool v) {
  append_be32(out, 1);
  out.push_back(v ? '\1' : '\0');
}
inline void append_copy_binary_char(std::string& out, char c) {
  append_be32(out, 1);
  out.push_back(c);
}

}  // namespace cdcsync
