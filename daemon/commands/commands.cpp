// The subcommand registry: which chosen subcommand runs, and the list of every subcommand.
#include "daemon/commands/commands.h"

#include "daemon/core/exit_codes.h"

namespace cdcsync::commands {

int Registry::run(CLI::App& app, const std::atomic<bool>& stop, const std::function<void(bool)>& set_quiet) {
  // The deepest chosen subcommand with an action wins (`cdcsync config show` runs "show", not "config").
  CLI::App* chosen = nullptr;
  for (CLI::App* level = &app;;) {
    const auto subs = level->get_subcommands();
    if (subs.empty()) break;
    level = subs.front();
    if (actions_.contains(level)) chosen = level;
  }
  if (chosen == nullptr) return exit_code::kUsage;
  set_quiet(quiet_.contains(chosen));
  return actions_.at(chosen)(stop);
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
  add_dlq(app, registry);
  add_replay(app, registry);
  add_audit_archive(app, registry);
  add_audit(app, registry);
}

}  // namespace cdcsync::commands
