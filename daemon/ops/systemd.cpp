// SystemdNotifier: sd_notify, and the watchdog fed from the health check on a thread of its own.
#include "daemon/ops/systemd.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace cdcsync {
namespace {
constexpr std::chrono::seconds kStatusEvery{5};
}  // namespace

SystemdNotifier::SystemdNotifier() {
  enabled_ = std::getenv("NOTIFY_SOCKET") != nullptr;
  std::uint64_t usec = 0;
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0) watchdog_interval_ = std::chrono::microseconds(usec);
}

SystemdNotifier::~SystemdNotifier() {
  stop();
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

void SystemdNotifier::start(metrics::HealthCheck health, std::function<std::string()> status_line) {
  if (!enabled_ || thread_.joinable()) return;
  thread_ = std::thread([this, health = std::move(health), status_line = std::move(status_line)] {
    loop(health, status_line);
  });
}

void SystemdNotifier::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SystemdNotifier::loop(const metrics::HealthCheck& health,
                           const std::function<std::string()>& status_line) {
  using Clock = std::chrono::steady_clock;
  const auto watchdog_every = std::chrono::duration_cast<Clock::duration>(watchdog_interval_ / 2);
  const auto every = watchdog_every.count() > 0 ? std::min<Clock::duration>(watchdog_every, kStatusEvery)
                                                : Clock::duration(kStatusEvery);
  auto last_status = Clock::now() - kStatusEvery;
  bool was_healthy = true;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, every, [&] { return stop_; })) {
    lock.unlock();
    if (watchdog_every.count() > 0) {
      const metrics::HealthStatus h = health();
      if (h.ok) {
        sd_notify(0, "WATCHDOG=1");
        if (!was_healthy) spdlog::info("health check passes again: feeding systemd's watchdog");
      } else if (was_healthy) {
        spdlog::error(
            "health check fails ({}): systemd's watchdog is not fed and ends the daemon {} s after "
            "its last sign of life",
            h.reason, std::chrono::duration_cast<std::chrono::seconds>(watchdog_interval_).count());
      }
      was_healthy = h.ok;
    }
    if (Clock::now() - last_status >= kStatusEvery) {
      sd_notifyf(0, "STATUS=%s", status_line().c_str());
      last_status = Clock::now();
    }
    lock.lock();
  }
}

}  // namespace cdcsync
