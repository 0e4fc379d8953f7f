#include "checkpoints/redis_connection.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "checkpoints/redis_store.h"

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

}  // namespace

void RedisReplyFree::operator()(redisReply* r) const {
  freeReplyObject(r);
}

void RedisConnection::ContextFree::operator()(redisContext* c) const {
  redisFree(c);
}

[[noreturn]] void throw_redis_reply_error(const RedisUrl& url, std::string_view what, const redisReply* r) {
  const auto text = printable(std::string_view(r->str, r->len));
  const auto code = text.substr(0, text.find(' '));
  const auto msg = fmt::format("Redis {}: {}: {}", url.redacted(), what, text);
  if (is_retriable(code, text)) throw CheckpointUnavailable(msg);
  if (code == "CDCSYNC_CORRUPT") throw CheckpointFatal("CORRUPT", msg);
  throw CheckpointFatal(code, msg);
}

RedisConnection::RedisConnection(const RedisConnectOptions& o) : url_(o.url) {
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

RedisConnection::~RedisConnection() = default;

RedisReplyPtr RedisConnection::command(std::string_view what, const std::vector<std::string_view>& argv) {
  std::vector<const char*> args;
  std::vector<std::size_t> lens;
  args.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  RedisReplyPtr reply{static_cast<redisReply*>(
      redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(), lens.data()))};
  if (!reply) unavailable(what, ctx_->err ? ctx_->errstr : "no reply");
  return reply;
}

RedisReplyPtr RedisConnection::checked(std::string_view what, const std::vector<std::string_view>& argv) {
  auto reply = command(what, argv);
  if (reply->type == REDIS_REPLY_ERROR) throw_redis_reply_error(url_, what, reply.get());
  return reply;
}

void RedisConnection::unavailable(std::string_view what, std::string_view detail) const {
  throw CheckpointUnavailable(fmt::format("Redis {}: {}: {}", url_.redacted(), what, printable(detail)));
}

void RedisConnection::set_tcp_options(const RedisConnectOptions& o) {
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

}  // namespace cdcsync
