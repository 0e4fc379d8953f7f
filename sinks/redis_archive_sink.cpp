// RedisArchive (a pipeline's archive stream and head) and RedisArchiveSink (appends applied transactions).
#include "sinks/redis_archive_sink.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <string>

#include "decoders/debezium_json.h"
#include "decoders/type_catalog.h"

namespace cdcsync {
namespace {

constexpr std::string_view kAppendScript = R"lua(
local cur = redis.call('HGET', KEYS[2], 'last_hash')
if not cur then cur = ARGV[8] end
if cur ~= ARGV[1] then
  return redis.error_reply('CDCSYNC_CONFLICT the archive head moved: another writer appended to the stream')
end
local i = 10
for e = 1, tonumber(ARGV[9]) do
  local id = ARGV[i]
  local nf = tonumber(ARGV[i + 1])
  i = i + 2
  local args = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id}
  for k = 0, nf * 2 - 1 do args[#args + 1] = ARGV[i + k] end
  i = i + nf * 2
  redis.call(unpack(args))
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'last_id', ARGV[3], 'last_hash', ARGV[4]) end
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'end_lsn', ARGV[5], 'xid', ARGV[6], 'commit_time_us', ARGV[7])
end
return 'ok'
)lua";

bool id_less_or_equal(std::string_view a, std::string_view b) {
  const auto pa = parse_archive_entry_id(a);
  const auto pb = parse_archive_entry_id(b);
  if (!pa || !pb) return false;
  return *pa <= *pb;
}

std::int64_t parse_i64(std::string_view s, std::int64_t fallback = 0) {
  std::int64_t v = fallback;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

std::string archive_stream_key(std::string_view pipeline) {
  return "cdcsync:{" + std::string(pipeline) + "}:archive";
}
std::string archive_head_key(std::string_view pipeline) {
  return "cdcsync:{" + std::string(pipeline) + "}:archive:head";
}

const std::string* ArchiveEntry::field(std::string_view name) const {
  for (const auto& [k, v] : fields) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> ArchiveEntry::hashed_fields() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& f : fields) {
    if (f.first != "prev" && f.first != "hash") out.push_back(f);
  }
  return out;
}

// ---- ArchiveChainChecker ----

std::optional<std::string> ArchiveChainChecker::check(const ArchiveEntry& e) {
  const auto id = parse_archive_entry_id(e.id);
  if (!id) return "id is not <commit LSN>-<seq>";
  const std::string* prev = e.field("prev");
  const std::string* hash = e.field("hash");
  if (prev == nullptr || hash == nullptr) return "field prev or hash is missing";
  for (const char* f : {"topic", "row", "lsn", "xid", "ts"}) {
    if (e.field(f) == nullptr) return std::string("field ") + f + " is missing";
  }
  if (archive_entry_hash(*prev, e.id, e.hashed_fields()) != *hash) {
    return "hash does not match the entry's content (a field was altered)";
  }
  if (entries_ == 0) {
    if (expected_prev_ && *prev != *expected_prev_)
      return "prev does not match the hash of the entry before it";
  } else {
    if (*prev != last_hash_)
      return "prev is not the hash of the previous entry " + last_id_ + " (an entry is missing)";
    if (*id <= *last_) return "id does not increase after " + last_id_;
  }
  const bool same_txn = last_ && last_->first == id->first && entries_ > 0;
  if (same_txn) {
    if (ended_) return "transaction " + std::to_string(id->first) + " continues after its end";
    if (id->second != last_->second + 1)
      return "seq jumps from " + std::to_string(last_->second) + " (an entry is missing)";
  } else {
    if (entries_ > 0 && !ended_)
      return "transaction of " + last_id_ + " has no end before the next one starts";
    if (entries_ > 0 && id->second != 0)
      return "transaction starts at seq " + std::to_string(id->second) + ", not 0";
    started_whole_ = id->second == 0;
  }
  ended_ = e.field("end") != nullptr;
  if (ended_ && started_whole_) ++whole_;
  last_ = id;
  last_id_ = e.id;
  last_hash_ = *hash;
  ++entries_;
  return std::nullopt;
}

