#include "daemon/core/dead_letter_stream.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>

namespace cdcsync {
namespace {

std::int64_t to_int(const std::string& text, std::int64_t fallback = 0) {
  std::int64_t v = fallback;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

}  // namespace

std::string iso_utc(std::int64_t unix_us) {
  const auto tp = std::chrono::sys_time<std::chrono::microseconds>{std::chrono::microseconds{unix_us}};
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", tp);
}

std::string dead_letter_key(const std::string& pipeline) {
  return "cdcsync:{" + pipeline + "}:dlq";
}

RedisDeadLetterStore::RedisDeadLetterStore(RedisConnectOptions redis, std::string pipeline)
    : client_(std::move(redis)), key_(dead_letter_key(pipeline)) {}

template <typename F>
auto RedisDeadLetterStore::guarded(const char* doing, F&& f) {
  try {
    return f();
  } catch (const CheckpointUnavailable& e) {
    throw TransientError(std::string("dead-letter stream ") + key_ + ": " + doing + ": " + e.what());
  } catch (const CheckpointFatal& e) {
    throw PermanentError(key_, Lsn{}, e.code(), std::string("dead-letter stream ") + doing + ": " + e.what());
  }
}

std::size_t RedisDeadLetterStore::size() {
  return guarded("XLEN", [&] {
    return static_cast<std::size_t>(client_.command("XLEN " + key_, {"XLEN", key_}).integer);
  });
}

bool RedisDeadLetterStore::contains(Lsn commit_lsn) {
  return guarded("XRANGE", [&] {
    const auto id = dead_letter_id(commit_lsn);
    const auto r = client_.command("XRANGE " + key_, {"XRANGE", key_, id, id});
    return !r.elements.empty();
  });
}

void RedisDeadLetterStore::add(const DeadLetter& d) {
  const std::string lsn = d.lsn.str(), end = d.end_lsn.str(), xid = std::to_string(d.xid.value);
  const std::int64_t unix_us = pg_micros_to_unix_micros(d.commit_time_us);
  const std::string ts = iso_utc(unix_us), ts_us = std::to_string(unix_us);
  const std::string changes = std::to_string(d.changes), at = std::to_string(d.unix_ms);
  const std::string id = d.id.empty() ? dead_letter_id(d.lsn) : d.id;
  std::vector<std::string_view> argv = {"XADD",     key_,       id,      "lsn",    lsn,
                                        "end",      end,        "xid",   xid,      "ts",
                                        ts,         "ts_us",    ts_us,   "table",  d.table,
                                        "sqlstate", d.sqlstate, "error", d.error,  "changes",
                                        changes,    "at",       at,      "format", kDeadLetterRowsFormat,
                                        "rows",     d.rows};
  guarded("XADD", [&] {
    try {
      client_.command("XADD " + key_, argv);
    } catch (const CheckpointFatal& e) {
      if (std::string_view(e.what()).find("equal or smaller") == std::string_view::npos) throw;
      argv[2] = "*";  // the stream is already past this LSN's id (see the header)
      client_.command("XADD " + key_, argv);
    }
  });
}

std::vector<DeadLetter> RedisDeadLetterStore::list(bool with_rows) {
  const RedisValue r = guarded("XRANGE", [&] {
    return client_.command("XRANGE " + key_, {"XRANGE", key_, "-", "+"});
  });
  std::vector<DeadLetter> out;
  for (const RedisValue& entry : r.elements) {
    if (entry.elements.size() != 2) continue;
    DeadLetter d;
    d.id = entry.elements[0].str;
    const auto& fields = entry.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      const std::string& name = fields[i].str;
      const std::string& value = fields[i + 1].str;
      if (name == "lsn")
        d.lsn = Lsn::parse(value).value_or(Lsn{});
      else if (name == "end")
        d.end_lsn = Lsn::parse(value).value_or(Lsn{});
      else if (name == "xid")
        d.xid = Xid{static_cast<std::uint32_t>(to_int(value))};
      else if (name == "ts_us")
        d.commit_time_us = to_int(value) - kPgEpochUnixMicros;
      else if (name == "table")
        d.table = value;
      else if (name == "sqlstate")
        d.sqlstate = value;
      else if (name == "error")
        d.error = value;
      else if (name == "changes")
        d.changes = static_cast<std::size_t>(to_int(value));
      else if (name == "at")
        d.unix_ms = to_int(value);
      else if (name == "rows" && with_rows)
        d.rows = value;
    }
    out.push_back(std::move(d));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const DeadLetter& a, const DeadLetter& b) { return a.lsn < b.lsn; });
  return out;
}

bool RedisDeadLetterStore::remove(const std::string& id) {
  return guarded("XDEL", [&] { return client_.command("XDEL " + key_, {"XDEL", key_, id}).integer > 0; });
}

RedisConnectOptions redis_options(const config::Config& config) {
  RedisConnectOptions o;
  o.url = RedisUrl::parse(config.checkpoint.redis);
  o.command_timeout = std::chrono::milliseconds(5000);
  if (config.checkpoint.password_file.configured())
    o.url.password = config::read_secret(config.checkpoint.password_file);
  return o;
}

std::string DeadLetterRowEncoder::encode(const Transaction& txn, std::size_t& changes) {
  std::string out;
  changes = 0;
  for (const Change& c : txn.changes) {
    scratch_.clear();
    projector_.project(c, txn.info.final_lsn, txn.info.snapshot, scratch_);
    for (const ProjectedChange& p : scratch_) {
      if (changes++ > 0) out += '\n';
      encode_archived_change(p.row, out);
    }
  }
  return out;
}

Transaction dead_letter_transaction(const DeadLetter& entry, const ArchiveReplayMapping& replay) {
  Transaction t;
  t.info.xid = entry.xid;
  t.info.final_lsn = entry.lsn;
  t.info.end_lsn = entry.end_lsn;
  t.info.commit_time_us = entry.commit_time_us;
  std::string_view rows = entry.rows;
  while (!rows.empty()) {
    const auto nl = rows.find('\n');
    const std::string_view line = rows.substr(0, nl);
    rows = nl == std::string_view::npos ? std::string_view{} : rows.substr(nl + 1);
    if (line.empty()) continue;
    const ArchivedChange row = decode_archived_change(line, entry.id);
    auto change = replay.to_change(row, entry.id);
    if (!change) {
      throw std::runtime_error("dead-letter entry " + entry.id + ": table " + row.table.str() +
                               " is not in the config's [[tables]] any more");
    }
    t.changes.push_back(std::move(*change));
  }
  return t;
}

DeadLetterWiring::DeadLetterWiring(const config::Config& config, const Mapping& mapping, Sink& target,
                                   Hooks hooks)
    : target_(target) {
  if (!config.dead_letter.enabled) return;
  store_ = std::make_unique<RedisDeadLetterStore>(redis_options(config), config.pipeline);
  encoder_ = std::make_unique<DeadLetterRowEncoder>(mapping);
  DeadLetterSinkOptions o;
  o.max_transactions = static_cast<std::size_t>(config.dead_letter.max_transactions);
  o.store_name = "dead-letter stream " + store_->key();
  o.encode_rows = [enc = encoder_.get()](const Transaction& t, std::size_t& n) { return enc->encode(t, n); };
  o.dead_lettered = std::move(hooks.dead_lettered);
  o.store_size = std::move(hooks.entries);
  sink_ = std::make_unique<DeadLetterSink>(target, *store_, std::move(o));
}

}  // namespace cdcsync
