// RedisCheckpointStore: the checkpoint hash and the lease, moved by Lua scripts.
#include "checkpoints/redis_store.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

namespace cdcsync {
namespace {

// Lua numbers are doubles: a 64-bit LSN does not fit, so scripts compare (hi, lo) 32-bit halves of lsn_hex.
constexpr std::string_view kAdvanceScript = R"lua(
local holder = redis.call('GET', KEYS[2])
if holder ~= ARGV[1] then return 'lease_lost' end
local function halves(h)
  if type(h) ~= 'string' or #h ~= 16 or not string.match(h, '^%x+$') then return nil end
  return tonumber(string.sub(h, 1, 8), 16), tonumber(string.sub(h, 9, 16), 16)
end
local new_hi, new_lo = halves(ARGV[3])
if not new_hi then return redis.error_reply('CDCSYNC_BADARG new lsn_hex is not 16 hex digits') end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local hi, lo = halves(redis.call('HGET', KEYS[1], 'lsn_hex'))
  if not hi then return redis.error_reply('CDCSYNC_CORRUPT stored lsn_hex is missing or not 16 hex digits') end
  if hi > new_hi or (hi == new_hi and lo >= new_lo) then return 'not_ahead' end
end
redis.call('HSET', KEYS[1], 'lsn', ARGV[2], 'lsn_hex', ARGV[3], 'unix_ms', ARGV[4], 'owner', ARGV[1])
return 'moved'
)lua";

constexpr std::string_view kRenewScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
)lua";

constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

// A hash without our fields is as corrupt as a string: the EXISTS check makes both visible to load().
constexpr std::string_view kLoadScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('HMGET', KEYS[1], 'lsn', 'lsn_hex', 'unix_ms', 'owner')
)lua";

constexpr std::string_view kOverwriteScript = R"lua(
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'lsn', ARGV[1], 'lsn_hex', ARGV[2], 'unix_ms', ARGV[3], 'owner', ARGV[4])
return 'ok'
)lua";

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &len, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 of a checkpoint script failed");
  }
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

struct Script {
  std::string_view body;
  std::string sha;
};

const Script& script(std::string_view body) {
  // Only the five constants above reach here; computing each digest once is enough.
  static const std::array<Script, 5> scripts = {
      Script{kAdvanceScript, sha1_hex(kAdvanceScript)}, Script{kRenewScript, sha1_hex(kRenewScript)},
      Script{kReleaseScript, sha1_hex(kReleaseScript)}, Script{kLoadScript, sha1_hex(kLoadScript)},
      Script{kOverwriteScript, sha1_hex(kOverwriteScript)}};
  for (const auto& s : scripts) {
    if (s.body.data() == body.data()) return s;
  }
  throw std::logic_error("unknown checkpoint script");
}

void check_reply_size(const RedisValue& r, std::size_t max_bytes, int depth = 0) {
  if (depth > 2) throw CheckpointFatal("REPLY_TOO_LARGE", "Redis reply nests deeper than expected");
  if (r.str.size() > max_bytes) {
    throw CheckpointFatal("REPLY_TOO_LARGE", fmt::format("Redis reply of {} bytes exceeds the {}-byte limit",
                                                         r.str.size(), max_bytes));
  }
  if (r.type == RedisValue::Type::Array) {
    if (r.elements.size() > 16) {
      throw CheckpointFatal("REPLY_TOO_LARGE", fmt::format("Redis reply of {} elements", r.elements.size()));
    }
    for (const RedisValue& e : r.elements) check_reply_size(e, max_bytes, depth + 1);
  }
}

bool valid_pipeline_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

void check_token(const LeaseToken& token) {
  if (token.value.empty() || token.value.size() > 256) {
    throw std::invalid_argument("lease token must be 1..256 bytes");
  }
}

std::string ttl_ms(std::chrono::milliseconds ttl) {
  if (ttl.count() < 1) throw std::invalid_argument("lease ttl must be at least 1 ms");
  return std::to_string(ttl.count());
}

