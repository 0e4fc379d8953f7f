// libFuzzer target over COPY's binary encoders.
//
// Input: one byte choosing the column type (modulo the number of types), then the value's text. Every encoder
// must either refuse (the buffer left as it was) or append one well-formed field: a length that matches
// the bytes after it, the type's fixed width, numeric's digits in base 10000 with no leading or trailing
// zero digit. Anything else (a crash, a sanitizer report, a malformed field) is a bug.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cdcsync;
  if (size < 1) return 0;
  constexpr int kTypes = static_cast<int>(BinaryType::PgLsn) + 1;
  const auto type = static_cast<BinaryType>(data[0] % kTypes);
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string out = "prefix";
  if (!append_copy_binary(out, type, text)) {
    check(out == "prefix");
    return 0;
  }
  check(out.size() >= 10);
  const std::size_t length = be32(out, 6);
  check(length == out.size() - 10);
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
      check(length == 4);
      break;
    case BinaryType::Int8:
    case BinaryType::Float8:
    case BinaryType::Timestamp:
    case BinaryType::Timestamptz:
    case BinaryType::PgLsn:
      check(length == 8);
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
