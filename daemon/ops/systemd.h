// sd_notify: READY=1 once streaming, STATUS= with position and lag, WATCHDOG=1 from the apply loop,
// RELOADING=1 around a reload, STOPPING=1 on shutdown. Every call is a no-op when not started by systemd (no
// NOTIFY_SOCKET).
#pragma once

#include <atomic>
#include <chrono>
#include <string>

namespace cdcsync {

class SystemdNotifier {
 public:
  SystemdNotifier();
  bool enabled() const { return enabled_; }
  void ready();
  void stopping();
  // RELOADING=1 and READY=1 around a reload (SIGHUP), once ready: `systemctl reload` shows it. Any thread.
  void reloading();
  void reloaded();
  void status(const std::string& text);
  // Sends WATCHDOG=1 at most every half of the watchdog interval.
  void watchdog();

 private:
  bool enabled_ = false;
  std::atomic<bool> ready_sent_{false};
  std::chrono::microseconds watchdog_every_{0};
  std::chrono::steady_clock::time_point last_watchdog_{};
};

// The service unit this process runs as ("cdcsync@orders.service"), for cdcsync_build_info{unit} and the
// alerts' "systemctl status" line; empty when systemd did not start it as a service.
std::string systemd_unit_name();

}  // namespace cdcsync
