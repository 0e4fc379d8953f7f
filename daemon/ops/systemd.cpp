#include "daemon/ops/systemd.h"

#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

#include <cstdlib>
#include <memory>

namespace cdcsync {

SystemdNotifier::SystemdNotifier() {
  enabled_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  std::uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_every_ = std::chrono::microseconds(usec / 2);
}

void SystemdNotifier::ready() {
  if (!enabled_ || ready_sent_.exchange(true)) return;
  sd_notify(0, "READY=1");
}

void SystemdNotifier::reloading() {
  if (enabled_ && ready_sent_) sd_notify(0, "RELOADING=1");
}

void SystemdNotifier::reloaded() {
  if (enabled_ && ready_sent_) sd_notify(0, "READY=1");
}

void SystemdNotifier::stopping() {
  if (enabled_) sd_notify(0, "STOPPING=1");
}

void SystemdNotifier::status(const std::string& text) {
  if (enabled_) sd_notifyf(0, "STATUS=%s", text.c_str());
}

std::string systemd_unit_name() {
  if (std::getenv("INVOCATION_ID") == nullptr) return {};  // set by systemd for the processes of a unit
  char* raw = nullptr;
  if (sd_pid_get_unit(0, &raw) < 0 || raw == nullptr) return {};
  const std::unique_ptr<char, decltype(&std::free)> unit{raw, &std::free};
  const std::string name = unit.get();
  return name.ends_with(".service") ? name : std::string{};
}

void SystemdNotifier::watchdog() {
  if (!enabled_ || watchdog_every_.count() == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_watchdog_ < watchdog_every_) return;
  last_watchdog_ = now;
  sd_notify(0, "WATCHDOG=1");
}

}  // namespace cdcsync
