#include "decoders/debezium_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "decoders/pg_text.h"
#include "decoders/pg_types.h"

namespace cdcsync {
namespace {

using rapidjson::kNumberType;
using rapidjson::kStringType;

constexpr std::int64_t kMicrosPerSecond = 1'000'000;
constexpr std::int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;
// interval.handling.mode=numeric: a month is 365.25 / 12 days (Debezium's MicroDuration.DAYS_PER_MONTH_AVG),
// which is a whole number of seconds: 2,629,800.
constexpr std::int64_t kMicrosPerMonth = 2'629'800 * kMicrosPerSecond;
// PostgreSQL dates count days from 2000-01-01.

// "Data type mappings > TIMESTAMP type": +/-infinity timestamps become these values (the JDBC driver's
// PGStatement.DATE_POSITIVE_INFINITY / DATE_NEGATIVE_INFINITY).
constexpr std::int64_t kTimestampPositiveInfinity = 9'223'372'036'825'200'000;
constexpr std::int64_t kTimestampNegativeInfinity = -9'223'372'036'832'400'000;
// Dates: the connector parses "infinity" / "-infinity" to LocalDate -5877611-06-21 / -5877611-06-22.
constexpr std::int32_t kDatePositiveInfinity = -2'147'472'692;
constexpr std::int32_t kDateNegativeInfinity = -2'147'472'691;

constexpr std::string_view kSnapshotAllowed =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

// ---- small parsers over PostgreSQL's text output -------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// JSON's number grammar; PostgreSQL's integer and float output always matches it except NaN/Infinity.
bool is_json_number(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  if (i < n && s[i] == '-') ++i;
  if (i == n || !is_digit(s[i])) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (i == n || !is_digit(s[i])) return false;
    while (i < n && is_digit(s[i])) ++i;
  }
  return i == n;
}

bool is_json_integer(std::string_view s) {
  std::size_t i = (!s.empty() && s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!is_digit(s[i])) return false;
  }
  return s.size() < 2 || !(s[0] == '0' || (s[0] == '-' && s[1] == '0' && s.size() > 2));
}

// Reads exactly `width` digits, or at least `width` when `width_is_min`.
bool read_int(std::string_view s, std::size_t& i, std::int64_t& out, std::size_t width,
              bool width_is_min = false) {
  const std::size_t start = i;
  std::int64_t v = 0;
  while (i < s.size() && is_digit(s[i]) && (width_is_min || i - start < width)) {
    v = v * 10 + (s[i] - '0');
    ++i;
    if (i - start > 12) return false;
  }
  if (i - start < width) return false;
  out = v;
  return true;
}

void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

// "YYYY-MM-DD" (the year may be longer); advances i. Era suffix is handled by the caller.
bool parse_date_part(std::string_view s, std::size_t& i, std::int64_t& year, std::int64_t& month,
                     std::int64_t& day) {
  if (!read_int(s, i, year, 4, true)) return false;
  if (i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!read_int(s, i, month, 2) || i >= s.size() || s[i] != '-') return false;
  ++i;
  if (!read_int(s, i, day, 2)) return false;
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

// "HH:MM:SS[.ffffff]" -> microseconds past midnight (24:00:00 allowed); advances i.
bool parse_time_part(std::string_view s, std::size_t& i, std::int64_t& micros) {
  std::int64_t h = 0, m = 0, sec = 0;
  if (!read_int(s, i, h, 2, true) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!read_int(s, i, m, 2) || i >= s.size() || s[i] != ':') return false;
  ++i;
  if (!read_int(s, i, sec, 2)) return false;
  std::int64_t frac = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && is_digit(s[i])) {
      if (digits < 6) {
        frac = frac * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (digits == 0) return false;
    for (; digits < 6; ++digits) frac *= 10;
  }
  micros = ((h * 60 + m) * 60 + sec) * kMicrosPerSecond + frac;
  return true;
}

// "+HH", "+HH:MM" or "+HH:MM:SS" -> seconds east of UTC; advances i.
bool parse_offset(std::string_view s, std::size_t& i, std::int64_t& seconds) {
  if (i >= s.size() || (s[i] != '+' && s[i] != '-')) return false;
  const std::int64_t sign = s[i] == '-' ? -1 : 1;
  ++i;
  std::int64_t h = 0, m = 0, sec = 0;
  if (!read_int(s, i, h, 2)) return false;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!read_int(s, i, m, 2)) return false;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!read_int(s, i, sec, 2)) return false;
    }
  }
  seconds = sign * (h * 3600 + m * 60 + sec);
  return true;
}

// " BC" at position i (the rest of the string) turns year Y BC into astronomical year 1 - Y.
bool apply_era(std::string_view s, std::size_t& i, std::int64_t& year) {
  if (i == s.size()) return true;
  if (s.substr(i) == " BC") {
    year = 1 - year;
    i = s.size();
    return true;
  }
  return false;
}

