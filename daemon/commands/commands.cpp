#include "daemon/commands/commands.h"

#include "daemon/exit_codes.h"

namespace cdcsync::commands {

int Registry::run(CLI::App& app, const std::atomic<bool>& stop, const std::function<void(bool)>& set_quiet) {
  for (CLI::App* sub : app.get_subcommands()) {
    const auto it = actions_.find(sub);
    if (it == actions_.end()) continue;
    set_quiet(quiet_.contains(sub));
    return it->second(stop);
  }
  return exit_code::kUsage;
}

void add_all(CLI::App& app, Registry& registry) {
  add_run(app, registry);
  add_config(app, registry);
  add_check(app, registry);
  add_target_ddl(app, registry);
  add_tail(app, registry);
  add_verify(app, registry);
  add_checkpoint(app, registry);
  add_slot(app, registry);
  add_resync(app, registry);
}

}  // namespace cdcsync::commands
