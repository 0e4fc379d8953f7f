// cdcsync run --config FILE: the daemon.
#include <spdlog/spdlog.h>

#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config.h"
#include "daemon/exit_codes.h"
#include "daemon/runner.h"
#include "daemon/systemd.h"

namespace cdcsync::commands {

void add_run(CLI::App& app, Registry& registry) {
  auto* run = app.add_subcommand("run", "Run the sync daemon until SIGTERM");
  auto file = std::make_shared<std::string>();
  run->add_option("--config", *file, "TOML config file (see `cdcsync config help`)")->required();
  registry.add(run, [file](const std::atomic<bool>& stop) {
    const config::Config cfg = config::load_config(*file);
    spdlog::set_level(static_cast<spdlog::level::level_enum>(static_cast<int>(cfg.log.level)));
    SystemdNotifier systemd;
    PipelineStatus status;
    RunnerHooks hooks;
    hooks.state_changed = [&](RunnerState s) {
      if (s == RunnerState::Streaming || s == RunnerState::Standby) systemd.ready();
      systemd.status(std::string(name_of(s)));
    };
    hooks.heartbeat = [&] { systemd.watchdog(); };
    Runner runner{cfg, status, hooks};
    spdlog::info("pipeline {}: {} table(s), source slot {}, publication {}", cfg.pipeline, cfg.tables.size(),
                 cfg.source.slot, cfg.source.publication);
    const int code = runner.run(stop);
    systemd.stopping();
    return code;
  });
}

}  // namespace cdcsync::commands
