// Archive audit: the event archive's hash chain, transactions and head, proven entry by entry.
#include "daemon/tools/archive_audit.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <sstream>

#include "sinks/archive_codec.h"

namespace cdcsync::audit {

ArchiveVerdict verify_archive(RedisArchive& a) {
  ArchiveVerdict v;
  v.stream = a.stream_key();
  ArchiveChainChecker checker;
  std::string start = "-";
  constexpr std::size_t kPage = 1000;
  for (;;) {
    const auto page = a.range(start, "+", kPage);
    for (const auto& e : page) {
      if (v.entries == 0) {
        v.first_id = e.id;
        const std::string* prev = e.field("prev");
        const auto id = parse_archive_entry_id(e.id);
        v.trimmed = prev == nullptr || *prev != kArchiveGenesisHash || !id || id->second != 0;
      }
      if (auto problem = checker.check(e)) {
        v.broken_id = e.id;
        const std::string* lsn = e.field("lsn");
        v.broken_lsn = lsn ? *lsn : "";
        v.problem = *problem;
        v.entries = checker.entries();
        v.whole_transactions = checker.whole_transactions();
        return v;
      }
      v.entries = checker.entries();
    }
    if (page.size() < kPage) break;
    start = "(" + page.back().id;
  }
  v.whole_transactions = checker.whole_transactions();
  v.last_id = checker.last_id();
  const auto head = a.head();
  if (v.entries == 0) {
    if (head && !head->last_id.empty()) {
      v.broken_id = head->last_id;
      v.problem = "the stream is empty but the head key " + a.head_key() + " names entry " + head->last_id;
    }
    return v;
  }
  if (!head) {
    v.broken_id = v.last_id;
    v.problem = "the head key " + a.head_key() + " is missing";
  } else if (head->last_id != checker.last_id() || head->last_hash != checker.last_hash()) {
    v.broken_id = head->last_id.empty() ? v.last_id : head->last_id;
    v.problem = "the head key " + a.head_key() + " (last_id " + head->last_id +
                ") does not match the last entry " + checker.last_id() + " and its hash";
  }
  return v;
}

std::string render_json(const ArchiveVerdict& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  const auto text = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value);
  };
  const auto count = [&](const char* key, std::uint64_t value) {
    w.Key(key);
    w.Uint64(value);
  };
  const auto flag = [&](const char* key, bool value) {
    w.Key(key);
    w.Bool(value);
  };
  w.StartObject();
  text("stream", v.stream);
  flag("ok", v.ok());
  count("entries", v.entries);
  count("whole_transactions", v.whole_transactions);
  text("first_id", v.first_id);
  text("last_id", v.last_id);
  flag("trimmed", v.trimmed);
  if (!v.ok()) {
    text("broken_id", *v.broken_id);
    text("broken_lsn", v.broken_lsn);
    text("problem", v.problem);
  }
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

std::string render_text(const ArchiveVerdict& v) {
  std::ostringstream out;
  if (!v.ok()) {
    out << "archive " << v.stream << " BROKEN at entry " << *v.broken_id
        << (v.broken_lsn.empty() ? std::string() : " (commit LSN " + v.broken_lsn + ")") << ": " << v.problem
        << "; " << v.entries << " entries before it verified from " << v.first_id << "\n";
  } else if (v.entries == 0) {
    out << "archive " << v.stream << " is empty: nothing to prove\n";
  } else {
    out << "archive " << v.stream << " verified: " << v.entries << " entries, " << v.whole_transactions
        << " whole transaction(s), from " << v.first_id << " to " << v.last_id
        << (v.trimmed ? " (older entries were trimmed: the proof starts at " + v.first_id + ")"
                      : " (complete since the first entry ever appended)")
        << "; the head matches the last entry\n";
  }
  return out.str();
}

}  // namespace cdcsync::audit
