// `cdcsync audit verify-archive`: proves the event archive (sinks/redis_archive_sink.h) was neither altered
// nor cut in the middle: every entry's hash recomputes over its content, every prev is the previous entry's
// hash, ids strictly increase, every transaction is whole (seq 0, 1, ... up to an entry carrying `end`; only
// the oldest, which trimming may cut, and the one at the head, which the daemon may still be writing, may be
// partial), and the head key names the last entry and its hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sinks/redis_archive_sink.h"

namespace cdcsync::audit {

struct ArchiveVerdict {
  std::string stream;  // the stream's key
  std::uint64_t entries = 0;
  std::uint64_t whole_transactions = 0;
  std::string first_id;
  std::string last_id;
  bool trimmed = false;  // the oldest entry does not start from the genesis hash
  std::optional<std::string> broken_id;
  std::string broken_lsn;  // the commit LSN as the broken entry spells it (it may be the altered part)
  std::string problem;
  bool ok() const { return !broken_id; }
};

// Reads the whole stream and its head; the first problem found, if any.
ArchiveVerdict verify_archive(RedisArchive& archive);

std::string render_text(const ArchiveVerdict& verdict);
std::string render_json(const ArchiveVerdict& verdict);

}  // namespace cdcsync::audit