bool parse_date(std::string_view s, std::int64_t& unix_days) {
  std::size_t i = 0;
  std::int64_t y = 0, m = 0, d = 0;
  if (!parse_date_part(s, i, y, m, d) || !apply_era(s, i, y)) return false;
  unix_days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

// timestamp and timestamptz text -> microseconds since the Unix epoch (UTC for timestamptz).
bool parse_timestamp(std::string_view s, bool with_zone, std::int64_t& unix_micros) {
  std::size_t i = 0;
  std::int64_t y = 0, mo = 0, d = 0, t = 0, offset = 0;
  if (!parse_date_part(s, i, y, mo, d) || i >= s.size() || s[i] != ' ') return false;
  ++i;
  if (!parse_time_part(s, i, t)) return false;
  if (with_zone && !parse_offset(s, i, offset)) return false;
  if (!apply_era(s, i, y)) return false;
  const std::int64_t days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  unix_micros = days * kMicrosPerDay + t - offset * kMicrosPerSecond;
  return true;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

void append_padded(std::string& out, std::int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out.push_back('0');
  out.append(buf, end);
}

// Transaction ids are "<xid>:<commit LSN as a decimal number>".
void append_txn_id(std::string& out, const TransactionInfo& info) {
  out.clear();
  append_padded(out, info.xid.value, 0);
  out.push_back(':');
  char buf[24];
  const char* end = std::to_chars(buf, buf + sizeof buf, info.final_lsn.value()).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// Java's ISO_LOCAL_TIME fraction: nothing when zero, else the digits without trailing zeros; or a fixed
// width.
void append_fraction(std::string& out, std::int64_t micros_of_second, int fixed_width) {
  if (fixed_width > 0) {
    out.push_back('.');
    std::int64_t v = micros_of_second;
    int digits = 6;
    while (digits > fixed_width) {
      v /= 10;
      --digits;
    }
    append_padded(out, v, fixed_width);
    return;
  }
  if (micros_of_second == 0) return;
  int digits = 6;
  std::int64_t v = micros_of_second;
  while (v % 10 == 0) {
    v /= 10;
    --digits;
  }
  out.push_back('.');
  append_padded(out, v, digits);
}

void append_time_of_day(std::string& out, std::int64_t micros, int fixed_width) {
  const std::int64_t secs = micros / kMicrosPerSecond;
  append_padded(out, secs / 3600, 2);
  out.push_back(':');
  append_padded(out, secs / 60 % 60, 2);
  out.push_back(':');
  append_padded(out, secs % 60, 2);
  append_fraction(out, micros % kMicrosPerSecond, fixed_width);
}

// Java's ISO_OFFSET_DATE_TIME in UTC: years beyond 9999 get '+', negative years '-'.
void append_iso_utc(std::string& out, std::int64_t unix_micros, int fixed_width) {
  const std::int64_t days = floor_div(unix_micros, kMicrosPerDay);
  const std::int64_t tod = unix_micros - days * kMicrosPerDay;
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  if (y > 9999) out.push_back('+');
  if (y < 0) out.push_back('-');
  append_padded(out, y < 0 ? -y : y, 4);
  out.push_back('-');
  append_padded(out, m, 2);
  out.push_back('-');
  append_padded(out, d, 2);
  out.push_back('T');
  append_time_of_day(out, tod, fixed_width);
  out.push_back('Z');
}

// interval in the default IntervalStyle (postgres): "1 year 2 mons -3 days +04:05:06.5".
bool parse_interval(std::string_view s, std::int64_t& micros) {
  std::int64_t total = 0;
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    while (i < n && s[i] == ' ') ++i;
    if (i == n) break;
    std::size_t j = i;
    if (s[j] == '+' || s[j] == '-') ++j;
    std::size_t k = j;
    while (k < n && is_digit(s[k])) ++k;
    if (k == j) return false;
    if (k < n && s[k] == ':') {  // the time part, always last
      const std::int64_t sign = s[i] == '-' ? -1 : 1;
      std::size_t t = j;
      std::int64_t tm = 0;
      if (!parse_time_part(s, t, tm) || t != n) return false;
      total += sign * tm;
      break;
    }
    std::int64_t v = 0;
    if (std::from_chars(s.data() + (s[i] == '+' ? i + 1 : i), s.data() + k, v).ec != std::errc{})
      return false;
    i = k;
    if (i >= n || s[i] != ' ') return false;
    ++i;
    std::size_t u = i;
    while (u < n && s[u] != ' ') ++u;
    const std::string_view unit = s.substr(i, u - i);
    if (unit == "year" || unit == "years") {
      total += v * 12 * kMicrosPerMonth;
    } else if (unit == "mon" || unit == "mons") {
      total += v * kMicrosPerMonth;
    } else if (unit == "day" || unit == "days") {
      total += v * kMicrosPerDay;
    } else {
      return false;
    }
    i = u;
  }
  micros = total;
  return true;
}

// bytea text output: hex ("\x0102") or escape format; appends the raw bytes to `out`.
bool decode_bytea(std::string_view s, std::string& out) {
  out.clear();
  if (s.size() >= 2 && s[0] == '\\' && s[1] == 'x') {
    if (s.size() % 2 != 0) return false;
    out.reserve(s.size() / 2);
    for (std::size_t i = 2; i < s.size(); i += 2) {
      const int hi = hex_value(s[i]);
      const int lo = hex_value(s[i + 1]);
      if (hi < 0 || lo < 0) return false;
      out.push_back(static_cast<char>(hi << 4 | lo));
    }
    return true;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out.push_back(s[i]);
    } else if (i + 1 < s.size() && s[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (i + 3 < s.size() + 0 && s.size() - i >= 4) {
      int v = 0;
      for (std::size_t k = 1; k <= 3; ++k) {
        const char c = s[i + k];
        if (c < '0' || c > '7') return false;
        v = v * 8 + (c - '0');
      }
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      return false;
    }
  }
  return true;
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void append_base64(std::string& out, std::string_view in, bool url_safe) {
  const char* table = url_safe ? kBase64Url : kBase64;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = p[i] << 16 | p[i + 1] << 8 | p[i + 2];
    const char quad[4] = {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], table[v & 63]};
    out.append(quad, 4);
  }
  if (i + 1 == in.size()) {
    const std::uint32_t v = p[i] << 16;
    const char quad[4] = {table[v >> 18], table[v >> 12 & 63], '=', '='};
    out.append(quad, 4);
  } else if (i + 2 == in.size()) {
    const std::uint32_t v = p[i] << 16 | p[i + 1] << 8;
    const char quad[4] = {table[v >> 18], table[v >> 12 & 63], table[v >> 6 & 63], '='};
    out.append(quad, 4);
  }
}

// Java's BigInteger.toByteArray: the shortest big-endian two's complement, at least one byte.
void strip_twos_complement(std::string& bytes) {
  std::size_t drop = 0;
  while (drop + 1 < bytes.size()) {
    const auto b = static_cast<unsigned char>(bytes[drop]);
    const auto next = static_cast<unsigned char>(bytes[drop + 1]);
    if ((b == 0x00 && !(next & 0x80)) || (b == 0xFF && (next & 0x80))) {
      ++drop;
    } else {
      break;
    }
  }
  bytes.erase(0, drop);
}

// Unscaled decimal digits (no sign, no leading zeros; empty means zero) -> two's complement bytes.
void unscaled_to_bytes(std::string_view digits, bool negative, std::string& out) {
  out.clear();
  if (digits.size() <= 18) {
    std::int64_t v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    if (negative) v = -v;
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
    strip_twos_complement(out);
    return;
  }
  // Magnitude, little-endian base 256, by multiply-and-add per decimal digit.
  std::string mag;
  mag.reserve(digits.size() / 2 + 2);
  for (char c : digits) {
    unsigned carry = static_cast<unsigned>(c - '0');
    for (char& b : mag) {
      const unsigned x = static_cast<unsigned char>(b) * 10u + carry;
      b = static_cast<char>(x & 0xFF);
      carry = x >> 8;
    }
    while (carry != 0) {
      mag.push_back(static_cast<char>(carry & 0xFF));
      carry >>= 8;
    }
  }
  mag.push_back('\0');  // room for the sign bit
  if (negative) {
    unsigned carry = 1;
    for (char& b : mag) {
      const unsigned x = (~static_cast<unsigned char>(b) & 0xFFu) + carry;
      b = static_cast<char>(x & 0xFF);
      carry = x >> 8;
    }
  }
  out.assign(mag.rbegin(), mag.rend());
  strip_twos_complement(out);
}

// numeric text -> sign, unscaled digits and scale. False for NaN/Infinity and anything malformed.
bool split_decimal(std::string_view s, bool& negative, std::string& digits, int& scale) {
  digits.clear();
  std::size_t i = 0;
  negative = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
  bool any = false;
  scale = 0;
  bool fraction = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (is_digit(c)) {
      any = true;
      if (!(digits.empty() && c == '0')) digits.push_back(c);
      if (fraction) ++scale;
    } else if (c == '.' && !fraction) {
      fraction = true;
    } else {
      return false;
    }
  }
  return any;
}

// The numeric typmod packs ((precision << 16) | scale) + 4; since PostgreSQL 15 the scale is an 11-bit signed
// value.
int typmod_scale(std::int32_t typmod) {
  const int raw = (typmod - 4) & 0x7FF;
  return raw >= 1024 ? raw - 2048 : raw;
}
int typmod_precision(std::int32_t typmod) {
  return ((typmod - 4) >> 16) & 0xFFFF;
}

// adaptive: precision 0..3 -> milliseconds, otherwise (4..6, or none: 6) microseconds.
bool millis_precision(std::int32_t typmod) {
  return typmod >= 0 && typmod <= 3;
}

bool is_stringish(TypeKind k) {
  switch (k) {
    case TypeKind::Text:
    case TypeKind::Json:
    case TypeKind::Xml:
    case TypeKind::Uuid:
    case TypeKind::Enum:
    case TypeKind::Ltree:
    case TypeKind::Range:
    case TypeKind::Unknown:
      return true;
    default:
      return false;
  }
}

// Avro-style name sanitising of schema names: Debezium keeps [A-Za-z0-9_] (and '.' separators).
std::string schema_name_part(std::string_view s) {
  std::string out{s};
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
    if (!ok) c = '_';
  }
  return out;
}

}  // namespace

// ---- per-relation plans ---------------------------------------------------------------------------------

struct DebeziumEncoder::ColumnPlan {
  std::string name;
  TypeKind kind = TypeKind::Unknown;
  std::int32_t typmod = -1;
  TypeKind element_kind = TypeKind::Unknown;
  std::int32_t element_typmod = -1;
  Oid oid = 0;  // resolved (domain base) type OID
  const TypeInfo* type = nullptr;
  const TypeInfo* element = nullptr;
  bool key = false;
};

struct DebeziumEncoder::RelationPlan {
  RelationPtr relation;
  std::vector<ColumnPlan> columns;
  std::string topic;
  std::string value_schema;  // the Envelope schema as JsonConverter writes it
  std::string key_schema;
  bool has_key = false;
};

