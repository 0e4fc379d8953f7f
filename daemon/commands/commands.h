// Subcommands: one file each; each adds its CLI11 subcommand and what runs when it is chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "daemon/config/config.h"

namespace cdcsync::commands {

// Runs the chosen subcommand. `stop` becomes true on SIGINT/SIGTERM.
using Action = std::function<int(const std::atomic<bool>& stop)>;

class Registry {
 public:
  void add(CLI::App* sub, Action action) { actions_[sub] = std::move(action); }
  // `set_quiet` silences the signal log line (for commands whose stdout/stderr is data, like tail);
  // `set_reloadable` tells the signal thread that SIGHUP reloads (only `run`): for every other command it
  // stops, as a hangup does.
  int run(CLI::App& app, const std::atomic<bool>& stop, const std::function<void(bool)>& set_quiet,
          const std::function<void(bool)>& set_reloadable = {});
  void mark_quiet(CLI::App* sub) { quiet_[sub] = true; }
  void mark_reloadable(CLI::App* sub) { reloadable_[sub] = true; }
  // SIGHUPs received so far (main's signal thread counts them); `run` reloads its config on each.
  void set_reload_count(const std::atomic<std::uint64_t>* count) { reloads_ = count; }
  const std::atomic<std::uint64_t>* reload_count() const { return reloads_; }

 private:
  std::map<CLI::App*, Action> actions_;
  std::map<CLI::App*, bool> quiet_;
  std::map<CLI::App*, bool> reloadable_;
  const std::atomic<std::uint64_t>* reloads_ = nullptr;
};

void add_all(CLI::App& app, Registry& registry);

// The subcommand `name` of `parent`, added when it does not exist yet (commands with shared parents, such as
// `audit` and `audit verify-archive`, live in different files).
inline CLI::App* subcommand(CLI::App& parent, const std::string& name, const std::string& description) {
  for (CLI::App* s : parent.get_subcommands([](CLI::App*) { return true; })) {
    if (s->get_name() == name) return s;
  }
  return parent.add_subcommand(name, description);
}

// An admin command's work on the servers `cfg` names, and its exit code (daemon/core/exit_codes.h). When a
// server does not answer, the work cannot check anything: exit 7, with the reason on stderr. That is Redis
// unavailable (or a store's TransientError, a retry-later failure), or a PostgreSQL connection that failed
// while the source or the target does not answer a PQping (a server that answers but refuses the login is a
// config error: exit 1, like any other failure, which propagates). `command` names the command in the
// message.
int against_servers(const config::Config& cfg, const std::string& command, const std::function<int()>& work);
// The same for a command given one conninfo (tail).
int against_server(const std::string& conninfo, const std::string& command, const std::function<int()>& work);
// Whether the server at `conninfo` does not answer (PQping: no response, or it rejects connections now).
bool not_answering(const std::string& conninfo);

void add_run(CLI::App& app, Registry& registry);
void add_config(CLI::App& app, Registry& registry);
void add_check(CLI::App& app, Registry& registry);
void add_target_ddl(CLI::App& app, Registry& registry);
void add_tail(CLI::App& app, Registry& registry);
void add_verify(CLI::App& app, Registry& registry);
void add_checkpoint(CLI::App& app, Registry& registry);
void add_slot(CLI::App& app, Registry& registry);
void add_resync(CLI::App& app, Registry& registry);
void add_dlq(CLI::App& app, Registry& registry);
void add_replay(CLI::App& app, Registry& registry);
void add_audit_archive(CLI::App& app, Registry& registry);
void add_audit(CLI::App& app, Registry& registry);
void add_status(CLI::App& app, Registry& registry);

}  // namespace cdcsync::commands
