// Byte encodings Debezium's values use: base64 and hex text, Java's BigInteger bytes, Bits, WKB of a point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cdcsync::debezium {

enum class Base64Alphabet : std::uint8_t { Standard, UrlSafe };

// Appends the base64 of `in` (RFC 4648, padded; URL-safe: '-' and '_' for '+' and '/').
void append_base64(std::string& out, std::string_view in, Base64Alphabet alphabet = Base64Alphabet::Standard);
// Appends two lowercase hex digits per byte.
void append_hex(std::string& out, std::string_view in);

// Unscaled decimal digits (no sign, no leading zeros; empty means zero) -> the bytes of Java's
// BigInteger.toByteArray: the shortest big-endian two's complement, at least one byte.
void unscaled_to_bytes(std::string_view digits, bool negative, std::string& out);

// bit(n) / bit varying text ("0101") -> io.debezium.data.Bits: little-endian, bit i of the value is the i-th
// character from the right; sized to the text's bits when `fixed_length`, else up to the highest set bit.
// False when a character is neither '0' nor '1'.
bool bits_to_bytes(std::string_view bits, bool fixed_length, std::string& out);

// The well-known binary of POINT(x y), little-endian, without SRID.
inline constexpr std::size_t kPointWkbSize = 21;
void point_wkb(double x, double y, char (&out)[kPointWkbSize]);

}  // namespace cdcsync::debezium