namespace {

using SchemaWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void write_schema_head(SchemaWriter& w, const char* type) {
  w.StartObject();
  w.Key("type");
  w.String(type);
}

void write_schema_tail(SchemaWriter& w, bool optional, const char* name, int version, std::string_view field,
                       std::initializer_list<std::pair<std::string_view, std::string_view>> params = {},
                       const char* doc = nullptr) {
  w.Key("optional");
  w.Bool(optional);
  if (name != nullptr) {
    w.Key("name");
    w.String(name);
  }
  if (version > 0) {
    w.Key("version");
    w.Int(version);
  }
  if (doc != nullptr) {
    w.Key("doc");
    w.String(doc);
  }
  if (params.size() > 0) {
    w.Key("parameters");
    w.StartObject();
    for (const auto& [k, v] : params) {
      w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.EndObject();
  }
  if (!field.empty()) {
    w.Key("field");
    w.String(field.data(), static_cast<rapidjson::SizeType>(field.size()));
  }
  w.EndObject();
}

void write_simple_field(SchemaWriter& w, const char* type, bool optional, std::string_view field) {
  write_schema_head(w, type);
  write_schema_tail(w, optional, nullptr, 0, field);
}

}  // namespace

// The schema of one value of the given type, as Debezium's PostgresValueConverter declares it.
static void write_type_schema(SchemaWriter& w, const DebeziumOptions& o, TypeKind kind, std::int32_t typmod,
                              const TypeInfo* type, bool optional, std::string_view field) {
  switch (kind) {
    case TypeKind::Bool:
      return write_simple_field(w, "boolean", optional, field);
    case TypeKind::Bit:
    case TypeKind::Varbit: {
      if (typmod == 1) return write_simple_field(w, "boolean", optional, field);
      const std::string length = std::to_string(typmod > 0 ? typmod : 2147483647);
      write_schema_head(w, "bytes");
      return write_schema_tail(w, optional, "io.debezium.data.Bits", 1, field, {{"length", length}});
    }
    case TypeKind::Int2:
      return write_simple_field(w, "int16", optional, field);
    case TypeKind::Int4:
      return write_simple_field(w, "int32", optional, field);
    case TypeKind::Int8:
      return write_simple_field(w, "int64", optional, field);
    case TypeKind::Float4:
      return write_simple_field(w, "float", optional, field);
    case TypeKind::Float8:
      return write_simple_field(w, "double", optional, field);
    case TypeKind::Numeric:
    case TypeKind::Money: {
      if (o.decimal == DecimalHandling::Double) return write_simple_field(w, "double", optional, field);
      if (o.decimal == DecimalHandling::String) return write_simple_field(w, "string", optional, field);
      if (kind == TypeKind::Money) {
        write_schema_head(w, "bytes");
        return write_schema_tail(w, optional, "org.apache.kafka.connect.data.Decimal", 1, field,
                                 {{"scale", std::to_string(o.money_fraction_digits)}});
      }
      if (typmod < 4) {
        write_schema_head(w, "struct");
        w.Key("fields");
        w.StartArray();
        write_simple_field(w, "int32", false, "scale");
        write_simple_field(w, "bytes", false, "value");
        w.EndArray();
        return write_schema_tail(w, optional, "io.debezium.data.VariableScaleDecimal", 1, field, {},
                                 "Variable scaled decimal");
      }
      write_schema_head(w, "bytes");
      return write_schema_tail(w, optional, "org.apache.kafka.connect.data.Decimal", 1, field,
                               {{"scale", std::to_string(typmod_scale(typmod))},
                                {"connect.decimal.precision", std::to_string(typmod_precision(typmod))}});
    }
    case TypeKind::Date:
      write_schema_head(w, "int32");
      return write_schema_tail(
          w, optional,
          o.time == TimePrecision::Connect ? "org.apache.kafka.connect.data.Date" : "io.debezium.time.Date",
          1, field);
    case TypeKind::Time:
      if (o.time == TimePrecision::Connect) {
        write_schema_head(w, "int32");
        return write_schema_tail(w, optional, "org.apache.kafka.connect.data.Time", 1, field);
      }
      if (o.time == TimePrecision::Adaptive && millis_precision(typmod)) {
        write_schema_head(w, "int32");
        return write_schema_tail(w, optional, "io.debezium.time.Time", 1, field);
      }
      write_schema_head(w, "int64");
      return write_schema_tail(w, optional, "io.debezium.time.MicroTime", 1, field);
    case TypeKind::Timestamp:
      write_schema_head(w, "int64");
      if (o.time == TimePrecision::Connect) {
        return write_schema_tail(w, optional, "org.apache.kafka.connect.data.Timestamp", 1, field);
      }
      return write_schema_tail(
          w, optional,
          millis_precision(typmod) ? "io.debezium.time.Timestamp" : "io.debezium.time.MicroTimestamp", 1,
          field);
    case TypeKind::TimestampTz:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.time.ZonedTimestamp", 1, field);
    case TypeKind::TimeTz:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.time.ZonedTime", 1, field);
    case TypeKind::Interval:
      write_schema_head(w, "int64");
      return write_schema_tail(w, optional, "io.debezium.time.MicroDuration", 1, field);
    case TypeKind::Bytea:
      return write_simple_field(w, o.binary == BinaryHandling::Bytes ? "bytes" : "string", optional, field);
    case TypeKind::Uuid:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.data.Uuid", 1, field);
    case TypeKind::Json:
    case TypeKind::Hstore:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.data.Json", 1, field);
    case TypeKind::Xml:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.data.Xml", 1, field);
    case TypeKind::Ltree:
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.data.Ltree", 1, field);
    case TypeKind::Point:
      write_schema_head(w, "struct");
      w.Key("fields");
      w.StartArray();
      write_simple_field(w, "double", false, "x");
      write_simple_field(w, "double", false, "y");
      write_simple_field(w, "bytes", true, "wkb");
      write_simple_field(w, "int32", true, "srid");
      w.EndArray();
      return write_schema_tail(w, optional, "io.debezium.data.geometry.Point", 1, field, {},
                               "Geometry (POINT)");
    case TypeKind::Enum: {
      std::string allowed;
      if (type != nullptr) {
        for (const std::string& label : type->labels) {
          if (!allowed.empty()) allowed.push_back(',');
          allowed += label;
        }
      }
      write_schema_head(w, "string");
      return write_schema_tail(w, optional, "io.debezium.data.Enum", 1, field, {{"allowed", allowed}});
    }
    default:  // Text, Range, Unknown, Domain/Array never reach here
      return write_simple_field(w, "string", optional, field);
  }
}

static void write_column_schema(SchemaWriter& w, const DebeziumOptions& o, TypeKind kind, std::int32_t typmod,
                                const TypeInfo* type, TypeKind element_kind, std::int32_t element_typmod,
                                const TypeInfo* element, bool optional, std::string_view field) {
  if (kind != TypeKind::Array) return write_type_schema(w, o, kind, typmod, type, optional, field);
  write_schema_head(w, "array");
  w.Key("items");
  write_type_schema(w, o, element_kind, element_typmod, element, true, {});
  write_schema_tail(w, optional, nullptr, 0, field);
}

namespace {

void write_source_schema(SchemaWriter& w) {
  write_schema_head(w, "struct");
  w.Key("fields");
  w.StartArray();
  write_simple_field(w, "string", false, "version");
  write_simple_field(w, "string", false, "connector");
  write_simple_field(w, "string", false, "name");
  write_simple_field(w, "int64", false, "ts_ms");
  write_simple_field(w, "int64", true, "ts_us");
  write_simple_field(w, "int64", true, "ts_ns");
  write_schema_head(w, "string");
  w.Key("optional");
  w.Bool(true);
  w.Key("name");
  w.String("io.debezium.data.Enum");
  w.Key("version");
  w.Int(1);
  w.Key("parameters");
  w.StartObject();
  w.Key("allowed");
  w.String(kSnapshotAllowed.data(), static_cast<rapidjson::SizeType>(kSnapshotAllowed.size()));
  w.EndObject();
  w.Key("default");
  w.String("false");
  w.Key("field");
  w.String("snapshot");
  w.EndObject();
  write_simple_field(w, "string", false, "db");
  write_simple_field(w, "string", true, "sequence");
  write_simple_field(w, "string", false, "schema");
  write_simple_field(w, "string", false, "table");
  write_simple_field(w, "int64", true, "txId");
  write_simple_field(w, "int64", true, "lsn");
  write_simple_field(w, "int64", true, "xmin");
  w.EndArray();
  write_schema_tail(w, false, "io.debezium.connector.postgresql.Source", 0, "source");
}

void write_envelope_tail_schema(SchemaWriter& w, bool transaction_metadata) {
  write_simple_field(w, "string", false, "op");
  write_simple_field(w, "int64", true, "ts_ms");
  write_simple_field(w, "int64", true, "ts_us");
  write_simple_field(w, "int64", true, "ts_ns");
  if (transaction_metadata) {
    write_schema_head(w, "struct");
    w.Key("fields");
    w.StartArray();
    write_simple_field(w, "string", false, "id");
    write_simple_field(w, "int64", false, "total_order");
    write_simple_field(w, "int64", false, "data_collection_order");
    w.EndArray();
    write_schema_tail(w, true, "event.block", 1, "transaction");
  }
}

}  // namespace

DebeziumEncoder::DebeziumEncoder(DebeziumOptions options, const TypeCatalog& catalog)
    : options_(std::move(options)), catalog_(catalog), key_writer_(key_buf_), value_writer_(value_buf_) {
  collections_.reserve(8);
}

DebeziumEncoder::~DebeziumEncoder() = default;

std::int64_t DebeziumEncoder::now_us() const {
  if (options_.clock_us) return options_.clock_us();
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const DebeziumEncoder::RelationPlan& DebeziumEncoder::plan_for(const RelationPtr& relation) {
  const auto it = plans_.find(relation.get());
  if (it != plans_.end()) return *it->second;
  // Every Relation message makes a new RelationDef; forget old plans now and then rather than pin them all.
  if (plans_.size() >= 1024) plans_.clear();

  auto plan = std::make_unique<RelationPlan>();
  plan->relation = relation;
  const RelationDef& rel = *relation;
  plan->topic = options_.topic_prefix + "." + rel.schema + "." + rel.name;
  for (const ColumnDef& def : rel.columns) {
    const ResolvedType t = catalog_.resolve(def.type_oid, def.type_modifier);
    ColumnPlan col;
    col.name = def.name;
    col.kind = t.kind();
    col.typmod = t.typmod;
    col.type = t.type;
    col.oid = t.type ? t.type->oid : def.type_oid;
    col.element = t.element;
    col.element_kind = t.element_kind();
    col.element_typmod = t.element_typmod;
    col.key = def.part_of_key;
    plan->has_key = plan->has_key || def.part_of_key;
    plan->columns.push_back(std::move(col));
  }

  if (options_.include_schema) {
    const std::string base = schema_name_part(options_.topic_prefix) + "." + schema_name_part(rel.schema) +
                             "." + schema_name_part(rel.name);
    const std::string value_name = base + ".Value";
    rapidjson::StringBuffer buf;
    SchemaWriter w{buf};
    // Nullability is not in the Relation message: key columns are required, every other column optional.
    const auto write_row_schema = [&](const char* field, bool optional, bool key_only,
                                      const std::string& name) {
      write_schema_head(w, "struct");
      w.Key("fields");
      w.StartArray();
      for (const ColumnPlan& c : plan->columns) {
        if (key_only && !c.key) continue;
        write_column_schema(w, options_, c.kind, c.typmod, c.type, c.element_kind, c.element_typmod,
                            c.element, !c.key, c.name);
      }
      w.EndArray();
      write_schema_tail(w, optional, name.c_str(), 0, field == nullptr ? std::string_view{} : field);
    };
    write_schema_head(w, "struct");
    w.Key("fields");
    w.StartArray();
    write_row_schema("before", true, false, value_name);
    write_row_schema("after", true, false, value_name);
    write_source_schema(w);
    write_envelope_tail_schema(w, options_.transaction_metadata);
    w.EndArray();
    const std::string envelope_name = base + ".Envelope";
    write_schema_tail(w, false, envelope_name.c_str(), 0, {});
    plan->value_schema.assign(buf.GetString(), buf.GetSize());

    buf.Clear();
    w.Reset(buf);
    write_row_schema(nullptr, false, true, base + ".Key");
    plan->key_schema.assign(buf.GetString(), buf.GetSize());
  }
  const RelationPlan& out = *plan;
  plans_.emplace(relation.get(), std::move(plan));
  return out;
}

// ---- values ---------------------------------------------------------------------------------------------

void DebeziumEncoder::write_quoted_base64(Writer& w, std::string_view bytes, bool url_safe) {
  scratch_.clear();
  scratch_.push_back('"');
  append_base64(scratch_, bytes, url_safe);
  scratch_.push_back('"');
  w.RawValue(scratch_.data(), scratch_.size(), kStringType);
}

void DebeziumEncoder::write_binary(Writer& w, std::string_view bytes) {
  switch (options_.binary) {
    case BinaryHandling::Bytes:
    case BinaryHandling::Base64:
      return write_quoted_base64(w, bytes, false);
    case BinaryHandling::Base64UrlSafe:
      return write_quoted_base64(w, bytes, true);
    case BinaryHandling::Hex: {
      static constexpr char kHex[] = "0123456789abcdef";
      scratch_.clear();
      scratch_.push_back('"');
      for (char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        scratch_.push_back(kHex[b >> 4]);
        scratch_.push_back(kHex[b & 15]);
      }
      scratch_.push_back('"');
      w.RawValue(scratch_.data(), scratch_.size(), kStringType);
      return;
    }
  }
}

// Decimal (fixed scale): base64 of the unscaled value's two's complement bytes. VariableScaleDecimal:
// {"scale": s, "value": base64}, trailing zeros stripped as BigDecimal.stripTrailingZeros does (never below
// scale 0). False when the text is not a finite decimal.
bool DebeziumEncoder::write_decimal(Writer& w, std::string_view text, int scale, bool variable_scale) {
  bool negative = false;
  int text_scale = 0;
  if (!split_decimal(text, negative, digits_, text_scale)) return false;
  if (variable_scale) {
    // Trailing fraction zeros are still in digits_ unless the integer part was zero.
    while (text_scale > 0 && !digits_.empty() && digits_.back() == '0') {
      digits_.pop_back();
      --text_scale;
    }
    if (digits_.empty()) text_scale = 0;
    scale = text_scale;
  } else {
    for (; text_scale < scale; ++text_scale) {
      if (!digits_.empty()) digits_.push_back('0');
    }
    for (; text_scale > scale && !digits_.empty(); --text_scale) digits_.pop_back();
  }
  if (digits_.empty()) negative = false;
  unscaled_to_bytes(digits_, negative, text_scratch_);
  if (variable_scale) {
    w.StartObject();
    w.Key("scale");
    w.Int(scale);
    w.Key("value");
    write_quoted_base64(w, text_scratch_);
    w.EndObject();
  } else {
    write_quoted_base64(w, text_scratch_);
  }
  return true;
}

void DebeziumEncoder::write_text_value(Writer& w, TypeKind kind, std::int32_t typmod, const ColumnPlan& col,
                                       std::string_view text) {
  const auto size = static_cast<rapidjson::SizeType>(text.size());
  const auto malformed = [&] {
    ++malformed_values_;
    w.String(text.data(), size);
  };
  switch (kind) {
    case TypeKind::Bool:
      if (text == "t" || text == "f") return static_cast<void>(w.Bool(text == "t"));
      return malformed();
    case TypeKind::Bit:
    case TypeKind::Varbit: {
      if (typmod == 1) {
        if (text == "1" || text == "0") return static_cast<void>(w.Bool(text == "1"));
        return malformed();
      }
      // io.debezium.data.Bits: little-endian, bit i of the value is the i-th character from the right.
      // bit(n) is sized to n bits; bit varying to its content (up to the highest set bit).
      std::size_t highest = 0;
      for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[text.size() - 1 - i];
        if (c != '0' && c != '1') return malformed();
        if (c == '1') highest = i + 1;
      }
      const std::size_t bits = kind == TypeKind::Bit ? text.size() : highest;
      text_scratch_.assign((bits + 7) / 8, '\0');
      for (std::size_t i = 0; i < highest; ++i) {
        if (text[text.size() - 1 - i] == '1')
          text_scratch_[i / 8] = static_cast<char>(text_scratch_[i / 8] | (1 << (i % 8)));
      }
      return write_quoted_base64(w, text_scratch_);
    }
    case TypeKind::Int2:
    case TypeKind::Int4:
    case TypeKind::Int8:
      if (is_json_integer(text)) return static_cast<void>(w.RawValue(text.data(), text.size(), kNumberType));
      return malformed();
    case TypeKind::Float4:
    case TypeKind::Float8:
      // JsonConverter (Jackson) quotes non-finite numbers: "NaN", "Infinity", "-Infinity". PostgreSQL prints
      // the shortest text that round-trips, which is also what Java prints (up to exponent spelling).
      if (text == "NaN" || text == "Infinity" || text == "-Infinity")
        return static_cast<void>(w.String(text.data(), size));
      if (is_json_number(text)) return static_cast<void>(w.RawValue(text.data(), text.size(), kNumberType));
      return malformed();
    case TypeKind::Numeric: {
      const bool special = text == "NaN" || text == "Infinity" || text == "-Infinity";
      switch (options_.decimal) {
        case DecimalHandling::Precise:
          if (special) {
            // Debezium stops with an error here ("set decimal handling mode to 'string'"); a daemon must not.
            ++special_numeric_values_;
            return static_cast<void>(w.Null());
          }
          if (!write_decimal(w, text, typmod_scale(typmod), typmod < 4)) malformed();
          return;
        case DecimalHandling::Double: {
          if (special) return static_cast<void>(w.String(text.data(), size));
          double d = 0;
          if (std::from_chars(text.data(), text.data() + text.size(), d).ec != std::errc{})
            return malformed();
          return static_cast<void>(w.Double(d));
        }
        case DecimalHandling::String:
          // SpecialValueDecimal names: NAN, POSITIVE_INFINITY, NEGATIVE_INFINITY.
          if (text == "NaN") return static_cast<void>(w.String("NAN"));
          if (text == "Infinity") return static_cast<void>(w.String("POSITIVE_INFINITY"));
          if (text == "-Infinity") return static_cast<void>(w.String("NEGATIVE_INFINITY"));
          return static_cast<void>(w.String(text.data(), size));
      }
      return;
    }
    case TypeKind::Money: {
      // "$1,234.56", "-$1,234.56" (lc_monetary C / en_*): keep the sign, digits and the decimal point.
      element_scratch_.clear();
      for (char c : text) {
        if (is_digit(c) || c == '.') {
          element_scratch_.push_back(c);
        } else if ((c == '-' || c == '(') && element_scratch_.empty()) {
          element_scratch_.insert(element_scratch_.begin(), '-');
        }
      }
      const std::string_view number{element_scratch_};
      if (options_.decimal == DecimalHandling::Precise) {
        if (!write_decimal(w, number, options_.money_fraction_digits, false)) malformed();
        return;
      }
      if (options_.decimal == DecimalHandling::Double) {
        double d = 0;
        if (std::from_chars(number.data(), number.data() + number.size(), d).ec != std::errc{})
          return malformed();
        return static_cast<void>(w.Double(d));
      }
      return static_cast<void>(w.String(number.data(), static_cast<rapidjson::SizeType>(number.size())));
    }
    case TypeKind::Date: {
      std::int64_t days = 0;
      if (text == "infinity") return static_cast<void>(w.Int(kDatePositiveInfinity));
      if (text == "-infinity") return static_cast<void>(w.Int(kDateNegativeInfinity));
      if (!parse_date(text, days)) return malformed();
      return static_cast<void>(w.Int64(days));
    }
    case TypeKind::Time: {
      std::size_t i = 0;
      std::int64_t micros = 0;
      if (!parse_time_part(text, i, micros) || i != text.size()) return malformed();
      const bool millis = options_.time == TimePrecision::Connect ||
                          (options_.time == TimePrecision::Adaptive && millis_precision(typmod));
      return static_cast<void>(w.Int64(millis ? micros / 1000 : micros));
    }
    case TypeKind::TimeTz: {
      // io.debezium.time.ZonedTime: ISO_OFFSET_TIME after moving the offset to UTC.
      std::size_t i = 0;
      std::int64_t micros = 0, offset = 0;
      if (!parse_time_part(text, i, micros) || !parse_offset(text, i, offset) || i != text.size())
        return malformed();
      micros = ((micros - offset * kMicrosPerSecond) % kMicrosPerDay + kMicrosPerDay) % kMicrosPerDay;
      text_scratch_.clear();
      append_time_of_day(text_scratch_, micros, 0);
      text_scratch_.push_back('Z');
      return static_cast<void>(
          w.String(text_scratch_.data(), static_cast<rapidjson::SizeType>(text_scratch_.size())));
    }
    case TypeKind::Timestamp: {
      std::int64_t micros = 0;
      if (text == "infinity") {
        micros = kTimestampPositiveInfinity;
      } else if (text == "-infinity") {
        micros = kTimestampNegativeInfinity;
      } else if (!parse_timestamp(text, false, micros)) {
        return malformed();
      }
      const bool millis = options_.time == TimePrecision::Connect || millis_precision(typmod);
      return static_cast<void>(w.Int64(millis ? floor_div(micros, 1000) : micros));
    }
    case TypeKind::TimestampTz: {
      // io.debezium.time.ZonedTimestamp in UTC; "infinity"/"-infinity" pass through as the connector does.
      if (text == "infinity" || text == "-infinity") return static_cast<void>(w.String(text.data(), size));
      std::int64_t micros = 0;
      if (!parse_timestamp(text, true, micros)) return malformed();
      // The fraction has the column's precision digits (6 when unspecified); precision 0 prints none.
      const int width = typmod < 0 ? 6 : typmod;
      text_scratch_.clear();
      append_iso_utc(text_scratch_, micros, width);
      return static_cast<void>(
          w.String(text_scratch_.data(), static_cast<rapidjson::SizeType>(text_scratch_.size())));
    }
    case TypeKind::Interval: {
      std::int64_t micros = 0;
      if (!parse_interval(text, micros)) return malformed();
      return static_cast<void>(w.Int64(micros));
    }
    case TypeKind::Bytea:
      if (!decode_bytea(text, text_scratch_)) return malformed();
      return write_binary(w, text_scratch_);
    case TypeKind::Point: {
      // io.debezium.data.geometry.Point: x, y and the WKB of POINT(x y) (little-endian), no SRID.
      if (text.size() < 5 || text.front() != '(' || text.back() != ')') return malformed();
      const std::size_t comma = text.find(',');
      if (comma == std::string_view::npos) return malformed();
      double x = 0, y = 0;
      if (std::from_chars(text.data() + 1, text.data() + comma, x).ec != std::errc{} ||
          std::from_chars(text.data() + comma + 1, text.data() + text.size() - 1, y).ec != std::errc{}) {
        return malformed();
      }
      char wkb[21];
      wkb[0] = 1;
      const std::uint32_t point_type = 1;
      std::memcpy(wkb + 1, &point_type,
                  4);  // little-endian hosts only, like the rest of the wire format code
      std::memcpy(wkb + 5, &x, 8);
      std::memcpy(wkb + 13, &y, 8);
      w.StartObject();
      w.Key("x");
      w.Double(x);
      w.Key("y");
      w.Double(y);
      w.Key("wkb");
      write_quoted_base64(w, std::string_view{wkb, sizeof wkb});
      w.Key("srid");
      w.Null();
      w.EndObject();
      return;
    }
    case TypeKind::Hstore: {
      // hstore.handling.mode=json: {"key":"val"} as a string, keys in the order PostgreSQL prints them.
      rapidjson::StringBuffer buf;
      Writer hw{buf};
      hw.StartObject();
      std::size_t i = 0;
      bool ok = true;
      const auto read_quoted = [&](std::string& out) {
        out.clear();
        if (i >= text.size() || text[i] != '"') return false;
        for (++i; i < text.size(); ++i) {
          if (text[i] == '\\' && i + 1 < text.size()) {
            out.push_back(text[++i]);
          } else if (text[i] == '"') {
            ++i;
            return true;
          } else {
            out.push_back(text[i]);
          }
        }
        return false;
      };
      while (ok && i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
        if (i == text.size()) break;
        ok = read_quoted(element_scratch_);
        if (!ok) break;
        hw.Key(element_scratch_.data(), static_cast<rapidjson::SizeType>(element_scratch_.size()));
        ok = text.substr(i, 2) == "=>";
        i += 2;
        if (!ok) break;
        if (text.substr(i, 4) == "NULL") {
          hw.Null();
          i += 4;
        } else {
          ok = read_quoted(element_scratch_);
          if (ok) hw.String(element_scratch_.data(), static_cast<rapidjson::SizeType>(element_scratch_.size()));
        }
      }
      if (!ok) return malformed();
      hw.EndObject();
      return static_cast<void>(w.String(buf.GetString(), static_cast<rapidjson::SizeType>(buf.GetSize())));
    }
    case TypeKind::Unknown:
      ++unknown_type_values_;
      return static_cast<void>(w.String(text.data(), size));
    case TypeKind::Array:
      return write_array(w, col, text);
    default:  // Text, Json, Xml, Uuid, Enum, Ltree, Range
      return static_cast<void>(w.String(text.data(), size));
  }
}

namespace {

class ArrayWriter final : public ArrayTextParser::Handler {
 public:
  using Fn = void (*)(void*, std::string_view, bool);
  ArrayWriter(rapidjson::Writer<rapidjson::StringBuffer>& w, void* ctx, Fn fn) : w_(w), ctx_(ctx), fn_(fn) {}
  void open() override { w_.StartArray(); }
  void close() override { w_.EndArray(); }
  void element(std::string_view text, bool is_null) override { fn_(ctx_, text, is_null); }

