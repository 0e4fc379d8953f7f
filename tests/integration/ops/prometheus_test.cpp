// A real Prometheus scrapes a running cdcsync: /metrics passes `promtool check metrics`, every PromQL
// expression of the Grafana dashboard and of the alert rules parses and evaluates through the HTTP API, the
// ones that describe flowing changes return data, and every alert rule is healthy and quiet while the
// pipeline is. Also: /healthz, /readyz, and the JSON log format as a collector would read it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/eventually.h"
#include "tests/harness/servers.h"
#include "tests/integration/ops/ops_support.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Every "expr" of the dashboard's panels, with Grafana's variables replaced as Grafana would.
std::vector<std::string> dashboard_expressions(const std::string& pipeline) {
  rapidjson::Document doc;
  const std::string text = read_file(fs::path(repo_root()) / "dashboards/cdcsync.json");
  doc.Parse(text.c_str());
  EXPECT_FALSE(doc.HasParseError());
  std::vector<std::string> out;
  for (const auto& panel : doc["panels"].GetArray()) {
    if (!panel.HasMember("targets")) continue;
    for (const auto& t : panel["targets"].GetArray()) {
      std::string e = t["expr"].GetString();
      e = std::regex_replace(e, std::regex(R"(\$pipeline)"), pipeline);
      e = std::regex_replace(e, std::regex(R"(\$__rate_interval)"), "1m");
      out.push_back(e);
    }
  }
  return out;
}

std::size_t count_alerts_in_rules_file() {
  std::istringstream in(read_file(fs::path(repo_root()) / "dashboards/alerts.yml"));
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, std::regex(R"(^\s*- alert:\s*\w+)"))) ++n;
  }
  return n;
}