// ---- RedisArchive ----

namespace {

// What archive entries hold in memory (ids, field names and values), counted against the memory budget.
template <class It>
std::size_t bytes_of(It first, It last) {
  std::size_t n = 0;
  for (; first != last; ++first) {
    n += first->id.size();
    for (const auto& [name, value] : first->fields) n += name.size() + value.size();
  }
  return n;
}

RedisConnectOptions archive_redis_options(const ArchiveConnectionOptions& o) {
  return RedisConnectOptions{.url = o.url, .connect_timeout = o.timeout, .command_timeout = o.timeout};
}

}  // namespace

RedisArchive::RedisArchive(ArchiveConnectionOptions options)
    : options_(std::move(options)),
      stream_key_(archive_stream_key(options_.pipeline)),
      head_key_(archive_head_key(options_.pipeline)),
      client_(std::make_unique<RedisClient>(archive_redis_options(options_))) {}

RedisArchive::~RedisArchive() = default;

RedisValue RedisArchive::run(const std::vector<std::string_view>& argv, std::string_view what,
                             std::string_view key) {
  try {
    return client_->command(key.empty() ? std::string(what) : std::string(what) + " on " + std::string(key),
                            argv);
  } catch (const CheckpointUnavailable& e) {
    throw TransientError(e.what());
  } catch (const CheckpointFatal& e) {
    // A second writer moved the head (the append script's refusal): retried after rereading the head.
    if (e.code() == "CDCSYNC_CONFLICT") throw TransientError(e.what());
    throw PermanentError(std::string(key), Lsn{}, e.code(), e.what());
  }
}

std::optional<ArchiveHead> RedisArchive::head() {
  auto r = run({"HGETALL", head_key_}, "reading the archive head", head_key_);
  if (r.type != RedisValue::Type::Array || r.elements.empty()) return std::nullopt;
  ArchiveHead h;
  h.last_hash = std::string(kArchiveGenesisHash);
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    const std::string_view k = r.elements[i].str;
    const std::string_view v = r.elements[i + 1].str;
    if (k == "last_id") h.last_id = v;
    if (k == "last_hash") h.last_hash = v;
    if (k == "end_lsn") h.end_lsn = Lsn::parse(v).value_or(Lsn{});
    if (k == "xid") h.xid = Xid{static_cast<std::uint32_t>(parse_i64(v))};
    if (k == "commit_time_us") h.commit_time_us = parse_i64(v);
  }
  return h;
}

std::vector<ArchiveEntry> RedisArchive::range(std::string_view start, std::string_view end,
                                              std::size_t count) {
  return read_range("XRANGE", start, end, count);
}

std::vector<ArchiveEntry> RedisArchive::range_reverse(std::string_view end, std::string_view start,
                                                      std::size_t count) {
  return read_range("XREVRANGE", end, start, count);
}