 private:
  rapidjson::Writer<rapidjson::StringBuffer>& w_;
  void* ctx_;
  Fn fn_;
};

}  // namespace

void DebeziumEncoder::write_array(Writer& w, const ColumnPlan& col, std::string_view text) {
  struct Ctx {
    DebeziumEncoder* self;
    Writer* w;
    const ColumnPlan* col;
  } ctx{this, &w, &col};
  // The writer must stay balanced even when the text is malformed: write into a side buffer first.
  rapidjson::StringBuffer buf;
  Writer aw{buf};
  ctx.w = &aw;
  ArrayWriter handler{aw, &ctx, [](void* p, std::string_view element, bool is_null) {
                        auto* c = static_cast<Ctx*>(p);
                        if (is_null) {
                          c->w->Null();
                        } else if (c->col->element_kind == TypeKind::Array) {
                          ++c->self->malformed_values_;
                          c->w->String(element.data(), static_cast<rapidjson::SizeType>(element.size()));
                        } else {
                          c->self->write_text_value(*c->w, c->col->element_kind, c->col->element_typmod,
                                                    *c->col, element);
                        }
                      }};
  if (!ArrayTextParser::parse(text, handler, array_scratch_) || !aw.IsComplete()) {
    ++malformed_values_;
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    return;
  }
  w.RawValue(buf.GetString(), buf.GetSize(), rapidjson::kArrayType);
}

void DebeziumEncoder::write_binary_value(Writer& w, TypeKind kind, const ColumnPlan& col,
                                         std::string_view b) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  const auto be = [&](std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
  };
  switch (kind) {
    case TypeKind::Bool:
      if (b.size() == 1) return static_cast<void>(w.Bool(p[0] != 0));
      break;
    case TypeKind::Int2:
      if (b.size() == 2) return static_cast<void>(w.Int(static_cast<std::int16_t>(be(2))));
      break;
    case TypeKind::Int4:
      if (b.size() == 4) return static_cast<void>(w.Int(static_cast<std::int32_t>(be(4))));
      break;
    case TypeKind::Int8:
      if (b.size() == 8) return static_cast<void>(w.Int64(static_cast<std::int64_t>(be(8))));
      if (b.size() == 4) return static_cast<void>(w.Int64(static_cast<std::uint32_t>(be(4))));  // oid
      break;
    case TypeKind::Float4:
    case TypeKind::Float8: {
      double d = 0;
      if (b.size() == 4) {
        const auto bits = static_cast<std::uint32_t>(be(4));
        float f = 0;
        std::memcpy(&f, &bits, 4);
        d = f;
      } else if (b.size() == 8) {
        const std::uint64_t bits = be(8);
        std::memcpy(&d, &bits, 8);
      } else {
        break;
      }
      if (std::isnan(d)) return static_cast<void>(w.String("NaN"));
      if (std::isinf(d)) return static_cast<void>(w.String(d > 0 ? "Infinity" : "-Infinity"));
      return static_cast<void>(w.Double(d));
    }
    case TypeKind::Uuid: {
      if (b.size() != 16) break;
      static constexpr char kHex[] = "0123456789abcdef";
      char out[36];
      std::size_t o = 0;
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
        out[o++] = kHex[p[i] >> 4];
        out[o++] = kHex[p[i] & 15];
      }
      return static_cast<void>(w.String(out, 36));
    }
    case TypeKind::Bytea:
      return write_binary(w, b);
    case TypeKind::Date:
      if (b.size() == 4) {
        return static_cast<void>(
            w.Int64(static_cast<std::int64_t>(static_cast<std::int32_t>(be(4))) + kPgEpochUnixDays));
      }
      break;
    case TypeKind::Timestamp:
      if (b.size() == 8) {
        const std::int64_t micros = pg_micros_to_unix_micros(static_cast<std::int64_t>(be(8)));
        const bool millis = options_.time == TimePrecision::Connect || millis_precision(col.typmod);
        return static_cast<void>(w.Int64(millis ? floor_div(micros, 1000) : micros));
      }
      break;
    case TypeKind::Json:
      // jsonb's binary format is a version byte (1) and the text.
      if (col.oid == pgtype::kJsonb && !b.empty() && p[0] == 1) b.remove_prefix(1);
      return static_cast<void>(w.String(b.data(), static_cast<rapidjson::SizeType>(b.size())));
    case TypeKind::Text:
    case TypeKind::Xml:
    case TypeKind::Enum:
      return static_cast<void>(w.String(b.data(), static_cast<rapidjson::SizeType>(b.size())));
    default:
      break;
  }
  // No binary decoder for this type: its raw bytes, base64, counted.
  ++unknown_type_values_;
  write_quoted_base64(w, b);
}

