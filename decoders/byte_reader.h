// Bounds-checked big-endian reads over a byte span. Every read past the end throws DecodeError naming
// the message being decoded and the offset, so a malformed message can never cause an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

#include "decoders/lsn.h"

namespace cdcsync {

class DecodeError : public std::runtime_error {
 public:
  DecodeError(std::string_view message_type, std::size_t offset, std::string_view what)
      : std::runtime_error(std::string(message_type) + " message at offset " + std::to_string(offset) + ": " +
                           std::string(what)),
        message_type_(message_type),
        offset_(offset) {}
  const std::string& message_type() const { return message_type_; }
  std::size_t offset() const { return offset_; }

 private:
  std::string message_type_;
  std::size_t offset_;
};

class ByteReader {
 public:
  ByteReader(std::string_view bytes, std::string_view context) : bytes_(bytes), context_(context) {}

  void set_context(std::string_view context) { context_ = context; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  std::uint8_t u8() { return static_cast<std::uint8_t>(take(1)[0]); }
  char byte() { return take(1)[0]; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(be(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(be(4)); }
  std::uint64_t u64() { return be(8); }
  std::int16_t i16() { return static_cast<std::int16_t>(u16()); }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  Lsn lsn() { return Lsn{u64()}; }  // an XLogRecPtr

  std::string_view bytes(std::size_t n) { return take(n); }

  // A NUL-terminated string; the terminator is consumed and not returned.
  std::string_view cstring() {
    const auto* begin = bytes_.data() + pos_;
    const void* nul = std::memchr(begin, '\0', remaining());
    if (nul == nullptr) fail("unterminated string");
    const auto len = static_cast<std::size_t>(static_cast<const char*>(nul) - begin);
    std::string_view s{begin, len};
    pos_ += len + 1;
    return s;
  }

  [[noreturn]] void fail(std::string_view what) const { throw DecodeError(context_, pos_, what); }

  void expect_end() const {
    if (!at_end()) fail(std::to_string(remaining()) + " trailing bytes");
  }

 private:
  std::string_view take(std::size_t n) {
    if (n > remaining()) {
      fail("needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) + " left");
    }
    std::string_view s{bytes_.data() + pos_, n};
    pos_ += n;
    return s;
  }
  std::uint64_t be(std::size_t n) {
    const auto s = take(n);
    std::uint64_t v = 0;
    for (char c : s) v = v << 8 | static_cast<std::uint8_t>(c);
    return v;
  }

  std::string_view bytes_;
  std::string_view context_;
  std::size_t pos_ = 0;
};

}  // namespace cdcsync