TEST(OpsPrometheus, ScrapesARunningDaemonAndEvaluatesEveryDashboardAndAlertExpression) {
  if (access("/usr/bin/prometheus", X_OK) != 0 || access("/usr/bin/promtool", X_OK) != 0) {
    GTEST_SKIP() << "prometheus and promtool are not installed (Debian package prometheus)";
  }
  const auto& servers = TestServers::get();
  const std::string tag = "ops_prom_" + std::to_string(getpid());
  const std::string pipeline = "ops-prom-" + std::to_string(getpid());
  const std::string customers = tag + "_customers";
  const std::string orders = tag + "_orders";
  const std::string source_admin = servers.fresh_database(
      Server::Customer, customers, {"deploy/sql/customer_schema.sql", "deploy/sql/customer_roles.sql"});
  servers.fresh_database(Server::Order, orders,
                         {"deploy/sql/order_schema.sql", "deploy/sql/order_roles.sql"});

  const fs::path dir = fs::temp_directory_path() / tag;
  fs::remove_all(dir);
  fs::create_directories(dir);
  const int metrics_port = free_port();
  std::ofstream(dir / "cdcsync.toml")
      << "pipeline = \"" << pipeline << "\"\n"
      << "[source]\nconninfo = \"" << servers.source_conninfo(customers) << "\"\n"
      << "publication = \"cdcsync_customers\"\nslot = \"" << tag << "\"\n"
      << "create_slot = true\n"
      << "[target]\nconninfo = \"" << servers.target_conninfo(orders) << "\"\n"
      << "[checkpoint]\nredis = \"" << servers.redis_url() << "\"\n"
      << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port << "\"\n"
      << "[log]\nformat = \"json\"\n"
      << "[[tables]]\nsource = \"public.customers\"\ntarget = \"ref.customer\"\n"
      << "key = [\"id\"]\n"
      << "columns = { id = \"customer_id\", full_name = \"display_name\", "
         "status = \"status\", tier = \"tier\" }\n"
      << "deletes = \"soft\"\n";
  struct DropSlot {
    std::string conninfo, slot;
    ~DropSlot() {
      try {
        exec_sql(conninfo,
                 "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                     slot + "'");
      } catch (...) {
      }
    }
  } drop_slot{source_admin, tag};

  auto daemon = std::make_unique<Child>(
      std::vector<std::string>{daemon_binary(), "run", "--config", (dir / "cdcsync.toml").string()},
      dir / "cdcsync.log");
  ASSERT_TRUE(eventually([&] { return http_get(metrics_port, "/readyz").status == 200; }, 60s, 100ms))
      << "never ready (exit " << daemon->wait_exit(0ms).value_or(-1)
      << "); /readyz: " << http_get(metrics_port, "/readyz").body << "\n"
      << daemon->log();
  EXPECT_EQ(http_get(metrics_port, "/healthz").status, 200);

  // Changes flow: 5 inserts, 2 updates, 1 delete (soft).
  exec_sql(source_admin,
           "INSERT INTO public.customers (full_name, email) SELECT 'name ' || g, 'e' || g || '@example.com' "
           "FROM generate_series(1, 5) g");
  exec_sql(source_admin, "UPDATE public.customers SET tier = 'gold' WHERE id <= 2");
  exec_sql(source_admin, "DELETE FROM public.customers WHERE id = 5");
  ASSERT_TRUE(eventually(
      [&] {
        const auto body = http_get(metrics_port, "/metrics").body;
        return body.find("cdcsync_change_events_total{op=\"delete\",pipeline=\"" + pipeline +
                         "\",table=\"public.customers\"} 1") != std::string::npos &&
               body.find("cdcsync_source_probe_up{pipeline=\"" + pipeline + "\"} 1") != std::string::npos;
      },
      30s, 100ms))
      << http_get(metrics_port, "/metrics").body;

  // Prometheus' own linter on the live exposition.
  {
    std::ofstream(dir / "metrics.txt") << http_get(metrics_port, "/metrics").body;
    const std::string cmd = "promtool check metrics < '" + (dir / "metrics.txt").string() + "' > '" +
                            (dir / "promtool.txt").string() + "' 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(dir / "promtool.txt");
    EXPECT_EQ(read_file(dir / "promtool.txt"), "") << "promtool lint findings";
  }

  // A real Prometheus scraping it every second, with the alert rules loaded.
  const int prom_port = free_port();
  std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                        << "rule_files:\n  - " << repo_root() << "/dashboards/alerts.yml\n"
                                        << "scrape_configs:\n  - job_name: cdcsync\n    static_configs:\n"
                                        << "      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  Child prometheus({"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                    "--storage.tsdb.path=" + (dir / "tsdb").string(),
                    "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                   dir / "prometheus.log");
  ASSERT_TRUE(eventually([&] { return http_get(prom_port, "/-/ready").status == 200; }, 60s, 200ms))
      << prometheus.log();
  // Enough scrapes for rate() over 1m, taken after the changes were applied.
  ASSERT_TRUE(eventually(
      [&] {
        const auto doc = prom_query(prom_port, "count_over_time(cdcsync_change_events_total{pipeline=\"" +
                                                   pipeline + "\",op=\"delete\"}[1m]) >= 4");
        return result_size(doc) > 0;
      },
      60s, 500ms))
      << prometheus.log();
  EXPECT_EQ(result_size(prom_query(prom_port, "up{job=\"cdcsync\"} == 1")), 1u);

  // Every dashboard expression parses and evaluates; those about applied changes return data. The ones for
  // errors, reconnects, fatal stops, schema drift and per-table verify results have no series on a healthy
  // pipeline that was never verified.
  const std::set<std::string> may_be_empty = {"cdcsync_errors_total",
                                              "cdcsync_reconnects_total",
                                              "cdcsync_fatal",
                                              "cdcsync_schema_drift_columns_total",
                                              "cdcsync_verify_table_mismatched_rows",
                                              "cdcsync_target_rows_without_toast_total",
                                              "cdcsync_target_apply_fallbacks_total"};
  const auto exprs = dashboard_expressions(pipeline);
  ASSERT_GE(exprs.size(), 30u);
  std::size_t with_data = 0;
  for (const auto& e : exprs) {
    const auto doc = prom_query(prom_port, e);
    ASSERT_STREQ(doc["status"].GetString(), "success") << e << ": " << error_of(doc);
    bool optional = false;
    for (const auto& m : may_be_empty) optional = optional || e.find(m + "{") != std::string::npos;
    if (optional) continue;
    EXPECT_GT(result_size(doc), 0u) << "no data for dashboard expression " << e;
    ++with_data;
  }
  EXPECT_GE(with_data, exprs.size() - 7);

  // Every alert rule: loaded by Prometheus, evaluated without error, and not firing on a healthy pipeline.
  // Its expression also evaluates through the query API.
  const std::size_t alerts_in_file = count_alerts_in_rules_file();
  ASSERT_GT(alerts_in_file, 10u);
  ASSERT_TRUE(eventually(
      [&] {
        auto res = http_get(prom_port, "/api/v1/rules");
        rapidjson::Document doc;
        doc.Parse(res.body.c_str());
        if (doc.HasParseError() || !doc.HasMember("data")) return false;
        std::size_t evaluated = 0;
        for (const auto& g : doc["data"]["groups"].GetArray()) {
          for (const auto& r : g["rules"].GetArray()) {
            const std::string last = r["lastEvaluation"].GetString();
            if (!last.starts_with("0001-") && std::string(r["health"].GetString()) == "ok") ++evaluated;
          }
        }
        return evaluated == alerts_in_file;
      },
      30s, 500ms))
      << http_get(prom_port, "/api/v1/rules").body;
  {
    rapidjson::Document doc;
    const auto body = http_get(prom_port, "/api/v1/rules").body;
    doc.Parse(body.c_str());
    std::size_t queried = 0;
    for (const auto& g : doc["data"]["groups"].GetArray()) {
      for (const auto& r : g["rules"].GetArray()) {
        const std::string name = r["name"].GetString();
        EXPECT_STREQ(r["health"].GetString(), "ok") << name;
        EXPECT_STREQ(r["state"].GetString(), "inactive") << name << " is not quiet on a healthy pipeline";
        const auto q = prom_query(prom_port, r["query"].GetString());
        EXPECT_STREQ(q["status"].GetString(), "success") << name << ": " << error_of(q);
        ++queried;
      }
    }
    EXPECT_EQ(queried, alerts_in_file);
  }

  // A graceful stop, and a log a collector can read: every line one JSON object.
  daemon->terminate();
  EXPECT_EQ(daemon->wait_exit(30s), 0) << daemon->log();
  std::istringstream log(daemon->log());
  std::size_t lines = 0;
  for (std::string line; std::getline(log, line);) {
    if (line.empty()) continue;
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    EXPECT_FALSE(doc.HasParseError()) << "not JSON: " << line;
    EXPECT_TRUE(!doc.HasParseError() && doc.IsObject() && doc.HasMember("msg") && doc.HasMember("level"))
        << line;
    ++lines;
  }
  EXPECT_GT(lines, 5u);
  EXPECT_EQ(daemon->log().find("@example.com"), std::string::npos) << "a row value reached the log";
}

}  // namespace
}  // namespace cdcsync::test