void DebeziumEncoder::write_placeholder(Writer& w, const ColumnPlan& col) {
  ++unavailable_values_;
  const std::string& ph = options_.unavailable_value_placeholder;
  const auto size = static_cast<rapidjson::SizeType>(ph.size());
  if (col.kind == TypeKind::Bytea) return write_binary(w, ph);
  if (is_stringish(col.kind)) return static_cast<void>(w.String(ph.data(), size));
  if (col.kind == TypeKind::Hstore) {
    rapidjson::StringBuffer buf;
    Writer hw{buf};
    hw.StartObject();
    hw.Key(ph.data(), size);
    hw.String(ph.data(), size);
    hw.EndObject();
    return static_cast<void>(w.String(buf.GetString(), static_cast<rapidjson::SizeType>(buf.GetSize())));
  }
  if (col.kind == TypeKind::Array && is_stringish(col.element_kind)) {
    w.StartArray();
    w.String(ph.data(), size);
    w.EndArray();
    return;
  }
  if (col.kind == TypeKind::Array && col.element_kind == TypeKind::Bytea) {
    w.StartArray();
    write_binary(w, ph);
    w.EndArray();
    return;
  }
  // Types without a string form (numbers, dates...) are never TOASTed out of line in practice.
  w.Null();
}

void DebeziumEncoder::write_value(Writer& w, const ColumnPlan& col, const Tuple& tuple, std::size_t index) {
  if (index >= tuple.size()) return static_cast<void>(w.Null());
  switch (tuple.kind(index)) {
    case DatumKind::Null:
      return static_cast<void>(w.Null());
    case DatumKind::UnchangedToast:
      return write_placeholder(w, col);
    case DatumKind::Text:
      return write_text_value(w, col.kind, col.typmod, col, tuple.value(index));
    case DatumKind::Binary:
      return write_binary_value(w, col.kind, col, tuple.value(index));
  }
}

