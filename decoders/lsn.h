// Lsn: a position in PostgreSQL's write-ahead log, written "16/B374D848".
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cdcsync {

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(std::uint64_t value) : value_(value) {}

  // Accepts exactly "H/L" with 1..8 hex digits on each side; anything else is nullopt.
  static std::optional<Lsn> parse(std::string_view text);
  std::string str() const;

  constexpr std::uint64_t value() const { return value_; }
  constexpr bool valid() const { return value_ != 0; }  // 0/0 is InvalidXLogRecPtr
  auto operator<=>(const Lsn&) const = default;

 private:
  std::uint64_t value_ = 0;
};

// Bytes of WAL between two positions; zero when `to` is not after `from`.
constexpr std::uint64_t bytes_between(Lsn from, Lsn to) {
  return to > from ? to.value() - from.value() : 0;
}

}  // namespace cdcsync