std::string now_unix_ms() {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

}  // namespace

std::string lsn_hex(Lsn lsn) {
  return fmt::format("{:016X}", lsn.value());
}

RedisCheckpointStore::RedisCheckpointStore(RedisStoreOptions options) : options_(std::move(options)) {
  if (!valid_pipeline_name(options_.pipeline)) {
    throw std::invalid_argument("pipeline name must be 1..64 characters of [A-Za-z0-9_.-]");
  }
  client_ = std::make_unique<RedisClient>(options_.connection);  // checks the URL and timeouts
  if (options_.max_reply_bytes < 256) throw std::invalid_argument("Redis max_reply_bytes must be >= 256");
  checkpoint_key_ = fmt::format("cdcsync:{{{}}}:checkpoint", options_.pipeline);
  lease_key_ = fmt::format("cdcsync:{{{}}}:lease", options_.pipeline);
}

RedisCheckpointStore::~RedisCheckpointStore() = default;

RedisValue RedisCheckpointStore::run(std::string_view what, const std::vector<std::string_view>& argv,
                                     bool pass_noscript) {
  try {
    if (client_->connect()) {
      if (!connected_once_ || lost_) {
        spdlog::info("checkpoint store: connected to Redis {} (pipeline {})",
                     options_.connection.url.redacted(), options_.pipeline);
      }
      connected_once_ = true;
      lost_ = false;
    }
    RedisValue reply = client_->command_or_error(argv.at(0), argv);
    check_reply_size(reply, options_.max_reply_bytes);
    if (reply.error()) {
      if (pass_noscript && reply.str.starts_with("NOSCRIPT")) return reply;
      throw_redis_error_reply(options_.connection.url, fmt::format("{} on {}", what, checkpoint_key_),
                              reply.str);
    }
    return reply;
  } catch (const std::exception& e) {
    // hiredis contexts are unusable after an I/O or protocol error; replies like READONLY hint at a failover.
    client_->disconnect();
    if (!lost_) spdlog::warn("checkpoint store: {}", e.what());
    lost_ = true;
    throw;
  }
}

RedisValue RedisCheckpointStore::eval(std::string_view what, std::string_view body,
                                      const std::vector<std::string_view>& keys,
                                      const std::vector<std::string_view>& args) {
  const auto& s = script(body);
  const auto numkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv = {"EVALSHA", s.sha, numkeys};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto reply = run(what, argv, /*pass_noscript=*/true);
  if (!reply.error()) return reply;
  argv[0] = "EVAL";
  argv[1] = s.body;
  return run(what, argv);
}

std::optional<Checkpoint> RedisCheckpointStore::load() {
  std::lock_guard lock(mutex_);
  const auto reply = eval("load", kLoadScript, {checkpoint_key_}, {});
  if (reply.nil()) return std::nullopt;
  const auto corrupt = [&](std::string_view what) {
    return CheckpointFatal("CORRUPT", fmt::format("Redis {}: checkpoint {} is corrupt: {}",
                                                  options_.connection.url.redacted(), checkpoint_key_, what));
  };
  if (reply.type != RedisValue::Type::Array || reply.elements.size() != 4)
    throw corrupt("unexpected reply shape");
  std::array<std::optional<std::string_view>, 4> f;  // lsn, lsn_hex, unix_ms, owner
  for (std::size_t i = 0; i < 4; ++i) {
    const RedisValue& e = reply.elements[i];
    if (e.type == RedisValue::Type::String) f[i] = e.str;
  }
  if (!f[0]) throw corrupt("field lsn is missing");
  if (!f[1]) throw corrupt("field lsn_hex is missing");
  if (!f[2]) throw corrupt("field unix_ms is missing");
  if (!f[3]) throw corrupt("field owner is missing");
  const auto lsn = Lsn::parse(*f[0]);
  if (!lsn) throw corrupt("field lsn is not an LSN like 16/B374D848");
  if (*f[1] != lsn_hex(*lsn)) throw corrupt("fields lsn and lsn_hex disagree");
  Checkpoint cp{.lsn = *lsn};
  const auto [end, ec] = std::from_chars(f[2]->data(), f[2]->data() + f[2]->size(), cp.unix_ms);
  if (ec != std::errc{} || end != f[2]->data() + f[2]->size())
    throw corrupt("field unix_ms is not an integer");
  cp.owner = std::string(*f[3]);
  return cp;
}

