// cdcsync check --config FILE: validates the file and the live servers; prints each problem with its fix.
#include <iostream>
#include <memory>

#include "checkpoints/redis_store.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/server_check.h"

namespace cdcsync::commands {

void add_check(CLI::App& app, Registry& registry) {
  auto* check = app.add_subcommand(
      "check",
      "Validate the config and the live servers (publication, replica identity, target tables, "
      "privileges, Redis); print each problem with its fix; exit 1 if any, 7 if a server did not answer");
  auto file = std::make_shared<std::string>();
  check->add_option("--config", *file, "TOML config file")->required();
  registry.add(check, [file](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(*file);
    std::cout << "config " << *file << ": ok (" << cfg.tables.size() << " table(s))\n";
    const Mapping mapping = mapping_from_config(cfg);
    // A server that does not answer is not a finding about it: check could not look (exit 7, unless it found
    // a problem elsewhere). One that answers but refuses the login is a finding (exit 1).
    int problems = 0;
    int unreachable = 0;
    auto report = [&](const std::string& where, const std::string& subject, const std::string& problem,
                      const std::string& fix) {
      const bool silent =
          subject == "connection" && ((where == "source" && not_answering(source_conninfo(cfg))) ||
                                      (where == "target" && not_answering(target_conninfo(cfg))));
      ++(silent ? unreachable : problems);
      std::cout << (silent ? "COULD NOT CHECK " : "PROBLEM ") << where << ": " << subject << ": " << problem
                << "\n    fix: " << fix << "\n";
    };

    const auto listener = [&](const std::string& where) {
      return check::Listener{
          [&report, where](const std::string& subject, const std::string& problem, const std::string& fix) {
            report(where, subject, problem, fix);
          },
          [where](const std::string& line) { std::cout << where << ": " << line << "\n"; }};
    };
    SourceTypes types;
    check::check_source_server(cfg, mapping, types, listener("source"));
    check::check_target_server(cfg, mapping, types, listener("target"));

    try {
      RedisStoreOptions o;
      o.connection.url = RedisUrl::parse(cfg.checkpoint.redis);
      if (cfg.checkpoint.password_file.configured())
        o.connection.url.password = config::read_secret(cfg.checkpoint.password_file);
      o.pipeline = cfg.pipeline;
      RedisCheckpointStore store{o};
      const auto ckpt = store.load();
      const auto holder = store.lease_holder();
      std::cout << "checkpoint: " << (ckpt ? ckpt->lsn.str() : std::string("(none yet)"))
                << ", lease: " << holder.value_or("(free)") << "\n";
    } catch (const CheckpointUnavailable& e) {
      ++unreachable;
      std::cout << "COULD NOT CHECK checkpoint: redis: " << e.what()
                << "\n    fix: is Redis up and checkpoint.redis right?\n";
    } catch (const std::exception& e) {
      report("checkpoint", "redis", e.what(), "check checkpoint.redis and checkpoint.password_file");
    }

    if (problems > 0) {
      std::cout << problems << " problem(s)" << (unreachable > 0 ? ", and a server could not be reached" : "")
                << "\n";
      return exit_code::kError;
    }
    if (unreachable > 0) {
      std::cout << "could not check everything: " << unreachable << " server(s) did not answer\n";
      return exit_code::kUnavailable;
    }
    std::cout << "all checks passed\n";
    return exit_code::kOk;
  });
}

void add_target_ddl(CLI::App& app, Registry& registry) {
  auto* ddl =
      app.add_subcommand("target-ddl",
                         "Print the idempotent DDL the order DB needs for the mapping (types read from the "
                         "source): cdcsync target-ddl --config F | psql ...");
  auto file = std::make_shared<std::string>();
  ddl->add_option("--config", *file, "TOML config file")->required();
  registry.add(ddl, [file](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(*file);
    return against_servers(cfg, "target-ddl", [&] {
      std::cout << check::target_ddl_for(cfg);
      return exit_code::kOk;
    });
  });
}

}  // namespace cdcsync::commands
