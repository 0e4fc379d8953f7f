#include "daemon/ops/metrics/http_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <mutex>

namespace cdcsync::metrics {
namespace {

constexpr const char* kPlain = "text/plain; charset=utf-8";

// httplib's ThreadPool queues without limit; this one makes the accept loop wait instead, so a flood of
// connections costs at most `threads` workers and `max_queued` sockets (the rest wait in the kernel backlog).
class BoundedThreadPool final : public httplib::TaskQueue {
 public:
  BoundedThreadPool(std::size_t threads, std::size_t max_queued) : max_queued_(max_queued) {
    for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    space_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  void work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // shut down and drained: every queued socket was served and closed
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      job();
    }
  }

  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool shutdown_ = false;
};

void answer_health(const HealthCheck& check, std::string_view what, httplib::Response& res) {
  HealthStatus status;
  try {
    status = check();
  } catch (const std::exception& e) {
    status = HealthStatus{.ok = false, .reason = fmt::format("{} check failed", what)};
    spdlog::warn("metrics server: {} check threw: {}", what, e.what());
  }
  res.status = status.ok ? 200 : 503;
  res.set_content(
      fmt::format("{}{}{}\n", status.ok ? "ok" : "not ok", status.reason.empty() ? "" : ": ", status.reason),
      kPlain);
}

}  // namespace

// The one listen-address parser (config/listen_address.h), its refusal as this server's error.
config::ListenAddress listen_address(const MetricsServerOptions& options) {
  try {
    return config::parse_listen_address(options.listen, options.allow_remote);
  } catch (const std::invalid_argument& e) {
    throw MetricsServerError(fmt::format("metrics {}", e.what()));
  }
}

MetricsServer::MetricsServer(MetricsServerOptions options,
                             std::vector<std::shared_ptr<const prometheus::Collectable>> collectables,
                             HealthCheck healthz, HealthCheck readyz)
    : options_(std::move(options)),
      address_(listen_address(options_)),
      collectables_(std::move(collectables)),
      healthz_(std::move(healthz)),
      readyz_(std::move(readyz)) {
  if (options_.threads < 1 || options_.max_queued_connections < 1) {
    throw MetricsServerError("metrics server needs at least one thread and one queued connection");
  }
  if (!healthz_) healthz_ = [] { return HealthStatus{.ok = true}; };
  if (!readyz_) readyz_ = [] { return HealthStatus{.ok = false, .reason = "no readiness check"}; };
}

MetricsServer::~MetricsServer() {
  stop();
}

std::string MetricsServer::scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& c : collectables_) {
    auto more = c->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void MetricsServer::start() {
  if (server_) return;
  auto server = std::make_unique<httplib::Server>();
  const auto threads = options_.threads;
  const auto queued = options_.max_queued_connections;
  server->new_task_queue = [threads, queued] { return new BoundedThreadPool(threads, queued); };
  server->set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(options_.read_timeout));
  server->set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(options_.write_timeout));
  server->set_keep_alive_timeout(2);
  server->set_keep_alive_max_count(20);
  server->set_payload_max_length(1024);
  // httplib's default is SO_REUSEPORT, which lets a second daemon bind the same port and split the scrapes.
  // SO_REUSEADDR alone still allows a quick restart past TIME_WAIT but refuses a second listener.
  server->set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(scrape(), std::string(kTextContentType));
  });
  server->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    answer_health(healthz_, "health", res);
  });
  server->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    answer_health(readyz_, "readiness", res);
  });
  const auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
    res.set_content("method not allowed\n", kPlain);
  };
  server->Post(".*", not_allowed);
  server->Put(".*", not_allowed);
  server->Patch(".*", not_allowed);
  server->Delete(".*", not_allowed);
  server->Options(".*", not_allowed);
  server->set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("not found; try /metrics, /healthz or /readyz\n", kPlain);
  });
  server->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("internal error\n", kPlain);
  });

  int port = address_.port;
  if (port == 0) {
    port = server->bind_to_any_port(address_.host);
    if (port < 0) port = 0;
  } else if (!server->bind_to_port(address_.host, port)) {
    port = 0;
  }
  if (port == 0) {
    throw MetricsServerError(fmt::format("metrics server cannot listen on {}", options_.listen));
  }
  port_ = port;
  server_ = std::move(server);
  thread_ = std::thread([s = server_.get()] { s->listen_after_bind(); });
  // httplib's stop() does nothing until the listen loop runs: wait for it, so stop() right after start()
  // works.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("metrics server listening on {}:{}", address_.host, port_);
}

void MetricsServer::stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace cdcsync::metrics
