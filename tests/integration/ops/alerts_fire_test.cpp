// Every failure mode fires its alert: a real cdcsync made to fail, scraped by a real Prometheus evaluating
// dashboards/alerts.yml. promtool's unit tests (alerts_test.yml) prove the thresholds and durations on
// made-up series; this proves the expressions against what the daemon really exposes when things go wrong.
//
// The rules run as written, with their thresholds and `for:` durations scaled down so a test takes seconds:
// each substitution below must match (a changed rule fails the test until it is mirrored here).
//   lag and stale checkpoint: the order DB's table is locked, changes wait;
//   retention and lag in bytes: the same, the slot keeps the WAL the inserts wrote;
//   Redis down and the source probe down: a TCP proxy in front of each refuses and resets connections (and
//   the lag and retention gauges turn NaN instead of keeping their values);
//   exit 3 under systemd (NOTIFY_SOCKET set): the slot dropped while the daemon was stopped, so it stops with
//   slot_lost at the next start: CdcsyncFatal and CdcsyncSlotLost from its last scrapes, then CdcsyncDown
//   from up == 0 once it has exited.
#include <gtest/gtest.h>
#include <sys/un.h>

#include <map>
#include <regex>
#include <set>

#include "decoders/pg.h"
#include "tests/harness/eventually.h"
#include "tests/harness/servers.h"
#include "tests/harness/tcp_proxy.h"
#include "tests/integration/ops/ops_support.h"

