// cdcsync audit --config FILE [--json]: the data segregation compliance report (daemon/tools/audit.h); exit 1
// on any violation. `audit` is a parent command: its own subcommands (verify-archive) live in other files.
#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/audit.h"

namespace cdcsync::commands {

void add_audit(CLI::App& app, Registry& registry) {
  auto* audit =
      subcommand(app, "audit", "Compliance audit of the data segregation (see `cdcsync audit --help`)");
  audit->description(
      "Compliance audit of the data segregation: which source columns cross to which target columns, target "
      "columns and tables the mapping does not explain, what the source and target roles can actually do "
      "against the least-privilege plan (deploy/sql), whether each connection verifies its server, where "
      "each secret comes from. Exit 1 on any violation");
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  audit->add_option("--config", *file, "TOML config file");
  audit->add_flag("--json", *json, "Print the report as one JSON object");
  registry.add(audit, [audit, file, json](const std::atomic<bool>&) {
    if (file->empty()) {
      std::cerr << "cdcsync: audit: --config is required\n" << audit->help();
      return exit_code::kUsage;
    }
    const config::Config cfg = config::load_config(*file);
    return against_servers(cfg, "audit", [&] {
      const auto report = audit::run(cfg);
      std::cout << (*json ? audit::render_json(report) : audit::render_text(report)) << std::flush;
      return report.clean() ? exit_code::kOk : exit_code::kError;
    });
  });
}

}  // namespace cdcsync::commands
