// cdcsync status --config FILE [--json]: the pipeline on one screen (daemon/tools/status.h). Exit 0 when
// every part could be read, 7 when a server could not (what could be read is still printed).
#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/status.h"

namespace cdcsync::commands {

void add_status(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand(
      "status",
      "The pipeline on one screen: the daemon's state and last error, the positions (slot, target, Redis) "
      "with their lag in bytes and seconds, the slot's health and WAL retained, each table's state and rows");
  struct Options {
    std::string config;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_flag("--json", o->json, "One JSON object instead of text");
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    const status::Report report = status::gather(cfg);
    std::cout << (o->json ? status::render_json(report) : status::render_text(report));
    for (const auto& u : report.unreadable) std::cerr << "cdcsync: status: could not read " << u << "\n";
    return report.unreadable.empty() ? exit_code::kOk : exit_code::kUnavailable;
  });
}

}  // namespace cdcsync::commands
