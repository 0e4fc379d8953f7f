#include "checkpoints/redis_client.h"

#include <hiredis/hiredis.h>

#include "checkpoints/redis_connection.h"

namespace cdcsync {
namespace {

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

// A connection and the copying of its replies.
class RedisClient::Connection {
 public:
  explicit Connection(const Options& o)
      : connection_(RedisConnectOptions{
            .url = o.url, .connect_timeout = o.connect_timeout, .command_timeout = o.command_timeout}) {}

  RedisValue command(std::string_view what, const std::vector<std::string_view>& argv) {
    return copy(connection_.checked(what, argv).get());
  }

 private:
  RedisConnection connection_;
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
