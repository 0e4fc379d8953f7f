// cdcsync audit verify-archive --config FILE [--json]: proves the event archive (sinks/redis_archive_sink.h)
// was neither altered nor cut in the middle: every entry's hash recomputes over its content, every prev is
// the previous entry's hash, ids strictly increase, every transaction is whole (seq 0, 1, ... up to an entry
// carrying `end`; only the oldest, which trimming may cut, and the one at the head, which the daemon may
// still be writing, may be partial), and the head key names the last entry and its hash.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <iostream>
#include <memory>
#include <optional>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync::commands {
namespace {

struct AuditArchiveOptions {
  std::string config;
  bool json = false;
};

struct Verdict {
  std::uint64_t entries = 0;
  std::uint64_t whole_transactions = 0;
  std::string first_id;
  std::string last_id;
  bool trimmed = false;  // the oldest entry does not start from the genesis hash
  std::optional<std::string> broken_id;
  std::string broken_lsn;
  std::string problem;
};

Verdict verify_archive(RedisArchive& a) {
  Verdict v;
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

int run_verify_archive(const AuditArchiveOptions& o) {
  const config::Config cfg = config::load_config(o.config);
  ArchiveConnectionOptions co;
  co.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    co.url.password = config::read_secret(cfg.checkpoint.password_file);
  co.pipeline = cfg.pipeline;
  RedisArchive archive(co);
  const Verdict v = verify_archive(archive);
  const bool ok = !v.broken_id;
  if (o.json) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("stream");
    w.String(archive.stream_key());
    w.Key("ok");
    w.Bool(ok);
    w.Key("entries");
    w.Uint64(v.entries);
    w.Key("whole_transactions");
    w.Uint64(v.whole_transactions);
    w.Key("first_id");
    w.String(v.first_id);
    w.Key("last_id");
    w.String(v.last_id);
    w.Key("trimmed");
    w.Bool(v.trimmed);
    if (!ok) {
      w.Key("broken_id");
      w.String(*v.broken_id);
      w.Key("broken_lsn");
      w.String(v.broken_lsn);
      w.Key("problem");
      w.String(v.problem);
    }
    w.EndObject();
    std::cout << buf.GetString() << "\n";
  } else if (ok) {
    if (v.entries == 0) {
      std::cout << "archive " << archive.stream_key() << " is empty: nothing to prove\n";
    } else {
      std::cout << "archive " << archive.stream_key() << " verified: " << v.entries << " entries, "
                << v.whole_transactions << " whole transaction(s), from " << v.first_id << " to " << v.last_id
                << (v.trimmed ? " (older entries were trimmed: the proof starts at " + v.first_id + ")"
                              : " (complete since the first entry ever appended)")
                << "; the head matches the last entry\n";
    }
  } else {
    std::cout << "archive " << archive.stream_key() << " BROKEN at entry " << *v.broken_id
              << (v.broken_lsn.empty() ? std::string() : " (commit LSN " + v.broken_lsn + ")") << ": "
              << v.problem << "; " << v.entries << " entries before it verified from " << v.first_id << "\n";
  }
  return ok ? exit_code::kOk : exit_code::kError;
}

}  // namespace

void add_audit_archive(CLI::App& app, Registry& registry) {
  CLI::App* audit = subcommand(app, "audit", "Audit reports and proofs");
  auto* cmd = audit->add_subcommand(
      "verify-archive",
      "Prove the event archive (Redis stream cdcsync:{pipeline}:archive) was neither altered nor cut: "
      "recompute every entry's SHA-256 hash, check each prev is the previous entry's hash, ids increase, "
      "transactions are whole, and the head key matches the last entry. Reports the first broken entry by id "
      "and commit LSN. Exit 0 proven, 1 broken");
  auto o = std::make_shared<AuditArchiveOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_flag("--json", o->json, "Print a JSON report instead of text");
  registry.add(cmd, [o](const std::atomic<bool>&) { return run_verify_archive(*o); });
}

}  // namespace cdcsync::commands
