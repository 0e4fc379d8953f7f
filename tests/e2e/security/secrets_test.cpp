// Secrets never leak: unique marker passwords for the source role, the target role and a Redis ACL user, in
// password files; `check`, `run` at log.level=debug, `verify`, `tail`, `config show` and failing runs with
// wrong passwords. No marker may appear in any output line, error, /proc/PID/cmdline, /proc/PID/environ or
// /metrics.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "tests/e2e/security/security_fixture.h"
#include "tests/harness/daemon_process.h"

namespace cdcsync::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A password nobody else uses: "<what>Marker" and 16 random hex digits.
std::string marker(const std::string& what) {
  std::random_device rd;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
  return what + "Marker" + hex;
}

std::string read_proc(pid_t pid, const std::string& file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every place a secret could show up, with where it was seen.
class Exposure {
 public:
  void add(const std::string& where, const std::string& text) { seen_.emplace_back(where, text); }
  void expect_none_of(const std::vector<std::string>& markers) const {
    ASSERT_FALSE(seen_.empty());
    for (const auto& [where, text] : seen_) {
      for (const auto& m : markers)
        EXPECT_THAT(text, ::testing::Not(HasSubstr(m))) << "secret leaked in " << where;
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> seen_;
};

TEST(Secrets, MarkerPasswordsAppearInNoLogArgvMetricOrError) {
  const auto& s = TestServers::get();
  SecurityPipeline p("leak");
  const std::string source_pw = marker("Src");
  const std::string target_pw = marker("Tgt");
  const std::string redis_pw = marker("Redis");
  const std::string wrong_pw = marker("Wrong");
  const std::vector<std::string> markers = {source_pw, target_pw, redis_pw, wrong_pw};

  // Roles of their own with the marker passwords; they get the demo roles' privileges by membership.
  const PasswordLogins logins(p, "cdcsync_leak", source_pw, target_pw, redis_pw);
  const std::string redis_user = logins.redis_user();

  const auto source_file = p.secret_file("source.pw", source_pw);
  const auto target_file = p.secret_file("target.pw", target_pw);
  const auto redis_file = p.secret_file("redis.pw", redis_pw);
  const auto wrong_file = p.secret_file("wrong.pw", wrong_pw);
  PipelineOptions o;
  o.source_conninfo = "host=127.0.0.1 port=" + std::to_string(s.port(Server::Customer)) +
                      " dbname=" + p.customers_db() + " user=cdcsync_leak_source";
  o.target_conninfo = "host=127.0.0.1 port=" + std::to_string(s.port(Server::Order)) +
                      " dbname=" + p.orders_db() + " user=cdcsync_leak_target";
  o.source_password_file = source_file;
  o.target_password_file = target_file;
  o.redis_url = "redis://" + redis_user + "@127.0.0.1:" + std::to_string(s.redis_port()) + "/0";
  o.redis_password_file = redis_file;
  o.log_level = "debug";
  o.snapshot_mode = "never";
  o.metrics_port = free_port();
  const auto config = p.write_config("leak", o);

  Exposure exposure;
  const auto record = [&](const std::string& what, const cdcsync::test::Run& r) {
    exposure.add(what + " stdout", r.out);
    exposure.add(what + " stderr", r.err);
  };

  const auto check = p.cdcsync({"--log-level", "debug", "check", "--config", config});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  // It also says how the target session will compress large values (nobody chose a method on these servers).
  EXPECT_NE(check.out.find("target: large values compressed with lz4 (target.toast_compression = \"auto\")"),
            std::string::npos)
      << check.out;
  // ... whether its commits wait for the flush (the test servers run with fsync = off) ...
  EXPECT_NE(check.out.find("target: commits wait for the WAL flush (synchronous_commit = on)"),
            std::string::npos)
      << check.out;
  EXPECT_NE(check.out.find("target: note: fsync = off on the order server"), std::string::npos) << check.out;
  // ... and how each table's rows are copied.
  EXPECT_NE(check.out.find("target: ref.customer: rows copied in COPY's binary format"), std::string::npos)
      << check.out;
  record("check", check);
  record("config show", p.cdcsync({"--log-level", "debug", "config", "show", "--config", config}));

  // The daemon at debug level, streaming; its argv, environment and metrics while it runs.
  {
    DaemonProcess daemon(p.dir(), "leak-daemon", p.config_text(o));
    daemon.start();
    ASSERT_TRUE(eventually([&] { return daemon.log_count("state: streaming") > 0; }, 60s))
        << daemon.log_tail();
    exposure.add("/proc/PID/cmdline", read_proc(daemon.pid(), "cmdline"));
    exposure.add("/proc/PID/environ", read_proc(daemon.pid(), "environ"));
    std::string metrics;
    ASSERT_TRUE(eventually(
        [&] {
          metrics = http_get(o.metrics_port, "/metrics");
          return metrics.find("cdcsync_") != std::string::npos;
        },
        10s));
    exposure.add("/metrics", metrics);
    exposure.add("/healthz", http_get(o.metrics_port, "/healthz"));
    exposure.add("/readyz", http_get(o.metrics_port, "/readyz"));
    daemon.terminate();
    daemon.wait_exit(30s);
    exposure.add("run log", daemon.log());
  }

  // verify may find the target behind (no daemon runs now); what matters here is what it prints.
  record("verify",
         p.cdcsync({"--log-level", "debug", "verify", "--config", config}, std::chrono::seconds(90)));
  record("checkpoint show", p.cdcsync({"--log-level", "debug", "checkpoint", "show", "--config", config}));
  record("tail", p.cdcsync({"--log-level", "debug", "tail", "--source", o.source_conninfo, "--publication",
                            "cdcsync_customers", "--slot", "sec_leak_tail", "--create-slot", "--temporary",
                            "--password-file", source_file, "--timeout", "2"}));

  // Wrong passwords: each failure names the role or the file, never a password.
  for (const auto& which : {"source", "target", "redis"}) {
    PipelineOptions bad = o;
    if (std::string(which) == "source") bad.source_password_file = wrong_file;
    if (std::string(which) == "target") bad.target_password_file = wrong_file;
    if (std::string(which) == "redis") bad.redis_password_file = wrong_file;
    const auto bad_config = p.write_config(std::string("wrong-") + which, bad);
    const auto failed_check = p.cdcsync({"--log-level", "debug", "check", "--config", bad_config});
    EXPECT_EQ(failed_check.exit_code, 1) << which;
    record(std::string("check with a wrong ") + which + " password", failed_check);

    DaemonProcess daemon(p.dir(), std::string("wrong-") + which + "-daemon", p.config_text(bad));
    daemon.start();
    // Give the failure time to be logged (the daemon retries a refused PostgreSQL login, stops on WRONGPASS).
    eventually([&] { return daemon.log_count("failed") > 0 || daemon.log_count("WRONGPASS") > 0; }, 15s);
    exposure.add(std::string("run with a wrong ") + which + " password: cmdline",
                 read_proc(daemon.pid(), "cmdline"));
    daemon.terminate();
    daemon.wait_exit(30s);
    exposure.add(std::string("run with a wrong ") + which + " password: log", daemon.log());
  }

  exposure.expect_none_of(markers);
  drop_slot("sec_leak_tail");
}

}  // namespace
}  // namespace cdcsync::test
