// The subcommand registry: which chosen subcommand runs, and the list of every subcommand.
#include "daemon/commands/commands.h"

#include <libpq-fe.h>

#include <iostream>

#include "checkpoints/checkpoint_store.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "decoders/pg.h"
#include "sinks/sink.h"

namespace cdcsync::commands {
namespace {

// A failed or lost connection (libpq's own failures carry no SQLSTATE; pg_connect says 08000), or a server
// shutting down or starting (57P01-57P03).
bool connection_failure(const PgError& e) {
  const std::string& s = e.sqlstate();
  return s.empty() || s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03";
}

int could_not_check(const std::string& command, const std::string& why) {
  std::cerr << "cdcsync: " << command << ": could not check: " << why << "\n";
  return exit_code::kUnavailable;
}

int guarded(const std::string& command, const std::function<bool()>& any_not_answering,
            const std::function<int()>& work) {
  try {
    return work();
  } catch (const CheckpointUnavailable& e) {
    return could_not_check(command, e.what());
  } catch (const TransientError& e) {  // a store wrapping an unavailable server (the dead-letter stream)
    return could_not_check(command, e.what());
  } catch (const PgError& e) {
    if (connection_failure(e) && any_not_answering()) return could_not_check(command, e.what());
    throw;
  }
}

}  // namespace

bool not_answering(const std::string& conninfo) {
  // connect_timeout before the conninfo (which may be a URI: expand_dbname), so its own wins; sslmode after
  // it, so a certificate that fails verification (a finding) does not read as a server that is not there. A
  // ping ends at the server's first answer: it sends no password.
  const char* keys[] = {"connect_timeout", "dbname", "sslmode", nullptr};
  const char* values[] = {"10", conninfo.c_str(), "prefer", nullptr};
  const PGPing ping = PQpingParams(keys, values, /*expand_dbname=*/1);
  return ping == PQPING_NO_RESPONSE || ping == PQPING_REJECT;
}

int against_servers(const config::Config& cfg, const std::string& command, const std::function<int()>& work) {
  return guarded(
      command,
      [&] {
        return not_answering(source_conninfo(cfg)) ||
               (cfg.target.enabled && not_answering(target_conninfo(cfg)));
      },
      work);
}

int against_server(const std::string& conninfo, const std::string& command,
                   const std::function<int()>& work) {
  return guarded(
      command, [&] { return not_answering(conninfo); }, work);
}

int Registry::run(CLI::App& app, const std::atomic<bool>& stop, const std::function<void(bool)>& set_quiet,
                  const std::function<void(bool)>& set_reloadable) {
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
  if (set_reloadable) set_reloadable(reloadable_.contains(chosen));
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
  add_status(app, registry);
}

}  // namespace cdcsync::commands
