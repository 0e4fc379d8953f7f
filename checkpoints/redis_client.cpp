#include "checkpoints/redis_client.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>

namespace cdcsync {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{.tv_sec = static_cast<time_t>(ms.count() / 1000),
                 .tv_usec = static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

// Redis's own text, cut short and stripped of control characters, for messages.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 300)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

bool is_retriable(std::string_view code, std::string_view text) {
  static constexpr std::array<std::string_view, 7> kRetriable = {
      "LOADING", "READONLY", "BUSY", "TRYAGAIN", "MASTERDOWN", "OOM", "CLUSTERDOWN"};
  if (std::find(kRetriable.begin(), kRetriable.end(), code) != kRetriable.end()) return true;
  return code == "ERR" && text.find("max number of clients") != std::string_view::npos;
}

RedisValue copy(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::Integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      v.type = RedisValue::Type::String;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = RedisValue::Type::Status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::Array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(copy(r->element[i]));
      break;
    default:
      break;
  }
  return v;
}

}  // namespace

class RedisClient::Connection {
 public:
  explicit Connection(const Options& o) : url_(o.url) {
    const auto tv = to_timeval(o.connect_timeout);
    ctx_.reset(url_.transport == RedisUrl::Transport::Unix
                   ? redisConnectUnixWithTimeout(url_.socket_path.c_str(), tv)
                   : redisConnectWithTimeout(url_.host.c_str(), url_.port, tv));
    if (!ctx_) throw CheckpointUnavailable("Redis " + url_.redacted() + ": cannot allocate a connection");
    if (ctx_->err) unavailable("connect", ctx_->errstr);
    if (redisSetTimeout(ctx_.get(), to_timeval(o.command_timeout)) != REDIS_OK)
      unavailable("set command timeout", ctx_->errstr);
    if (!url_.password.empty()) {
      std::vector<std::string_view> auth = {"AUTH"};
      if (!url_.user.empty()) auth.push_back(url_.user);
      auth.push_back(url_.password);
      command("AUTH", auth);
    }
    if (url_.db != 0) command("SELECT", {"SELECT", std::to_string(url_.db)});
  }

  RedisValue command(std::string_view what, const std::vector<std::string_view>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    std::unique_ptr<redisReply, ReplyFree> reply{static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data()))};
    if (!reply) unavailable(what, ctx_->err ? ctx_->errstr : "no reply");
    if (reply->type == REDIS_REPLY_ERROR) {
      const auto text = printable(std::string_view(reply->str, reply->len));
      const auto code = text.substr(0, text.find(' '));
      const auto msg = fmt::format("Redis {}: {}: {}", url_.redacted(), what, text);
      if (is_retriable(code, text)) throw CheckpointUnavailable(msg);
      throw CheckpointFatal(code, msg);
    }
    return copy(reply.get());
  }

 private:
  [[noreturn]] void unavailable(std::string_view what, std::string_view detail) const {
    throw CheckpointUnavailable(fmt::format("Redis {}: {}: {}", url_.redacted(), what, printable(detail)));
  }

  const RedisUrl& url_;
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

RedisClient::RedisClient(Options options) : options_(std::move(options)) {
  if (!options_.url.user.empty() && options_.url.password.empty()) {
    throw std::invalid_argument("Redis " + options_.url.redacted() +
                                ": an ACL user needs a password (in the URL or a password file)");
  }
}

RedisClient::~RedisClient() = default;

RedisValue RedisClient::command(std::string_view what, const std::vector<std::string_view>& argv) {
  try {
    if (!connection_) connection_ = std::make_unique<Connection>(options_);
    return connection_->command(what, argv);
  } catch (const CheckpointUnavailable&) {
    connection_.reset();  // hiredis contexts are unusable after an I/O or protocol error
    throw;
  }
}

}  // namespace cdcsync