// ---- envelopes ------------------------------------------------------------------------------------------

void DebeziumEncoder::write_row(Writer& w, const RelationPlan& plan, const Tuple* tuple) {
  if (tuple == nullptr || tuple->empty()) return static_cast<void>(w.Null());
  w.StartObject();
  for (std::size_t i = 0; i < plan.columns.size(); ++i) {
    const ColumnPlan& col = plan.columns[i];
    w.Key(col.name.data(), static_cast<rapidjson::SizeType>(col.name.size()));
    write_value(w, col, *tuple, i);
  }
  w.EndObject();
}

void DebeziumEncoder::write_key_payload(Writer& w, const RelationPlan& plan, const Tuple& tuple) {
  w.StartObject();
  for (std::size_t i = 0; i < plan.columns.size(); ++i) {
    const ColumnPlan& col = plan.columns[i];
    if (!col.key) continue;
    w.Key(col.name.data(), static_cast<rapidjson::SizeType>(col.name.size()));
    write_value(w, col, tuple, i);
  }
  w.EndObject();
}

static void write_lsn_string(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string& out, Lsn last,
                             Lsn current) {
  // source.sequence: the JSON text ["<last commit LSN>","<this LSN>"], each a decimal string or null.
  out.clear();
  out.push_back('[');
  if (last.valid()) {
    out.push_back('"');
    out += std::to_string(last.value());
    out.push_back('"');
  } else {
    out += "null";
  }
  out.push_back(',');
  if (current.valid()) {
    out.push_back('"');
    out += std::to_string(current.value());
    out.push_back('"');
  } else {
    out += "null";
  }
  out.push_back(']');
  w.String(out.data(), static_cast<rapidjson::SizeType>(out.size()));
}

