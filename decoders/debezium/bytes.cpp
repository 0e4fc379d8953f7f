// Byte encodings of Debezium's values (see bytes.h); base64 is OpenSSL's.
#include "decoders/debezium/bytes.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace cdcsync::debezium {
namespace {

// EVP_EncodeBlock takes an int length: larger inputs go in pieces of whole 3-byte groups.
constexpr std::size_t kBase64Piece = std::size_t{3} << 28;

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

}  // namespace

void append_base64(std::string& out, std::string_view in, Base64Alphabet alphabet) {
  const std::size_t start = out.size();
  while (!in.empty()) {
    const std::size_t piece = std::min(in.size(), kBase64Piece);
    const std::size_t at = out.size();
    // 4 characters per started group of 3 bytes, and the NUL EVP_EncodeBlock writes after them.
    out.resize(at + (piece + 2) / 3 * 4 + 1);
    const int written =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                        reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(piece));
    out.resize(at + static_cast<std::size_t>(written));
    in.remove_prefix(piece);
  }
  if (alphabet == Base64Alphabet::UrlSafe) {
    for (auto it = out.begin() + static_cast<std::ptrdiff_t>(start); it != out.end(); ++it) {
      if (*it == '+') *it = '-';
      if (*it == '/') *it = '_';
    }
  }
}

void append_hex(std::string& out, std::string_view in) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : in) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
}

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

bool bits_to_bytes(std::string_view bits, bool fixed_length, std::string& out) {
  std::size_t highest = 0;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    const char c = bits[bits.size() - 1 - i];
    if (c != '0' && c != '1') return false;
    if (c == '1') highest = i + 1;
  }
  const std::size_t length = fixed_length ? bits.size() : highest;
  out.assign((length + 7) / 8, '\0');
  for (std::size_t i = 0; i < highest; ++i) {
    if (bits[bits.size() - 1 - i] == '1') out[i / 8] = static_cast<char>(out[i / 8] | (1 << (i % 8)));
  }
  return true;
}

void point_wkb(double x, double y, char (&out)[kPointWkbSize]) {
  out[0] = 1;  // little-endian; the copies below assume a little-endian host, like the wire format code
  const std::uint32_t point_type = 1;
  std::memcpy(out + 1, &point_type, 4);
  std::memcpy(out + 5, &x, 8);
  std::memcpy(out + 13, &y, 8);
}

}  // namespace cdcsync::debezium