bool RedisCheckpointStore::acquire_lease(const LeaseToken& token, std::chrono::milliseconds ttl) {
  check_token(token);
  const auto px = ttl_ms(ttl);
  std::lock_guard lock(mutex_);
  const auto reply = run("acquire lease", {"SET", lease_key_, token.value, "NX", "PX", px});
  if (reply.type == RedisValue::Type::Status) return true;  // +OK: it was free
  const auto renewed = eval("acquire lease", kRenewScript, {lease_key_}, {token.value, px});
  return renewed.type == RedisValue::Type::Integer && renewed.integer == 1;
}

bool RedisCheckpointStore::renew_lease(const LeaseToken& token, std::chrono::milliseconds ttl) {
  check_token(token);
  const auto px = ttl_ms(ttl);
  std::lock_guard lock(mutex_);
  const auto reply = eval("renew lease", kRenewScript, {lease_key_}, {token.value, px});
  return reply.type == RedisValue::Type::Integer && reply.integer == 1;
}

void RedisCheckpointStore::release_lease(const LeaseToken& token) {
  check_token(token);
  std::lock_guard lock(mutex_);
  eval("release lease", kReleaseScript, {lease_key_}, {token.value});
}

std::optional<std::string> RedisCheckpointStore::lease_holder() {
  std::lock_guard lock(mutex_);
  const auto reply = run("read lease", {"GET", lease_key_});
  if (reply.nil()) return std::nullopt;
  return reply.str;
}

Advance RedisCheckpointStore::advance(const LeaseToken& token, Lsn lsn) {
  check_token(token);
  if (!lsn.valid()) throw std::invalid_argument("cannot advance the checkpoint to 0/0");
  const auto text = lsn.str();
  const auto hex = lsn_hex(lsn);
  const auto now = now_unix_ms();
  std::lock_guard lock(mutex_);
  const auto reply =
      eval("advance", kAdvanceScript, {checkpoint_key_, lease_key_}, {token.value, text, hex, now});
  const auto answer = reply.type == RedisValue::Type::String || reply.type == RedisValue::Type::Status
                          ? std::string_view(reply.str)
                          : std::string_view{};
  if (answer == "moved") return Advance::Moved;
  if (answer == "not_ahead") return Advance::NotAhead;
  if (answer == "lease_lost") return Advance::LeaseLost;
  throw CheckpointFatal("CORRUPT", fmt::format("Redis {}: advance on {}: unexpected script reply",
                                               options_.connection.url.redacted(), checkpoint_key_));
}

void RedisCheckpointStore::overwrite(Lsn lsn, const std::string& owner) {
  if (!lsn.valid()) throw std::invalid_argument("cannot overwrite the checkpoint with 0/0");
  const auto text = lsn.str();
  const auto hex = lsn_hex(lsn);
  const auto now = now_unix_ms();
  std::lock_guard lock(mutex_);
  eval("overwrite", kOverwriteScript, {checkpoint_key_}, {text, hex, now, owner});
  spdlog::warn("checkpoint store: {} overwritten with {} by operator command", checkpoint_key_, text);
}

void RedisCheckpointStore::reset() {
  std::lock_guard lock(mutex_);
  run("reset", {"DEL", checkpoint_key_});
  spdlog::warn("checkpoint store: {} deleted by operator command", checkpoint_key_);
}

void RedisCheckpointStore::ping() {
  std::lock_guard lock(mutex_);
  run("ping", {"PING"});
}

}  // namespace cdcsync
