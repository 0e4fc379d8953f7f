// cdcsync config help | show --config FILE
#include <iostream>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"

namespace cdcsync::commands {

void add_config(CLI::App& app, Registry& registry) {
  auto* config = app.add_subcommand("config", "Config file reference, and the effective config without secrets");
  config->require_subcommand(1);
  auto* help = config->add_subcommand("help", "Print every config key with its type, unit, default, bounds and help");
  registry.add(help, [](const std::atomic<bool>&) {
    std::cout << config::render_config_help();
    return exit_code::kOk;
  });
  auto* help_alias = app.add_subcommand("config-help", "Same as `config help`");
  registry.add(help_alias, [](const std::atomic<bool>&) {
    std::cout << config::render_config_help();
    return exit_code::kOk;
  });
  auto* show = config->add_subcommand("show", "Validate a config file and print it as loaded (secrets never shown)");
  auto file = std::make_shared<std::string>();
  show->add_option("--config", *file, "TOML config file")->required();
  registry.add(show, [file](const std::atomic<bool>&) {
    std::cout << config::render_effective_config(config::load_config(*file));
    return exit_code::kOk;
  });
}

}  // namespace cdcsync::commands
