// Redis AUTH with an ACL user limited to the pipeline's keys (the line docs/security.md documents): the
// daemon syncs with it, verify records its result, and the user can touch no other pipeline's key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <unistd.h>

#include <memory>

#include "tests/e2e/security/security_fixture.h"
#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

struct RedisFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

// One command as `user`; returns the reply text, errors included ("NOPERM ...").
class RedisAs {
 public:
  RedisAs(const std::string& user, const std::string& password)
      : c_(redisConnect("127.0.0.1", TestServers::get().redis_port())) {
    if (!c_ || c_->err) throw std::runtime_error("cannot connect to the test Redis");
    const auto auth = command({"AUTH", user, password});
    if (auth != "OK") throw std::runtime_error("AUTH failed: " + auth);
  }
  std::string command(const std::vector<std::string>& argv) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    std::unique_ptr<redisReply, ReplyFree> r{static_cast<redisReply*>(
        redisCommandArgv(c_.get(), static_cast<int>(args.size()), args.data(), lens.data()))};
    if (!r) return "(no reply)";
    if (r->type == REDIS_REPLY_NIL) return "(nil)";
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    if (r->type == REDIS_REPLY_ARRAY) return "(array)";
    return std::string(r->str, r->len);
  }

 private:
  std::unique_ptr<redisContext, RedisFree> c_;
};

TEST(RedisAcl, AUserLimitedToThePipelinesKeysSyncsAndCannotTouchAnotherPipeline) {
  SecurityPipeline p("acl");
  const std::string user = "cdcsync-" + p.pipeline();
  const std::string password = "acl-pw-" + std::to_string(getpid());
  redis_command(acl_setuser(user, password, p.pipeline()));
  struct DropUser {
    std::string user;
    ~DropUser() {
      try {
        redis_command({"ACL", "DELUSER", user});
      } catch (...) {
      }
    }
  } drop{user};

  PipelineOptions o;
  o.redis_url = "redis://" + user + "@127.0.0.1:" + std::to_string(TestServers::get().redis_port()) + "/0";
  o.redis_password_file = p.secret_file("redis.pw", password);
  o.metrics_port = free_port();
  p.insert_customers(1, 10);
  DaemonProcess daemon(p.dir(), "acl-daemon", p.config_text(o));
  daemon.start();
  ASSERT_TRUE(eventually([&] { return p.target_customers() == 10; }, 60s)) << daemon.log_tail();
  const std::string checkpoint_key = "cdcsync:{" + p.pipeline() + "}:checkpoint";
  ASSERT_TRUE(eventually(
      [&] {
        return redis_command({"HGET", checkpoint_key, "lsn"}) != "(nil)";
      },
      30s))
      << daemon.log_tail();
  // verify compares at a fresh source snapshot: the daemon must keep streaming for the target to reach it.
  const auto config = p.write_config("acl", o);
  const auto verify = p.cdcsync({"verify", "--config", config});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_THAT(verify.err, ::testing::Not(HasSubstr("not recorded in Redis")));
  EXPECT_EQ(redis_command({"HGET", "cdcsync:{" + p.pipeline() + "}:verify", "status"}), "equal");
  // The daemon's probe reads the result back (HGETALL) as this user and exports it per table.
  std::string metrics;
  EXPECT_TRUE(eventually(
      [&] {
        metrics = http_get(o.metrics_port, "/metrics");
        return metrics.find("cdcsync_verify_table_mismatched_rows{") != std::string::npos;
      },
      30s))
      << daemon.log_tail();
  EXPECT_THAT(metrics, HasSubstr("table=\"ref.customer\"} 0"));
  daemon.terminate();
  ASSERT_EQ(daemon.wait_exit(30s), 0) << daemon.log_tail();
  EXPECT_EQ(daemon.log_count("NOPERM"), 0u) << daemon.log_tail();

  EXPECT_EQ(p.cdcsync({"checkpoint", "show", "--config", config}).exit_code, 0);

  // Another pipeline's keys, other keys and other commands are refused to this user.
  RedisAs as(user, password);
  EXPECT_THAT(as.command({"GET", checkpoint_key}), ::testing::Not(HasSubstr("NOPERM")));
  EXPECT_THAT(as.command({"HGETALL", "cdcsync:{other-pipeline}:checkpoint"}), HasSubstr("NOPERM"));
  EXPECT_THAT(as.command({"SET", "cdcsync:{other-pipeline}:lease", "mine"}), HasSubstr("NOPERM"));
  EXPECT_THAT(as.command({"DEL", "cdcsync:{other-pipeline}:checkpoint"}), HasSubstr("NOPERM"));
  EXPECT_THAT(
      as.command({"EVAL", "return redis.call('GET', KEYS[1])", "1", "cdcsync:{other-pipeline}:lease"}),
      HasSubstr("NOPERM"));
  EXPECT_THAT(as.command({"KEYS", "*"}), HasSubstr("NOPERM"));
  EXPECT_THAT(as.command({"FLUSHALL"}), HasSubstr("NOPERM"));
  EXPECT_THAT(as.command({"CONFIG", "SET", "dir", "/tmp"}), HasSubstr("NOPERM"));

  // The same user configured for another pipeline: the daemon stops on the refusal, naming it.
  PipelineOptions other = o;
  other.pipeline = "sec-acl-other";
  DaemonProcess intruder(p.dir(), "acl-other", p.config_text(other));
  intruder.start();
  const auto code = intruder.wait_exit(60s);
  ASSERT_TRUE(code.has_value()) << intruder.log_tail();
  EXPECT_EQ(*code, 1) << intruder.log_tail();
  EXPECT_GT(intruder.log_count("NOPERM"), 0u) << intruder.log_tail();
  EXPECT_EQ(redis_command({"EXISTS", "cdcsync:{sec-acl-other}:lease"}), "0");
}

}  // namespace
}  // namespace cdcsync::test
