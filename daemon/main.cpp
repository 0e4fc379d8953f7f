// cdcsync: keeps the order DB's reference tables equal to the mapped projection of the customer DB.
// Subcommands dispatch here; each returns a process exit code (daemon/core/exit_codes.h).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/ops/logging.h"

namespace cdcsync {
namespace {

// SIGINT/SIGTERM are blocked in every thread and taken by one thread with sigwait, which sets the stop
// flag owned by main: no handler runs on an arbitrary thread and nothing global is needed.
class SignalWatcher {
 public:
  explicit SignalWatcher(std::atomic<bool>& stop) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    thread_ = std::thread([this, &stop] {
      int sig = 0;
      std::chrono::steady_clock::time_point first_signal{};
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGINT || sig == SIGTERM) {
          // A second signal forces the exit, but not one arriving with the first (a signal sent to both
          // the process and its group, as `timeout` does, arrives twice).
          const auto now = std::chrono::steady_clock::now();
          if (stop.exchange(true) && now - first_signal > std::chrono::seconds(2)) {
            std::fputs("cdcsync: second signal, exiting now\n", stderr);
            std::_Exit(exit_code::kError);
          }
          if (first_signal == std::chrono::steady_clock::time_point{}) {
            first_signal = now;
            if (!quiet_) spdlog::info("signal {}: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
          }
        }
      }
    });
    thread_.detach();
  }
  void set_quiet(bool quiet) { quiet_ = quiet; }

 private:
  sigset_t set_{};
  std::thread thread_;
  std::atomic<bool> quiet_{false};
};

void setup_logging(const std::string& level) {
  // Text on stderr until a command reads its config (`run` switches to log.format and log.level).
  logging::setup(level);
}

}  // namespace
}  // namespace cdcsync

int main(int argc, char** argv) {
  using namespace cdcsync;
  // Static, not on main's stack: the detached signal thread blocks in sigwait on `signals` (and may set
  // `stop`) until the process ends, after main has returned, while exit handlers reuse main's stack
  // (a use after scope that ThreadSanitizer reported at every exit).
  static std::atomic<bool> stop{false};
  static SignalWatcher signals{stop};

  CLI::App app{
      "cdcsync: change-data-capture from a PostgreSQL customer DB into an order DB's reference tables,\n"
      "with Debezium-compatible change events. Exit codes: 0 ok, 1 error, 2 usage, 3 data-loss risk\n"
      "(slot lost, gap, target behind checkpoint), 4 a change the target refuses."};
  app.set_version_flag("--version", std::string("cdcsync ") + CDCSYNC_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  commands::Registry registry;
  commands::add_all(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_code::kOk : exit_code::kUsage;
  }
  setup_logging(log_level);
  try {
    return registry.run(app, stop, [&](bool quiet) { signals.set_quiet(quiet); });
  } catch (const config::ConfigError& e) {
    for (const auto& issue : e.issues()) std::cerr << "cdcsync: " << issue.str() << "\n";
    return exit_code::kError;
  } catch (const std::exception& e) {
    std::cerr << "cdcsync: " << e.what() << "\n";
    return exit_code::kError;
  }
}