namespace cdcsync::test {
namespace {

namespace fs = std::filesystem;

// alerts.yml with test thresholds: each pair must occur in the file.
std::string scaled_rules() {
  std::string text = read_file(fs::path(repo_root()) / "dashboards/alerts.yml");
  const std::vector<std::pair<std::string, std::string>> scale = {
      {"(cdcsync_replication_lag_seconds) > 300", "(cdcsync_replication_lag_seconds) > 2"},
      {"(cdcsync_replication_lag_bytes) > 1073741824", "(cdcsync_replication_lag_bytes) > 10000"},
      {"(cdcsync_checkpoint_age_seconds) > 600", "(cdcsync_checkpoint_age_seconds) > 2"},
      {"(cdcsync_slot_retained_wal_bytes) > 10737418240", "(cdcsync_slot_retained_wal_bytes) > 10000"},
  };
  for (const auto& [from, to] : scale) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << "alerts.yml no longer has: " << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return std::regex_replace(text, std::regex(R"(for: \d+[smh])"), "for: 2s");
}

// The active alerts named `name` in `state` ("firing"), as their label sets.
std::vector<std::map<std::string, std::string>> alerts(int prom_port, const std::string& name,
                                                       const std::string& state = "firing") {
  rapidjson::Document doc;
  const auto body = http_get(prom_port, "/api/v1/alerts").body;
  doc.Parse(body.c_str());
  std::vector<std::map<std::string, std::string>> out;
  if (doc.HasParseError() || !doc.HasMember("data")) return out;
  for (const auto& a : doc["data"]["alerts"].GetArray()) {
    if (std::string(a["state"].GetString()) != state) continue;
    std::map<std::string, std::string> labels;
    for (const auto& l : a["labels"].GetObject()) labels[l.name.GetString()] = l.value.GetString();
    if (labels["alertname"] == name) out.push_back(std::move(labels));
  }
  return out;
}

bool firing(int prom_port, const std::string& name, const std::string& label = "",
            const std::string& value = "") {
  for (const auto& a : alerts(prom_port, name)) {
    if (label.empty() || (a.contains(label) && a.at(label) == value)) return true;
  }
  return false;
}

std::string every_alert(int prom_port) {
  return http_get(prom_port, "/api/v1/alerts").body;
}

// The value of a series in the daemon's exposition (the text after "name{pipeline=...} ").
std::optional<std::string> exposed(int metrics_port, const std::string& series) {
  const auto body = http_get(metrics_port, "/metrics").body;
  const auto at = body.find(series + " ");
  if (at == std::string::npos) return std::nullopt;
  const auto end = body.find('\n', at);
  return body.substr(at + series.size() + 1, end - at - series.size() - 1);
}

// A datagram socket standing in for systemd's notify socket, so the daemon behaves as under a unit.
class NotifySocket {
 public:
  explicit NotifySocket(const fs::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ::unlink(path.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ADD_FAILURE() << "bind " << path;
  }
  ~NotifySocket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

TEST(OpsAlerts, EachFailureModeOfARealDaemonFiresItsAlertInARealPrometheus) {
  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "prometheus is not installed";
  const auto& servers = TestServers::get();
  const std::string tag = "ops_alerts_" + std::to_string(getpid());
  const std::string pipeline = "ops-alerts-" + std::to_string(getpid());
  const std::string customers = tag + "_customers";
  const std::string orders = tag + "_orders";
  const std::string source_admin = servers.fresh_database(
      Server::Customer, customers, {"deploy/sql/customer_schema.sql", "deploy/sql/customer_roles.sql"});
  const std::string order_admin = servers.fresh_database(
      Server::Order, orders, {"deploy/sql/order_schema.sql", "deploy/sql/order_roles.sql"});
  struct DropSlot {
    std::string slot;
    ~DropSlot() {
      try {
        drop_slot(slot);
      } catch (...) {
      }
    }
  } drop{tag};

  // The source and Redis behind proxies the test can cut.
  TcpProxy source_proxy(servers.port(Server::Customer), "source");
  TcpProxy redis_proxy(servers.redis_port(), "redis");
  const fs::path dir = fs::temp_directory_path() / tag;
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The servers' pgpass names the source's port: a copy of it names the proxy's too.
  {
    const std::string pgpass = read_file(servers.passfile());
    const std::string real = ":" + std::to_string(servers.port(Server::Customer)) + ":";
    const std::string proxied = ":" + std::to_string(source_proxy.port()) + ":";
    std::ofstream(dir / "pgpass") << pgpass << "\n" << std::regex_replace(pgpass, std::regex(real), proxied);
    fs::permissions(dir / "pgpass", fs::perms::owner_read | fs::perms::owner_write);
  }
  std::string source_conninfo = servers.source_conninfo(customers);
  source_conninfo = std::regex_replace(source_conninfo, std::regex("port=\\d+"),
                                       "port=" + std::to_string(source_proxy.port()));
  source_conninfo = std::regex_replace(source_conninfo, std::regex("passfile=\\S+"),
                                       "passfile=" + (dir / "pgpass").string());
  const std::string redis_url = std::regex_replace(servers.redis_url(), std::regex(":\\d+/"),
                                                   ":" + std::to_string(redis_proxy.port()) + "/");

  const int metrics_port = free_port();
  std::ofstream(dir / "cdcsync.toml")
      << "pipeline = \"" << pipeline << "\"\n"
      << "[source]\nconninfo = \"" << source_conninfo << "\"\n"
      << "publication = \"cdcsync_customers\"\nslot = \"" << tag << "\"\n"
      << "create_slot = true\nreconnect_max_ms = 1000\n"
      << "[target]\nconninfo = \"" << servers.target_conninfo(orders) << "\"\n"
      << "[checkpoint]\nredis = \"" << redis_url << "\"\n"
      << "lease_ttl_ms = 3000\nrenew_ms = 500\n"
      << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port << "\"\n"
      << "[[tables]]\nsource = \"public.customers\"\ntarget = \"ref.customer\"\n"
      << "key = [\"id\"]\n"
      << "columns = { id = \"customer_id\", full_name = \"display_name\", "
         "status = \"status\", tier = \"tier\" }\n"
      << "deletes = \"soft\"\n";
  const std::vector<std::string> run{daemon_binary(), "run", "--config", (dir / "cdcsync.toml").string()};
  auto daemon = std::make_unique<Child>(run, dir / "cdcsync.log");
  ASSERT_TRUE(eventually([&] { return http_get(metrics_port, "/readyz").status == 200; }, 60s, 100ms))
      << daemon->log();
  const std::string up_series = "cdcsync_source_probe_up{pipeline=\"" + pipeline + "\"}";
  exec_sql(source_admin, "INSERT INTO public.customers (full_name, email) VALUES ('first', 'f@example.com')");
  ASSERT_TRUE(eventually([&] { return query_value(order_admin, "SELECT count(*) FROM ref.customer") == "1"; },
                         30s, 100ms));

  std::ofstream(dir / "alerts.yml") << scaled_rules();
  const int prom_port = free_port();
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << (dir / "alerts.yml").string() << "\n"
      << "scrape_configs:\n  - job_name: pipelines-on-db1\n"
      << "    static_configs:\n      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  Child prometheus({"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                    "--storage.tsdb.path=" + (dir / "tsdb").string(),
                    "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                   dir / "prometheus.log");
  ASSERT_TRUE(eventually([&] { return http_get(prom_port, "/-/ready").status == 200; }, 60s, 200ms))
      << prometheus.log();
  ASSERT_TRUE(
      eventually([&] { return result_size(prom_query(prom_port, "cdcsync_build_info")) > 0; }, 30s, 200ms));
  EXPECT_EQ(every_alert(prom_port).find("\"state\":\"firing\""), std::string::npos)
      << "an alert fires on a healthy pipeline: " << every_alert(prom_port);

  // Lag, a stale checkpoint and WAL retention: the target table locked while the source writes.
  {
    PgConn lock = pg_connect(order_admin, "the order DB");
    PgResult begin{PQexec(lock.get(), "BEGIN; LOCK TABLE ref.customer IN ACCESS EXCLUSIVE MODE")};
    ASSERT_EQ(PQresultStatus(begin.get()), PGRES_COMMAND_OK) << PQerrorMessage(lock.get());
    exec_sql(source_admin,
             "INSERT INTO public.customers (full_name, email) SELECT 'n' || g, 'e' || g || "
             "'@example.com' FROM generate_series(1, 2000) g");
    // More transactions behind the blocked one: work waiting in the queue is what the lag in seconds and the
    // checkpoint age count (a lone transaction stuck in the apply shows in bytes only).
    for (int i = 0; i < 3; ++i) {
      exec_sql(source_admin, "INSERT INTO public.customers (full_name, email) VALUES ('later', 'l" +
                                 std::to_string(i) + "@example.com')");
    }
    for (const char* alert : {"CdcsyncReplicationLagHigh", "CdcsyncReplicationLagBytesHigh",
                              "CdcsyncCheckpointStale", "CdcsyncSlotWalRetentionHigh"}) {
      EXPECT_TRUE(eventually([&] { return firing(prom_port, alert, "pipeline", pipeline); }, 60s, 250ms))
          << alert << " never fired: " << every_alert(prom_port);
    }
    PgResult rollback{PQexec(lock.get(), "ROLLBACK")};
  }
  ASSERT_TRUE(eventually(
      [&] { return query_value(order_admin, "SELECT count(*) FROM ref.customer") == "2004"; }, 90s, 200ms))
      << daemon->log();
  EXPECT_TRUE(eventually([&] { return !firing(prom_port, "CdcsyncReplicationLagHigh"); }, 60s, 250ms))
      << "the lag alert outlived the lag: " << every_alert(prom_port);

  // Redis down: connections refused and reset.
  redis_proxy.refuse_new(true);
  redis_proxy.reset_all();
  EXPECT_TRUE(eventually(
      [&] { return firing(prom_port, "CdcsyncCheckpointStoreDown", "pipeline", pipeline); }, 60s, 250ms))
      << every_alert(prom_port) << "\n"
      << http_get(metrics_port, "/metrics").body;
  redis_proxy.heal();
  EXPECT_TRUE(eventually([&] { return !firing(prom_port, "CdcsyncCheckpointStoreDown"); }, 60s, 250ms))
      << every_alert(prom_port);

  // The source probe down: the lag and retention gauges become NaN, not their last values.
  source_proxy.refuse_new(true);
  source_proxy.reset_all();
  EXPECT_TRUE(eventually([&] { return firing(prom_port, "CdcsyncSourceProbeDown", "pipeline", pipeline); },
                         60s, 250ms))
      << every_alert(prom_port);
  for (const char* gauge : {"cdcsync_replication_lag_bytes", "cdcsync_slot_retained_wal_bytes",
                            "cdcsync_slot_invalidation_forecast_seconds"}) {
    // prometheus-cpp writes "Nan"; Prometheus reads any case.
    const auto v = exposed(metrics_port, std::string(gauge) + "{pipeline=\"" + pipeline + "\"}");
    EXPECT_TRUE(v && (*v == "NaN" || *v == "Nan")) << gauge << " = " << v.value_or("(absent)");
  }
  source_proxy.heal();
  EXPECT_TRUE(eventually([&] { return exposed(metrics_port, up_series) == "1"; }, 60s, 250ms));
  EXPECT_TRUE(eventually([&] { return !firing(prom_port, "CdcsyncSourceProbeDown"); }, 60s, 250ms))
      << every_alert(prom_port);

  // Exit 3 under systemd: stopped, the slot dropped, started again as a unit would start it.
  daemon->terminate();
  ASSERT_EQ(daemon->wait_exit(30s), 0) << daemon->log();
  drop_slot(tag);
  NotifySocket notify(dir / "notify.sock");
  daemon = std::make_unique<Child>(
      run, dir / "cdcsync.log", std::vector<std::string>{"NOTIFY_SOCKET=" + (dir / "notify.sock").string()});
  const auto code = daemon->wait_exit(90s);
  EXPECT_EQ(code, 3) << daemon->log();
  EXPECT_NE(daemon->log().find("serving /metrics until the fatal reason is scraped"), std::string::npos)
      << daemon->log();
  EXPECT_TRUE(
      eventually([&] { return firing(prom_port, "CdcsyncFatal", "reason", "slot_lost"); }, 30s, 250ms))
      << every_alert(prom_port);
  EXPECT_TRUE(
      eventually([&] { return firing(prom_port, "CdcsyncSlotLost", "pipeline", pipeline); }, 30s, 250ms))
      << every_alert(prom_port);
  EXPECT_TRUE(eventually(
      [&] {
        const auto down = alerts(prom_port, "CdcsyncDown");
        return !down.empty() && down.front().at("pipeline") == pipeline &&
               down.front().at("instance") == "127.0.0.1:" + std::to_string(metrics_port) &&
               down.front().at("job") == "pipelines-on-db1";
      },
      60s, 250ms))
      << every_alert(prom_port);
}

}  // namespace
}  // namespace cdcsync::test
