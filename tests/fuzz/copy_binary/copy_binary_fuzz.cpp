// libFuzzer target over COPY's binary encoders.
//
// Input: one byte choosing the column type (its low seven bits, modulo the number of types) and whether the
// column is an array of it (the high bit), then the value's text. Every encoder must either refuse (the
// buffer left as it was) or append one well-formed field: a length that matches the bytes after it, the
// type's fixed width, numeric's digits in base 10000 with no leading or trailing zero digit, inet's header
// matching its address, an array's header and elements adding up to its length. Anything else (a crash, a
// sanitizer report, a malformed field) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sinks/copy_binary.h"

namespace {

std::uint32_t be32(const std::string& s, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
std::uint16_t be16(const std::string& s, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + at;
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

void check(bool ok) {
  if (!ok) std::abort();
}

// One-dimensional array fields: ndim 0 or 1, the null flag set exactly when an element is null, the
// element type as given, lower bound 1, `count` elements whose lengths add up to the field's.
void check_array(const std::string& out, std::size_t length) {
  check(length >= 12);
  const std::uint32_t ndim = be32(out, 10), flags = be32(out, 14);
  check(ndim <= 1 && flags <= 1 && be32(out, 18) == 1234);
  if (ndim == 0) {
    check(length == 12 && flags == 0);
    return;
  }
  check(length >= 20 && be32(out, 26) == 1);
  const std::uint32_t count = be32(out, 22);
  check(count >= 1);
  std::size_t at = 30;
  bool nulls = false;
  for (std::uint32_t i = 0; i < count; ++i) {
    check(at + 4 <= out.size());
    const std::uint32_t n = be32(out, at);
    at += 4;
    if (n == 0xFFFFFFFFu) {
      nulls = true;
      continue;
    }
    check(n <= out.size() - at);
    at += n;
  }
  check(at == out.size() && nulls == (flags == 1));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cdcsync;
  if (size < 1) return 0;
  constexpr int kTypes = static_cast<int>(kLastBinaryType) + 1;
  const auto type = static_cast<BinaryType>((data[0] & 0x7F) % kTypes);
  const bool array = (data[0] & 0x80) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string out = "prefix";
  const bool encoded =
      array ? append_copy_binary(out, BinaryEncoder{type, 1234}, text) : append_copy_binary(out, type, text);
  if (!encoded) {
    check(out == "prefix");
    return 0;
  }
  check(out.size() >= 10);
  const std::size_t length = be32(out, 6);
  check(length == out.size() - 10);
  if (array) {
    check(type != BinaryType::Unsupported);
    check_array(out, length);
    return 0;
  }
  switch (type) {
    case BinaryType::Unsupported:
      check(false);
      break;
    case BinaryType::Bool:
      check(length == 1);
      break;
    case BinaryType::Int2:
      check(length == 2);
      break;
    case BinaryType::Int4:
    case BinaryType::Float4:
    case BinaryType::Date:
    case BinaryType::Oid:
      check(length == 4);
      break;
    case BinaryType::Int8:
    case BinaryType::Float8:
    case BinaryType::Timestamp:
    case BinaryType::Timestamptz:
    case BinaryType::PgLsn:
    case BinaryType::Macaddr8:
      check(length == 8);
      break;
    case BinaryType::Time:
      check(length == 8 && (std::uint64_t{be32(out, 10)} << 32 | be32(out, 14)) <= 86'400'000'000u);
      break;
    case BinaryType::Timetz: {
      check(length == 12);
      const auto zone = static_cast<std::int32_t>(be32(out, 18));
      check(zone > -57'600 && zone < 57'600);
      break;
    }
    case BinaryType::Interval:
      check(length == 16);
      break;
    case BinaryType::Inet:
    case BinaryType::Cidr: {
      const auto family = static_cast<unsigned char>(out[10]), bits = static_cast<unsigned char>(out[11]),
                 cidr = static_cast<unsigned char>(out[12]), nb = static_cast<unsigned char>(out[13]);
      check((family == 2 && nb == 4) || (family == 3 && nb == 16));
      check(length == 4u + nb && bits <= 8 * nb && cidr == (type == BinaryType::Cidr ? 1 : 0));
      break;
    }
    case BinaryType::Macaddr:
      check(length == 6);
      break;
    case BinaryType::Uuid:
      check(length == 16);
      break;
    case BinaryType::Text:
      check(out.compare(10, std::string::npos, text) == 0);
      break;
    case BinaryType::Jsonb:
      check(out[10] == '\1' && out.compare(11, std::string::npos, text) == 0);
      break;
    case BinaryType::Bytea:
      check(2 * length + 2 == text.size());
      break;
    case BinaryType::Numeric: {
      const std::size_t ndigits = be16(out, 10);
      check(length == 8 + 2 * ndigits);
      const std::uint16_t sign = be16(out, 14);
      check(sign == 0 || sign == 0x4000 || sign == 0xC000 || sign == 0xD000 || sign == 0xF000);
      check(be16(out, 16) <= 0x3FFF);
      for (std::size_t i = 0; i < ndigits; ++i) check(be16(out, 18 + 2 * i) < 10000);
      if (ndigits > 0) check(be16(out, 18) != 0 && be16(out, 18 + 2 * (ndigits - 1)) != 0);
      break;
    }
  }
  return 0;
}
