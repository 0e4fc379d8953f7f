// RedisClient: the hiredis connection with cdcsync's network policy, and replies copied into RedisValue.
#include "checkpoints/redis_client.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace cdcsync {
namespace {

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
    case REDIS_REPLY_ERROR:
      v.type = RedisValue::Type::Error;
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

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

}  // namespace

[[noreturn]] void throw_redis_error_reply(const RedisUrl& url, std::string_view what, std::string_view text) {
  const auto shown = printable(text);
  const auto code = shown.substr(0, shown.find(' '));
  const auto msg = fmt::format("Redis {}: {}: {}", url.redacted(), what, shown);
  if (is_retriable(code, shown)) throw CheckpointUnavailable(msg);
  if (code == "CDCSYNC_CORRUPT") throw CheckpointFatal("CORRUPT", msg);
  throw CheckpointFatal(code, msg);
}

// One hiredis context, opened with the options' timeouts, TCP keepalive and TCP_USER_TIMEOUT, AUTH and
// SELECT. Unusable after it threw CheckpointUnavailable.
class RedisClient::Connection {
 public:
  explicit Connection(const RedisConnectOptions& o) : url_(o.url) {
    const auto tv = to_timeval(o.connect_timeout);
    ctx_.reset(url_.transport == RedisUrl::Transport::Unix
                   ? redisConnectUnixWithTimeout(url_.socket_path.c_str(), tv)
                   : redisConnectWithTimeout(url_.host.c_str(), url_.port, tv));
    if (!ctx_) throw CheckpointUnavailable("Redis " + url_.redacted() + ": cannot allocate a connection");
    if (ctx_->err) unavailable("connect", ctx_->errstr);
    if (redisSetTimeout(ctx_.get(), to_timeval(o.command_timeout)) != REDIS_OK) {
      unavailable("set command timeout", ctx_->errstr);
    }
    if (url_.transport == RedisUrl::Transport::Tcp) set_tcp_options(o);
    if (!url_.password.empty()) {
      std::vector<std::string_view> auth = {"AUTH"};
      if (!url_.user.empty()) auth.push_back(url_.user);
      auth.push_back(url_.password);
      checked("AUTH", auth);
    }
    if (url_.db != 0) checked("SELECT", {"SELECT", std::to_string(url_.db)});
  }

  // The reply, which may be an error reply; throws CheckpointUnavailable when the connection failed.
  Reply command(std::string_view what, const std::vector<std::string_view>& argv) {
    std::vector<const char*> args;
    std::vector<std::size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    Reply reply{static_cast<redisReply*>(
        redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data()))};
    if (!reply) unavailable(what, ctx_->err ? ctx_->errstr : "no reply");
    return reply;
  }

 private:
  struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
  };

  void checked(std::string_view what, const std::vector<std::string_view>& argv) {
    auto reply = command(what, argv);
    if (reply->type == REDIS_REPLY_ERROR) throw_redis_error_reply(url_, what, {reply->str, reply->len});
  }

  [[noreturn]] void unavailable(std::string_view what, std::string_view detail) const {
    throw CheckpointUnavailable(fmt::format("Redis {}: {}: {}", url_.redacted(), what, printable(detail)));
  }

  void set_tcp_options(const RedisConnectOptions& o) {
    const int fd = ctx_->fd;
    const int on = 1;
    const int idle = static_cast<int>(o.keepalive_idle.count());
    const int interval = static_cast<int>(o.keepalive_interval.count());
    const int count = o.keepalive_count;
    const auto user_timeout = static_cast<unsigned int>(o.tcp_user_timeout.count());
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) != 0) {
      unavailable("setsockopt keepalive/TCP_USER_TIMEOUT", std::strerror(errno));
    }
  }

  RedisUrl url_;
  std::unique_ptr<redisContext, ContextFree> ctx_;
};

RedisClient::RedisClient(RedisConnectOptions options) : options_(std::move(options)) {
  if (!options_.url.user.empty() && options_.url.password.empty()) {
    throw std::invalid_argument("Redis " + options_.url.redacted() +
                                ": an ACL user needs a password (in the URL or a password file)");
  }
  if (options_.connect_timeout.count() < 1 || options_.command_timeout.count() < 1 ||
      options_.tcp_user_timeout.count() < 1 || options_.keepalive_idle.count() < 1 ||
      options_.keepalive_interval.count() < 1 || options_.keepalive_count < 1) {
    throw std::invalid_argument("Redis timeouts and keepalive settings must be positive");
  }
}

RedisClient::~RedisClient() = default;

bool RedisClient::connect() {
  if (connection_) return false;
  connection_ = std::make_unique<Connection>(options_);
  return true;
}

void RedisClient::disconnect() {
  connection_.reset();
}

RedisValue RedisClient::command_or_error(std::string_view what, const std::vector<std::string_view>& argv) {
  try {
    connect();
    return copy(connection_->command(what, argv).get());
  } catch (const CheckpointUnavailable&) {
    connection_.reset();  // hiredis contexts are unusable after an I/O or protocol error
    throw;
  }
}

RedisValue RedisClient::command(std::string_view what, const std::vector<std::string_view>& argv) {
  RedisValue reply = command_or_error(what, argv);
  if (reply.error()) {
    try {
      throw_redis_error_reply(options_.url, what, reply.str);
    } catch (const CheckpointUnavailable&) {
      connection_.reset();  // a retriable reply (READONLY, LOADING, ...) often means a failover
      throw;
    }
  }
  return reply;
}

}  // namespace cdcsync
