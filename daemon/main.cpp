// cdcsync: keeps the order DB's reference tables equal to the mapped projection of the customer DB.
// Subcommands dispatch here; each returns a process exit code (daemon/core/exit_codes.h).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/ops/logging.h"
#include "daemon/version.h"

namespace cdcsync {
namespace {

// SIGINT/SIGTERM/SIGHUP are blocked in every thread and taken by one thread with sigwait, which sets the stop
// flag (or counts a reload) owned by main: no handler runs on an arbitrary thread and nothing global is
// needed. SIGHUP reloads the config of `run` (never stops it: systemd's ExecReload and `kill -HUP`); for any
// other command it stops like SIGTERM, as a terminal's hangup should.
class SignalWatcher {
 public:
  SignalWatcher(std::atomic<bool>& stop, std::atomic<std::uint64_t>& reloads) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    thread_ = std::thread([this, &stop, &reloads] {
      int sig = 0;
      std::chrono::steady_clock::time_point first_signal{};
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGHUP && reloadable_) {
          spdlog::info("signal SIGHUP: reloading the config");
          reloads.fetch_add(1);
          continue;
        }
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
          // A second signal forces the exit, but not one arriving with the first (a signal sent to both
          // the process and its group, as `timeout` does, arrives twice).
          const auto now = std::chrono::steady_clock::now();
          if (stop.exchange(true) && now - first_signal > std::chrono::seconds(2)) {
            std::fputs("cdcsync: second signal, exiting now\n", stderr);
            std::_Exit(exit_code::kError);
          }
          if (first_signal == std::chrono::steady_clock::time_point{}) {
            first_signal = now;
            if (!quiet_) spdlog::info("signal SIG{}: stopping", sigabbrev_np(sig));
          }
        }
      }
    });
    thread_.detach();
  }
  void set_quiet(bool quiet) { quiet_ = quiet; }
  void set_reloadable(bool reloadable) { reloadable_ = reloadable; }

 private:
  sigset_t set_{};
  std::thread thread_;
  std::atomic<bool> quiet_{false};
  std::atomic<bool> reloadable_{false};
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
  static std::atomic<std::uint64_t> reloads{0};
  static SignalWatcher signals{stop, reloads};

  CLI::App app{
      "cdcsync: change-data-capture from a PostgreSQL customer DB into an order DB's reference tables,\n"
      "with Debezium-compatible change events. Exit codes (every command): 0 ok; 1 config error, failed\n"
      "check or a finding (diverged, violation); 2 usage (also: --yes missing); 3 data-loss risk (slot\n"
      "lost, gap, target behind checkpoint); 4 a change the target refuses; 5 a protocol or decode error\n"
      "in the source stream; 6 an internal error; 7 could not check (a server unreachable)."};
  app.set_version_flag("--version", build::version_line());
  app.require_subcommand(1);
  app.fallthrough();  // global options also after the subcommand: cdcsync check --config F --credentials-dir
                      // D
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  std::string credentials_dir;
  app.add_option("--credentials-dir", credentials_dir,
                 "Read credential:NAME from DIR/NAME (default: $CREDENTIALS_DIRECTORY under systemd, else "
                 "systemd's credential store /etc/credstore, /run/credstore, /usr/lib/credstore)")
      ->check(CLI::ExistingDirectory);

  commands::Registry registry;
  registry.set_reload_count(&reloads);
  commands::add_all(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_code::kOk : exit_code::kUsage;
  }
  setup_logging(log_level);
  if (!credentials_dir.empty()) config::set_credentials_directory(credentials_dir);
  try {
    return registry.run(
        app, stop, [&](bool quiet) { signals.set_quiet(quiet); },
        [&](bool reloadable) { signals.set_reloadable(reloadable); });
  } catch (const config::ConfigError& e) {
    for (const auto& issue : e.issues()) std::cerr << "cdcsync: " << issue.str() << "\n";
    return exit_code::kError;
  } catch (const std::exception& e) {
    std::cerr << "cdcsync: " << e.what() << "\n";
    return exit_code::kError;
  }
}
