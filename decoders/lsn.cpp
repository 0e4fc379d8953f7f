#include "decoders/lsn.h"

#include <fmt/format.h>

namespace cdcsync {
namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    v = v << 4 | static_cast<std::uint32_t>(d);
  }
  return v;
}

}  // namespace

std::optional<Lsn> Lsn::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto hi = parse_hex32(text.substr(0, slash));
  const auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return Lsn{static_cast<std::uint64_t>(*hi) << 32 | *lo};
}

std::string Lsn::str() const {
  return fmt::format("{:X}/{:X}", static_cast<std::uint32_t>(value_ >> 32),
                     static_cast<std::uint32_t>(value_));
}

}  // namespace cdcsync
