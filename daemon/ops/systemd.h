// sd_notify: READY=1 once streaming, STATUS= with position and lag, WATCHDOG=1 while the health check says
// the daemon is alive, RELOADING=1 around a reload, STOPPING=1 on shutdown. Every call is a no-op when not
// started by systemd (no
// NOTIFY_SOCKET).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/ops/metrics/http_server.h"

namespace cdcsync {

class SystemdNotifier {
 public:
  SystemdNotifier();
  ~SystemdNotifier();  // stops the watchdog thread
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return enabled_; }
  // The watchdog interval systemd asked for (WatchdogSec=, from WATCHDOG_USEC); 0 when none.
  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }
  void ready();
  void stopping();
  // RELOADING=1 and READY=1 around a reload (SIGHUP), once ready: `systemctl reload` shows it. Any thread.
  void reloading();
  void reloaded();
  void status(const std::string& text);

  // A thread of its own sends WATCHDOG=1 every half of the watchdog interval while `health` is ok (the
  // health check tells a statement in flight within its deadline from a hang: a slow statement does not get
  // the daemon killed, a hung main loop does, WatchdogSec after its last sign of life), and STATUS= from
  // `status_line` every 5 s. Nothing when not started by systemd.
  void start(metrics::HealthCheck health, std::function<std::string()> status_line);
  void stop();

 private:
  void loop(const metrics::HealthCheck& health, const std::function<std::string()>& status_line);

  bool enabled_ = false;
  std::atomic<bool> ready_sent_{false};
  std::chrono::microseconds watchdog_interval_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// The service unit this process runs as ("cdcsync@orders.service"), for cdcsync_build_info{unit} and the
// alerts' "systemctl status" line; empty when systemd did not start it as a service.
std::string systemd_unit_name();

}  // namespace cdcsync
