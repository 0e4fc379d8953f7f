#include "daemon/ops/metrics/http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <atomic>

namespace cdcsync::metrics {
namespace {

class MetricsHttpServer : public ::testing::Test {
 protected:
  void SetUp() override {
    prometheus::BuildCounter()
        .Name("demo_requests_total")
        .Help("Requests.")
        .Register(*registry_)
        .Add({{"op", "c"}})
        .Increment(7);
    server_ = std::make_unique<MetricsServer>(
        MetricsServerOptions{.listen = "127.0.0.1:0"},
        std::vector<std::shared_ptr<const prometheus::Collectable>>{registry_},
        [] { return HealthStatus{.ok = true, .reason = "receiving"}; },
        [this] {
          return HealthStatus{.ok = ready_.load(), .reason = ready_ ? "caught up" : "replaying backlog"};
        });
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(5, 0);
  }

  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::atomic<bool> ready_{false};
  std::unique_ptr<MetricsServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(MetricsHttpServer, ServesMetricsInTheTextFormat) {
  ASSERT_GT(server_->port(), 0);
  const auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kTextContentType);
  EXPECT_NE(res->body.find("# TYPE demo_requests_total counter\ndemo_requests_total{op=\"c\"} 7\n"),
            std::string::npos)
      << res->body;
}

TEST_F(MetricsHttpServer, AnswersHealthAndReadinessFromTheCallbacks) {
  auto health = client_->Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok: receiving\n");
  auto ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "not ok: replaying backlog\n");
  ready_ = true;
  ready = client_->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "ok: caught up\n");
}

TEST_F(MetricsHttpServer, UnknownPathIs404) {
  const auto res = client_->Get("/debug/pprof");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(MetricsHttpServer, NonGetIs405) {
  const auto post = client_->Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  const auto del = client_->Delete("/healthz");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 405);
  const auto put = client_->Put("/anything", "x", "text/plain");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 405);
}

TEST_F(MetricsHttpServer, StopsAndRefusesConnectionsAfterwards) {
  const int port = server_->port();
  server_->stop();
  server_->stop();  // idempotent
  httplib::Client late("127.0.0.1", port);
  late.set_connection_timeout(1, 0);
  EXPECT_FALSE(late.Get("/metrics"));
}

TEST(MetricsHttpServerHealth, DefaultsToHealthyButNotReady) {
  MetricsServer server(MetricsServerOptions{.listen = "127.0.0.1:0"}, {});
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  const auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
}

TEST(MetricsHttpServerHealth, AThrowingCheckIsNotOkWithoutDetails) {
  MetricsServer server(MetricsServerOptions{.listen = "127.0.0.1:0"}, {},
                       []() -> HealthStatus { throw std::runtime_error("password=hunter2"); });
  server.start();
  httplib::Client client("127.0.0.1", server.port());
  const auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(health->body.find("hunter2"), std::string::npos);
}

// The address rules themselves are config::parse_listen_address's (tests/unit/config/listen_address_test.cpp);
// here: the server refuses what it refuses, as its own error naming the bad part.
TEST(MetricsHttpServerAddress, RefusesNonLoopbackUnlessAllowed) {
  EXPECT_THROW(MetricsServer(MetricsServerOptions{.listen = "0.0.0.0:10187"}, {}), MetricsServerError);
  EXPECT_THROW(MetricsServer(MetricsServerOptions{.listen = "[::]:10187"}, {}), MetricsServerError);
  EXPECT_NO_THROW(MetricsServer(MetricsServerOptions{.listen = "0.0.0.0:0", .allow_remote = true}, {}));
  const MetricsServer v6(MetricsServerOptions{.listen = "[::1]:10187"}, {});
  EXPECT_EQ(v6.address().host, "::1");
  EXPECT_EQ(v6.address().port, 10187);
}

TEST(MetricsHttpServerAddress, NamesTheBadPart) {
  const auto error = [](std::string_view text) {
    try {
      MetricsServer server(MetricsServerOptions{.listen = std::string(text)}, {});
    } catch (const MetricsServerError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error("127.0.0.1").find("expected host:port"), std::string::npos);
  EXPECT_NE(error("127.0.0.1:http").find("bad port 'http'"), std::string::npos);
  EXPECT_NE(error("metrics.example.com:10187").find("not an IP address"), std::string::npos);
  EXPECT_TRUE(error("127.0.0.1").starts_with("metrics listen address '127.0.0.1'"));
}

TEST(MetricsHttpServerAddress, PortInUseIsAClearError) {
  MetricsServer first(MetricsServerOptions{.listen = "127.0.0.1:0"}, {});
  first.start();
  MetricsServer second(MetricsServerOptions{.listen = "127.0.0.1:" + std::to_string(first.port())}, {});
  EXPECT_THROW(second.start(), MetricsServerError);
}

}  // namespace
}  // namespace cdcsync::metrics