std::vector<ArchiveEntry> RedisArchive::read_range(std::string_view verb, std::string_view a,
                                                   std::string_view b, std::size_t count) {
  const std::string n = std::to_string(count);
  auto r = run({verb, stream_key_, a, b, "COUNT", n}, "reading the archive", stream_key_);
  std::vector<ArchiveEntry> out;
  if (r.type != RedisValue::Type::Array) return out;
  for (RedisValue& e : r.elements) {
    if (e.type != RedisValue::Type::Array || e.elements.size() != 2) continue;
    ArchiveEntry entry;
    entry.id = std::move(e.elements[0].str);
    RedisValue& f = e.elements[1];
    for (std::size_t j = 0; f.type == RedisValue::Type::Array && j + 1 < f.elements.size(); j += 2) {
      entry.fields.emplace_back(std::move(f.elements[j].str), std::move(f.elements[j + 1].str));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::uint64_t RedisArchive::length() {
  auto r = run({"XLEN", stream_key_}, "measuring the archive", stream_key_);
  return r.type == RedisValue::Type::Integer ? static_cast<std::uint64_t>(r.integer) : 0;
}

void RedisArchive::append(const Append& a, std::int64_t max_len) {
  std::vector<std::string> args;
  args.reserve(16 + a.entries.size() * 24);
  const std::string last_id = a.entries.empty() ? "" : a.entries.back().id;
  const std::string last_hash = a.entries.empty() ? "" : *a.entries.back().field("hash");
  args = {"EVAL",
          std::string(kAppendScript),
          "2",
          stream_key_,
          head_key_,
          a.expected_prev,
          std::to_string(max_len),
          last_id,
          last_hash,
          a.end ? a.end->end_lsn.str() : "",
          a.end ? std::to_string(a.end->xid.value) : "",
          a.end ? std::to_string(a.end->commit_time_us) : "",
          std::string(kArchiveGenesisHash),
          std::to_string(a.entries.size())};
  for (const auto& e : a.entries) {
    args.push_back(e.id);
    args.push_back(std::to_string(e.fields.size()));
    for (const auto& [k, v] : e.fields) {
      args.push_back(k);
      args.push_back(v);
    }
  }
  std::vector<std::string_view> argv(args.begin(), args.end());
  run(argv, "appending to the archive", stream_key_);
}

std::uint64_t RedisArchive::trim_before(std::string_view id) {
  auto r = run({"XTRIM", stream_key_, "MINID", id}, "trimming the archive", stream_key_);
  return r.type == RedisValue::Type::Integer ? static_cast<std::uint64_t>(r.integer) : 0;
}

std::string RedisArchive::raw(const std::vector<std::string>& argv) {
  std::vector<std::string_view> a(argv.begin(), argv.end());
  auto r = run(a, argv.empty() ? "command" : argv[0]);
  if (r.type == RedisValue::Type::Integer) return std::to_string(r.integer);
  if (r.type == RedisValue::Type::String || r.type == RedisValue::Type::Status) return r.str;
  return "";
}

// ---- RedisArchiveSink ----

struct RedisArchiveSink::Impl {
  Impl(Mapping m, const ArchiveSinkOptions& o)
      : mapping(std::move(m)),
        archive(o.connection),
        projector(mapping),
        encoder(debezium_options(o), catalog) {}

  static DebeziumOptions debezium_options(const ArchiveSinkOptions& o) {
    DebeziumOptions d;
    d.topic_prefix = o.topic_prefix.empty() ? o.connection.pipeline : o.topic_prefix;
    d.database = o.database;
    d.tombstones_on_delete = false;
    d.transaction_metadata = false;
    return d;
  }

  Mapping mapping;
  RedisArchive archive;
  ArchiveProjector projector;
  TypeCatalog catalog;
  DebeziumEncoder encoder;
  std::optional<ArchiveHead> head;  // loaded lazily; reset after any error
  std::uint64_t chunk_seq = 0;      // next seq of the open chunked source transaction
  Lsn last_commit_lsn;              // for the envelopes' source.sequence
  std::chrono::steady_clock::time_point last_trim{};
  std::vector<ProjectedChange> scratch;
};

RedisArchiveSink::RedisArchiveSink(Mapping mapping, ArchiveSinkOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(std::move(mapping), options_)) {
  if (options_.entries_per_script == 0) options_.entries_per_script = 1;
}

RedisArchiveSink::~RedisArchiveSink() = default;

std::int64_t RedisArchiveSink::now_ms() const {
  if (options_.clock_unix_ms) return options_.clock_unix_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RedisArchiveSink::abort() {
  impl_->head.reset();
  impl_->chunk_seq = 0;
}

std::optional<Progress> RedisArchiveSink::load_progress() {
  impl_->head = impl_->archive.head();
  if (!impl_->head || !impl_->head->end_lsn.valid()) return std::nullopt;
  return Progress{impl_->head->end_lsn, impl_->head->xid, impl_->head->commit_time_us, impl_->head->end_lsn};
}

std::optional<Lsn> RedisArchiveSink::apply(const Batch& batch) {
  try {
    auto r = apply_inner(batch);
    maybe_trim();
    return r;
  } catch (...) {
    ++stats_.errors;
    if (options_.observer.error) options_.observer.error();
    impl_->head.reset();
    throw;
  }
}

std::optional<Lsn> RedisArchiveSink::apply_inner(const Batch& batch) {
  Impl& s = *impl_;
  if (!s.head) {
    s.head = s.archive.head();
    if (!s.head) s.head = ArchiveHead{.last_hash = std::string(kArchiveGenesisHash)};
  }
  ArchiveHead head = *s.head;
  std::uint64_t seq = s.chunk_seq;
  Lsn last_commit = s.last_commit_lsn;

  // Entries to append, and after which of them a source transaction ended (entry count, its head values).
  std::vector<ArchiveEntry> entries;
  std::vector<std::pair<std::size_t, ArchiveHead>> ends;
  std::uint64_t skipped = 0;
  std::string prev = head.last_hash;
  for (const Transaction& txn : batch.transactions) {
    const TransactionInfo& info = txn.info;
    if (txn.first_chunk) seq = 0;
    if (!info.final_lsn.valid()) {
      throw PermanentError(s.archive.stream_key(), info.end_lsn, "",
                           "source transaction without a commit LSN cannot be archived");
    }
    const Lsn id_lsn = info.snapshot ? Lsn{info.final_lsn.value() - 1} : info.final_lsn;
    const std::string lsn_text = info.final_lsn.str();
    const std::string xid_text = std::to_string(info.xid.value);
    // A snapshot has no commit time: its rows are stamped with the time they were archived (age trimming).
    const std::string ts_text = std::to_string(
        info.commit_time_us != 0 ? pg_micros_to_unix_micros(info.commit_time_us) / 1000 : now_ms());
    const std::size_t first_of_txn = entries.size();
    bool txn_has_new = false;
    for (const Change& change : txn.changes) {
      s.scratch.clear();
      s.projector.project(change, info.final_lsn, info.snapshot, s.scratch);
      for (ProjectedChange& p : s.scratch) {
        std::string id = archive_entry_id(id_lsn, seq++);
        if (!head.last_id.empty() && id_less_or_equal(id, head.last_id)) {
          ++skipped;
          continue;
        }
        txn_has_new = true;
        EventPosition pos{.last_commit_lsn = last_commit, .total_order = seq, .snapshot = info.snapshot};
        const DebeziumEvent ev = s.encoder.encode_change(info, p.target, pos);
        ArchiveEntry e;
        e.id = std::move(id);
        e.fields.reserve(10);
        e.fields.emplace_back("topic", std::string(ev.topic));
        e.fields.emplace_back("key", ev.has_key ? std::string(ev.key) : std::string());
        e.fields.emplace_back("value", ev.has_value ? std::string(ev.value) : std::string());
        e.fields.emplace_back("row", encode_archived_change(p.row));
        e.fields.emplace_back("lsn", lsn_text);
        e.fields.emplace_back("xid", xid_text);
        e.fields.emplace_back("ts", ts_text);
        entries.push_back(std::move(e));
      }
    }
    if (txn.last_chunk) {
      // `end` goes on the transaction's last entry, before `xid` (its place in the field order).
      if (txn_has_new && entries.size() > first_of_txn) {
        auto& f = entries.back().fields;
        f.insert(f.begin() + 5, {"end", info.end_lsn.str()});
      }
      if (info.end_lsn > head.end_lsn) {
        ends.emplace_back(
            entries.size(),
            ArchiveHead{.end_lsn = info.end_lsn, .xid = info.xid, .commit_time_us = info.commit_time_us});
      }
      last_commit = info.final_lsn;
    }
  }
  for (ArchiveEntry& e : entries) {
    std::string hash = archive_entry_hash(prev, e.id, e.fields);
    e.fields.emplace_back("prev", prev);
    e.fields.emplace_back("hash", hash);
    prev = std::move(hash);
  }

  // Append in groups; each group moves the head to its last entry and to the last transaction it finished.
  MemoryBudget::Account pending{options_.memory};
  std::size_t pending_bytes = bytes_of(entries.begin(), entries.end());
  pending.set(pending_bytes);
  std::size_t next_end = 0;
  std::size_t at = 0;
  std::string expected = head.last_hash;
  while (at < entries.size() || next_end < ends.size()) {
    const std::size_t stop = std::min(entries.size(), at + options_.entries_per_script);
    RedisArchive::Append a;
    a.expected_prev = expected;
    for (std::size_t i = at; i < stop; ++i) a.entries.push_back(std::move(entries[i]));
    while (next_end < ends.size() && ends[next_end].first <= stop) a.end = ends[next_end++].second;
    s.archive.append(a, options_.max_len);
    if (!a.entries.empty()) {
      head.last_id = a.entries.back().id;
      head.last_hash = *a.entries.back().field("hash");
      expected = head.last_hash;
    }
    if (a.end) {
      head.end_lsn = a.end->end_lsn;
      head.xid = a.end->xid;
      head.commit_time_us = a.end->commit_time_us;
    }
    pending.set(pending_bytes -= bytes_of(a.entries.begin(), a.entries.end()));
    stats_.entries_appended += a.entries.size();
    if (options_.observer.entries && !a.entries.empty())
      options_.observer.entries("appended", a.entries.size());
    s.head = head;
    at = stop;
  }
  stats_.entries_skipped += skipped;
  if (options_.observer.entries && skipped > 0) options_.observer.entries("skipped", skipped);
  s.head = head;
  s.chunk_seq = batch.ends_whole() ? 0 : seq;
  s.last_commit_lsn = last_commit;
  if (!batch.ends_whole()) return std::nullopt;
  return std::max(batch.end_lsn(), head.end_lsn);
}

void RedisArchiveSink::maybe_trim() {
  if (options_.max_age.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (impl_->last_trim != std::chrono::steady_clock::time_point{} &&
      now - impl_->last_trim < options_.trim_interval) {
    return;
  }
  impl_->last_trim = now;
  const std::int64_t cutoff =
      now_ms() - std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_age).count();
  try {
    // Cheap check first: the oldest entry is recent enough (commit times grow with the ids, nearly).
    const auto oldest = impl_->archive.range("-", "+", 1);
    if (oldest.empty() || oldest[0].field("ts") == nullptr || parse_i64(*oldest[0].field("ts")) >= cutoff)
      return;
    // The first entry of the oldest transaction committed at or after the cutoff: everything before it goes.
    // When none is within reach, everything before the newest too-old transaction start seen goes (the
    // next round continues from there).
    std::string start = "-";
    std::string keep_from;
    std::string last_old_start;
    for (int page = 0; page < 20 && keep_from.empty(); ++page) {
      const auto entries = impl_->archive.range(start, "+", 500);
      if (entries.empty()) break;
      for (const auto& e : entries) {
        const auto id = parse_archive_entry_id(e.id);
        const std::string* ts = e.field("ts");
        if (!id || ts == nullptr || id->second != 0) continue;
        if (parse_i64(*ts) >= cutoff) {
          keep_from = e.id;
          break;
        }
        last_old_start = e.id;
      }
      start = "(" + entries.back().id;
    }
    const std::string& cut = keep_from.empty() ? last_old_start : keep_from;
    if (!cut.empty()) {
      const auto removed = impl_->archive.trim_before(cut);
      stats_.entries_trimmed += removed;
      if (options_.observer.entries && removed > 0) options_.observer.entries("trimmed", removed);
      if (removed > 0) {
        spdlog::info("event archive: trimmed {} entries committed more than {} h ago", removed,
                     options_.max_age.count());
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("event archive: age trimming failed (retried later): {}", e.what());
  }
}

}  // namespace cdcsync