void DebeziumEncoder::write_source(Writer& w, const TransactionInfo* info, const Change& change,
                                   const RelationDef* relation, const EventPosition& pos) {
  const std::int64_t commit_us = info != nullptr ? pg_micros_to_unix_micros(info->commit_time_us) : now_us();
  w.Key("source");
  w.StartObject();
  w.Key("version");
  w.String(options_.connector_version.data(),
           static_cast<rapidjson::SizeType>(options_.connector_version.size()));
  w.Key("connector");
  w.String("postgresql");
  w.Key("name");
  w.String(options_.topic_prefix.data(), static_cast<rapidjson::SizeType>(options_.topic_prefix.size()));
  w.Key("ts_ms");
  w.Int64(floor_div(commit_us, 1000));
  w.Key("ts_us");
  w.Int64(commit_us);
  w.Key("ts_ns");
  w.Int64(commit_us * 1000);
  w.Key("snapshot");
  w.String(pos.snapshot ? "true" : "false");
  w.Key("db");
  w.String(options_.database.data(), static_cast<rapidjson::SizeType>(options_.database.size()));
  w.Key("sequence");
  write_lsn_string(w, text_scratch_, pos.last_commit_lsn, change.lsn);
  w.Key("schema");
  if (relation != nullptr) {
    w.String(relation->schema.data(), static_cast<rapidjson::SizeType>(relation->schema.size()));
  } else {
    w.String("");
  }
  w.Key("table");
  if (relation != nullptr) {
    w.String(relation->name.data(), static_cast<rapidjson::SizeType>(relation->name.size()));
  } else {
    w.String("");
  }
  w.Key("txId");
  if (info != nullptr) {
    w.Int64(info->xid.value);
  } else {
    w.Null();
  }
  w.Key("lsn");
  if (change.lsn.valid()) {
    w.Int64(static_cast<std::int64_t>(change.lsn.value()));
  } else {
    w.Null();
  }
  w.Key("xmin");
  w.Null();
  w.EndObject();
}

void DebeziumEncoder::write_envelope_tail(Writer& w, char op, const TransactionInfo* info,
                                          const EventPosition& pos) {
  const char op_text[2] = {op, '\0'};
  w.Key("op");
  w.String(op_text, 1);
  const std::int64_t now = now_us();
  w.Key("ts_ms");
  w.Int64(floor_div(now, 1000));
  w.Key("ts_us");
  w.Int64(now);
  w.Key("ts_ns");
  w.Int64(now * 1000);
  if (options_.transaction_metadata && info != nullptr) {
    w.Key("transaction");
    w.StartObject();
    w.Key("id");
    append_txn_id(text_scratch_, *info);
    w.String(text_scratch_.data(), static_cast<rapidjson::SizeType>(text_scratch_.size()));
    w.Key("total_order");
    w.Uint64(pos.total_order);
    w.Key("data_collection_order");
    w.Uint64(pos.collection_order);
    w.EndObject();
  }
}

std::string_view DebeziumEncoder::topic_for(const RelationDef& relation) {
  topic_.assign(options_.topic_prefix);
  topic_.push_back('.');
  topic_.append(relation.schema);
  topic_.push_back('.');
  topic_.append(relation.name);
  return topic_;
}

namespace {

void begin_document(rapidjson::Writer<rapidjson::StringBuffer>& w, rapidjson::StringBuffer& buf,
                    const std::string* schema) {
  buf.Clear();
  w.Reset(buf);
  if (schema != nullptr) {
    w.StartObject();
    w.Key("schema");
    w.RawValue(schema->data(), schema->size(), rapidjson::kObjectType);
    w.Key("payload");
  }
}

void end_document(rapidjson::Writer<rapidjson::StringBuffer>& w, bool with_schema) {
  if (with_schema) w.EndObject();
}

}  // namespace

bool DebeziumEncoder::key_changed(const RelationPlan& plan, const Change& change) const {
  if (!plan.has_key || change.before.empty() || change.after.empty()) return false;
  // With the default replica identity pgoutput sends the old key only when the key changed.
  if (change.before_kind == 'K') return true;
  for (std::size_t i = 0; i < plan.columns.size(); ++i) {
    if (!plan.columns[i].key || i >= change.before.size() || i >= change.after.size()) continue;
    if (change.before.kind(i) != change.after.kind(i) || change.before.value(i) != change.after.value(i))
      return true;
  }
  return false;
}

DebeziumEvent DebeziumEncoder::encode_change(const TransactionInfo& info, const Change& change,
                                             const EventPosition& pos) {
  if (change.op == ChangeOp::Message) return encode_message(info, change, pos);
  if (change.op == ChangeOp::Truncate) {
    if (change.truncated.empty() || !change.truncated.front()) return {};
    return encode_truncate(info, change, change.truncated.front(), pos);
  }
  if (!change.relation) return {};
  char op = static_cast<char>(change.op);
  if (change.op == ChangeOp::Insert && pos.snapshot) op = 'r';
  return encode_split_update(info, change, pos, op);
}

// One row event with the given op: 'c'/'r' and 'u' carry `after`, 'd' carries only `before`.
DebeziumEvent DebeziumEncoder::encode_split_update(const TransactionInfo& info, const Change& change,
                                                   const EventPosition& pos, char op) {
  const RelationPlan& plan = plan_for(change.relation);
  const bool schema = options_.include_schema;
  const Tuple* before = change.before.empty() ? nullptr : &change.before;
  const Tuple* after = change.after.empty() ? nullptr : &change.after;
  if (op == 'd') after = nullptr;
  if (op == 'c' || op == 'r') before = nullptr;

  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  ev.topic = plan.topic;

  const Tuple* key_source = op == 'd' ? before : after;
  if (plan.has_key && key_source != nullptr) {
    begin_document(key_writer_, key_buf_, schema ? &plan.key_schema : nullptr);
    write_key_payload(key_writer_, plan, *key_source);
    end_document(key_writer_, schema);
    ev.key = std::string_view{key_buf_.GetString(), key_buf_.GetSize()};
    ev.has_key = true;
  }

  Writer& w = value_writer_;
  begin_document(w, value_buf_, schema ? &plan.value_schema : nullptr);
  w.StartObject();
  w.Key("before");
  write_row(w, plan, before);
  w.Key("after");
  write_row(w, plan, after);
  write_source(w, &info, change, plan.relation.get(), pos);
  write_envelope_tail(w, op, &info, pos);
  w.EndObject();
  end_document(w, schema);
  ev.value = std::string_view{value_buf_.GetString(), value_buf_.GetSize()};
  ev.has_value = true;
  return ev;
}

DebeziumEvent DebeziumEncoder::encode_tombstone(const Change& change) {
  DebeziumEvent ev;
  ev.kind = EventKind::Tombstone;
  if (!change.relation) return ev;
  const RelationPlan& plan = plan_for(change.relation);
  ev.topic = plan.topic;
  const Tuple& key_source = change.before.empty() ? change.after : change.before;
  if (plan.has_key && !key_source.empty()) {
    begin_document(key_writer_, key_buf_, options_.include_schema ? &plan.key_schema : nullptr);
    write_key_payload(key_writer_, plan, key_source);
    end_document(key_writer_, options_.include_schema);
    ev.key = std::string_view{key_buf_.GetString(), key_buf_.GetSize()};
    ev.has_key = true;
  }
  return ev;
}

