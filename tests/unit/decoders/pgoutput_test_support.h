// Test support for the pgoutput decoder: a builder for hand-made messages and a loader for the messages
// captured by scripts/capture-pgoutput.sh.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/lsn.h"
#include "decoders/pgoutput.h"

namespace cdcsync::testing {

class MessageBuilder {
 public:
  explicit MessageBuilder(char tag) { bytes_.push_back(tag); }
  MessageBuilder& u8(std::uint8_t v) { return be(v, 1); }
  MessageBuilder& byte(char c) {
    bytes_.push_back(c);
    return *this;
  }
  MessageBuilder& u16(std::uint16_t v) { return be(v, 2); }
  MessageBuilder& i16(std::int16_t v) { return be(static_cast<std::uint16_t>(v), 2); }
  MessageBuilder& u32(std::uint32_t v) { return be(v, 4); }
  MessageBuilder& i32(std::int32_t v) { return be(static_cast<std::uint32_t>(v), 4); }
  MessageBuilder& u64(std::uint64_t v) { return be(v, 8); }
  MessageBuilder& str(std::string_view s) {
    bytes_.append(s);
    bytes_.push_back('\0');
    return *this;
  }
  MessageBuilder& raw(std::string_view s) {
    bytes_.append(s);
    return *this;
  }
  MessageBuilder& text(std::string_view value) {
    byte('t').i32(static_cast<std::int32_t>(value.size()));
    return raw(value);
  }
  MessageBuilder& null() { return byte('n'); }
  const std::string& bytes() const { return bytes_; }
  operator std::string_view() const { return bytes_; }

 private:
  MessageBuilder& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string bytes_;
};

// Messages for a relation `id` named public.t<id> with columns (id int4 key, name text).
inline std::string relation_message(std::uint32_t id, int columns = 2) {
  MessageBuilder m('R');
  m.u32(id).str("public").str("t" + std::to_string(id)).byte('d').i16(static_cast<std::int16_t>(columns));
  for (int i = 0; i < columns; ++i) {
    m.u8(i == 0 ? 1 : 0).str(i == 0 ? "id" : "c" + std::to_string(i)).u32(i == 0 ? 23 : 25).i32(-1);
  }
  return m.bytes();
}
inline std::string insert_message(std::uint32_t relation, std::string_view id, std::string_view name) {
  return MessageBuilder('I').u32(relation).byte('N').i16(2).text(id).text(name).bytes();
}
inline std::string begin_message(std::uint64_t final_lsn, std::uint32_t xid, std::uint64_t commit_time = 7) {
  return MessageBuilder('B').u64(final_lsn).u64(commit_time).u32(xid).bytes();
}
inline std::string commit_message(std::uint64_t commit_lsn, std::uint64_t end_lsn,
                                  std::uint64_t commit_time = 7) {
  return MessageBuilder('C').u8(0).u64(commit_lsn).u64(end_lsn).u64(commit_time).bytes();
}

struct CapturedMessage {
  Lsn lsn;
  std::string bytes;
};
struct Capture {
  ProtocolOptions options;
  std::vector<CapturedMessage> messages;
};

inline std::string fixture_path(std::string_view name) {
  return std::string(CDCSYNC_SOURCE_ROOT) + "/tests/unit/decoders/fixtures/pgoutput/" + std::string(name) +
         ".pgoutput";
}

inline std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    throw std::runtime_error("bad hex digit");
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

// Reads NAME.pgoutput: "# options: proto_version=N streaming=on|off ..." then "LSN<TAB>hex" lines.
inline Capture load_capture(std::string_view name) {
  std::ifstream in(fixture_path(name));
  if (!in) throw std::runtime_error("missing fixture " + fixture_path(name));
  Capture capture;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# options:")) {
      std::istringstream words(line.substr(10));
      std::string word;
      while (words >> word) {
        if (word.starts_with("proto_version=")) capture.options.version = std::stoi(word.substr(14));
        if (word == "streaming=on") capture.options.streaming = StreamingMode::On;
      }
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    if (tab == std::string::npos) throw std::runtime_error("bad fixture line in " + std::string(name));
    const auto lsn = Lsn::parse(std::string_view(line).substr(0, tab));
    if (!lsn) throw std::runtime_error("bad LSN in " + std::string(name));
    capture.messages.push_back({*lsn, from_hex(std::string_view(line).substr(tab + 1))});
  }
  return capture;
}

inline const std::vector<std::string>& capture_names() {
  static const std::vector<std::string> names{"binary", "dml",   "messages", "origin",    "schema_change",
                                              "stream", "toast", "truncate", "two_phase", "two_phase_stream",
                                              "type"};
  return names;
}

}  // namespace cdcsync::testing
