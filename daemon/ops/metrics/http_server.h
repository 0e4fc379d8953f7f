// The /metrics, /healthz and /readyz endpoint: cpp-httplib, with /metrics serialized by prometheus-cpp's
// TextSerializer. Not prometheus-cpp-pull's Exposer: it serves collectables only (no /healthz, /readyz,
// 405s), and Debian's civetweb is built without IPv6, so "[::1]:port" could not listen.
// Loopback only unless allow_remote is set: the Prometheus security model says /metrics must not face public
// networks. GET (and HEAD) only: other methods get 405, other paths 404. A fixed number of worker threads
// with a bounded queue; slow clients time out.
#pragma once

#include <prometheus/collectable.h>

#include "daemon/config/listen_address.h"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace cdcsync::metrics {

// The Prometheus text exposition format, version 0.0.4.
inline constexpr std::string_view kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HealthStatus {
  bool ok = false;
  std::string reason;  // shown in the response body: no secrets, no row values
};
using HealthCheck = std::function<HealthStatus()>;

struct MetricsServerOptions {
  std::string listen = "127.0.0.1:10187";
  bool allow_remote = false;
  std::chrono::milliseconds read_timeout{2000};
  std::chrono::milliseconds write_timeout{2000};
  std::size_t threads = 2;
  std::size_t max_queued_connections =
      16;  // beyond this the accept loop waits (the kernel backlog holds more)
};

class MetricsServer {
 public:
  // `collectables` are scraped in order on every GET /metrics. Without a check, /healthz answers 200 "ok" and
  // /readyz 503 "not ready: no readiness check". Throws MetricsServerError for a bad or refused address.
  MetricsServer(MetricsServerOptions options,
                std::vector<std::shared_ptr<const prometheus::Collectable>> collectables,
                HealthCheck healthz = {}, HealthCheck readyz = {});
  ~MetricsServer();  // stops
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds (MetricsServerError when the port is taken) and serves on a background thread.
  void start();
  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void stop();

  int port() const { return port_; }  // the bound port, after start()
  const config::ListenAddress& address() const { return address_; }

  // The body GET /metrics returns.
  std::string scrape() const;

 private:
  MetricsServerOptions options_;
  config::ListenAddress address_;
  std::vector<std::shared_ptr<const prometheus::Collectable>> collectables_;
  HealthCheck healthz_;
  HealthCheck readyz_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace cdcsync::metrics