DebeziumEvent DebeziumEncoder::encode_truncate(const TransactionInfo& info, const Change& change,
                                               const RelationPtr& relation, const EventPosition& pos) {
  const RelationPlan& plan = plan_for(relation);
  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  ev.topic = plan.topic;
  // "_truncate_ events": the key is null and the value has no before/after.
  Writer& w = value_writer_;
  std::string schema_json;
  if (options_.include_schema) {
    rapidjson::StringBuffer buf;
    SchemaWriter sw{buf};
    write_schema_head(sw, "struct");
    sw.Key("fields");
    sw.StartArray();
    write_source_schema(sw);
    write_envelope_tail_schema(sw, options_.transaction_metadata);
    sw.EndArray();
    const std::string name = schema_name_part(options_.topic_prefix) + "." +
                             schema_name_part(relation->schema) + "." + schema_name_part(relation->name) +
                             ".Envelope";
    write_schema_tail(sw, false, name.c_str(), 0, {});
    schema_json.assign(buf.GetString(), buf.GetSize());
  }
  begin_document(w, value_buf_, options_.include_schema ? &schema_json : nullptr);
  w.StartObject();
  write_source(w, &info, change, relation.get(), pos);
  write_envelope_tail(w, 't', &info, pos);
  w.EndObject();
  end_document(w, options_.include_schema);
  ev.value = std::string_view{value_buf_.GetString(), value_buf_.GetSize()};
  ev.has_value = true;
  return ev;
}

DebeziumEvent DebeziumEncoder::encode_message(const TransactionInfo& info, const Change& change,
                                              const EventPosition& pos) {
  // "_message_ events": key {prefix}; value with empty schema/table, txId only when transactional, and a
  // `message` block {prefix, content (bytes)}.
  DebeziumEvent ev;
  ev.kind = EventKind::Change;
  topic_.assign(options_.topic_prefix);
  topic_.append(".message");
  ev.topic = topic_;
  const bool schema = options_.include_schema;
  const TransactionInfo* txn = change.message_transactional ? &info : nullptr;

  static const std::string kKeySchema =
      R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"prefix"}],"optional":false,)"
      R"("name":"io.debezium.connector.postgresql.MessageKey"})";
  std::string value_schema;
  if (schema) {
    rapidjson::StringBuffer buf;
    SchemaWriter sw{buf};
    write_schema_head(sw, "struct");
    sw.Key("fields");
    sw.StartArray();
    write_source_schema(sw);
    write_envelope_tail_schema(sw, options_.transaction_metadata);
    write_schema_head(sw, "struct");
    sw.Key("fields");
    sw.StartArray();
    write_simple_field(sw, "string", false, "prefix");
    write_simple_field(sw, options_.binary == BinaryHandling::Bytes ? "bytes" : "string", true, "content");
    sw.EndArray();
    write_schema_tail(sw, true, "io.debezium.connector.postgresql.Message", 0, "message");
    sw.EndArray();
    const std::string name = schema_name_part(options_.topic_prefix) + ".message.Envelope";
    write_schema_tail(sw, false, name.c_str(), 0, {});
    value_schema.assign(buf.GetString(), buf.GetSize());
  }

  begin_document(key_writer_, key_buf_, schema ? &kKeySchema : nullptr);
  key_writer_.StartObject();
  key_writer_.Key("prefix");
  key_writer_.String(change.message_prefix.data(),
                     static_cast<rapidjson::SizeType>(change.message_prefix.size()));
  key_writer_.EndObject();
  end_document(key_writer_, schema);
  ev.key = std::string_view{key_buf_.GetString(), key_buf_.GetSize()};
  ev.has_key = true;

  Writer& w = value_writer_;
  begin_document(w, value_buf_, schema ? &value_schema : nullptr);
  w.StartObject();
  write_source(w, txn, change, nullptr, pos);
  write_envelope_tail(w, 'm', txn, pos);
  w.Key("message");
  w.StartObject();
  w.Key("prefix");
  w.String(change.message_prefix.data(), static_cast<rapidjson::SizeType>(change.message_prefix.size()));
  w.Key("content");
  write_binary(w, change.message_content);
  w.EndObject();
  w.EndObject();
  end_document(w, schema);
  ev.value = std::string_view{value_buf_.GetString(), value_buf_.GetSize()};
  ev.has_value = true;
  return ev;
}

// ---- transaction metadata -------------------------------------------------------------------------------

namespace {

void write_txn_id(rapidjson::Writer<rapidjson::StringBuffer>& w, const TransactionInfo& info) {
  std::string id;
  append_txn_id(id, info);
  w.String(id.data(), static_cast<rapidjson::SizeType>(id.size()));
}

const std::string& txn_key_schema() {
  static const std::string s =
      R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"id"}],"optional":false,)"
      R"("name":"io.debezium.connector.common.TransactionMetadataKey"})";
  return s;
}

const std::string& txn_value_schema() {
  static const std::string s =
      R"({"type":"struct","fields":[{"type":"string","optional":false,"field":"status"},)"
      R"({"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"ts_ms"},)"
      R"({"type":"int64","optional":true,"field":"event_count"},)"
      R"({"type":"array","items":{"type":"struct","fields":[)"
      R"({"type":"string","optional":false,"field":"data_collection"},)"
      R"({"type":"int64","optional":false,"field":"event_count"}],"optional":false,"name":"event.collection",)"
      R"("version":1},"optional":true,"field":"data_collections"}],"optional":false,)"
      R"("name":"io.debezium.connector.common.TransactionMetadataValue","version":1})";
  return s;
}

}  // namespace

DebeziumEvent DebeziumEncoder::encode_begin(const TransactionInfo& info) {
  return encode_boundary(info, nullptr, 0);
}

DebeziumEvent DebeziumEncoder::encode_end(
    const TransactionInfo& info, const std::vector<std::pair<std::string, std::uint64_t>>& data_collections,
    std::size_t collection_count) {
  return encode_boundary(info, &data_collections, collection_count);
}

// "Transaction metadata": {status, id, ts_ms, event_count, data_collections} on <prefix>.transaction, keyed
// by the transaction id. BEGIN has null counts.
DebeziumEvent DebeziumEncoder::encode_boundary(
    const TransactionInfo& info, const std::vector<std::pair<std::string, std::uint64_t>>* collections,
    std::size_t collection_count) {
  const bool schema = options_.include_schema;
  DebeziumEvent ev;
  ev.kind = collections == nullptr ? EventKind::TransactionBegin : EventKind::TransactionEnd;
  topic_.assign(options_.topic_prefix);
  topic_.append(".transaction");
  ev.topic = topic_;

  begin_document(key_writer_, key_buf_, schema ? &txn_key_schema() : nullptr);
  key_writer_.StartObject();
  key_writer_.Key("id");
  write_txn_id(key_writer_, info);
  key_writer_.EndObject();
  end_document(key_writer_, schema);
  ev.key = std::string_view{key_buf_.GetString(), key_buf_.GetSize()};
  ev.has_key = true;

  Writer& w = value_writer_;
  begin_document(w, value_buf_, schema ? &txn_value_schema() : nullptr);
  w.StartObject();
  w.Key("status");
  w.String(collections == nullptr ? "BEGIN" : "END");
  w.Key("id");
  write_txn_id(w, info);
  w.Key("ts_ms");
  w.Int64(floor_div(pg_micros_to_unix_micros(info.commit_time_us), 1000));
  w.Key("event_count");
  if (collections == nullptr) {
    w.Null();
    w.Key("data_collections");
    w.Null();
  } else {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < collection_count && i < collections->size(); ++i)
      total += (*collections)[i].second;
    w.Uint64(total);
    w.Key("data_collections");
    w.StartArray();
    for (std::size_t i = 0; i < collection_count && i < collections->size(); ++i) {
      const auto& [name, count] = (*collections)[i];
      w.StartObject();
      w.Key("data_collection");
      w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      w.Key("event_count");
      w.Uint64(count);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  end_document(w, schema);
  ev.value = std::string_view{value_buf_.GetString(), value_buf_.GetSize()};
  ev.has_value = true;
  return ev;
}

void DebeziumEncoder::start_transaction() {
  total_order_ = 0;
  collection_count_ = 0;
}

std::uint64_t DebeziumEncoder::count_collection(const RelationDef& relation) {
  for (std::size_t i = 0; i < collection_count_; ++i) {
    auto& [name, count] = collections_[i];
    if (name.size() == relation.schema.size() + 1 + relation.name.size() &&
        name.starts_with(relation.schema) && name[relation.schema.size()] == '.' &&
        name.ends_with(relation.name)) {
      return ++count;
    }
  }
  if (collection_count_ == collections_.size()) collections_.emplace_back();
  auto& [name, count] = collections_[collection_count_++];
  // Reuses the entry's string capacity from earlier transactions.
  name.assign(relation.schema);
  name.push_back('.');
  name.append(relation.name);
  count = 1;
  return 1;
}

void DebeziumEncoder::finish_transaction(const TransactionInfo& info) {
  last_commit_lsn_ = info.final_lsn;
}

}  // namespace cdcsync
