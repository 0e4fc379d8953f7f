// cdcsync slot status|create|drop --config FILE: the pipeline's logical replication slot on the source.
#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "decoders/replication_stream.h"

namespace cdcsync::commands {
namespace {

struct SlotOptions {
  std::string config;
  bool yes = false;
};

int status(const config::Config& cfg) {
  PgConn source = pg_connect(source_conninfo(cfg), "the source");
  PgResult res = pg_exec_params(
      source.get(),
      "SELECT plugin, temporary::text, active::text, coalesce(active_pid::text, '-'), "
      "coalesce(confirmed_flush_lsn::text, '-'), coalesce(restart_lsn::text, '-'), "
      "coalesce((pg_current_wal_lsn() - restart_lsn)::bigint::text, '-'), "
      "coalesce((pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text, '-'), coalesce(wal_status, '-'), "
      "coalesce(safe_wal_size::text, 'unlimited'), pg_current_wal_lsn()::text "
      "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
      {cfg.source.slot}, "reading slot " + cfg.source.slot);
  if (PQntuples(res.get()) == 0) {
    std::cerr << "cdcsync: slot status: slot " << cfg.source.slot
              << " does not exist on the source (create it with `cdcsync slot create`, or let `cdcsync run` "
                 "create it "
                 "with source.create_slot = true)\n";
    return exit_code::kError;
  }
  auto v = [&](int c) { return std::string(PQgetvalue(res.get(), 0, c)); };
  std::cout << "slot " << cfg.source.slot << " (" << v(0) << (v(1) == "true" ? ", temporary" : "") << ")\n"
            << "  active               " << v(2) << (v(2) == "true" ? " (pid " + v(3) + ")" : "") << "\n"
            << "  confirmed_flush_lsn  " << v(4) << "\n"
            << "  restart_lsn          " << v(5) << "\n"
            << "  current WAL          " << v(10) << "\n"
            << "  retained WAL bytes   " << v(6) << " (current WAL - restart_lsn)\n"
            << "  unconfirmed bytes    " << v(7) << " (current WAL - confirmed_flush_lsn)\n"
            << "  wal_status           " << v(8) << "\n"
            << "  safe_wal_size        " << v(9) << "\n";
  return exit_code::kOk;
}

int create(const config::Config& cfg) {
  ReplicationStream repl{source_conninfo(cfg)};
  if (repl.slot_state(cfg.source.slot)) {
    std::cerr << "cdcsync: slot create: slot " << cfg.source.slot << " already exists on the source\n";
    return exit_code::kError;
  }
  const auto created = repl.create_slot(cfg.source.slot, false, /*export_snapshot=*/false, false);
  std::cout << "created slot " << created.name << " at " << created.consistent_point.str()
            << " (no snapshot: rows written before it are not copied; `cdcsync resync` copies a table)\n";
  return exit_code::kOk;
}

int drop(const config::Config& cfg, bool yes) {
  ReplicationStream repl{source_conninfo(cfg)};
  const auto slot = repl.slot_state(cfg.source.slot);
  if (!slot) {
    std::cerr << "cdcsync: slot drop: slot " << cfg.source.slot << " does not exist on the source\n";
    return exit_code::kError;
  }
  if (slot->active) {
    std::cerr << "cdcsync: slot drop: slot " << cfg.source.slot << " is active (pid " << slot->active_pid
              << "): stop the daemon that streams from it first\n";
    return exit_code::kError;
  }
  std::cout << "would drop slot " << cfg.source.slot << " (confirmed_flush_lsn "
            << slot->confirmed_flush_lsn.str() << ", restart_lsn " << slot->restart_lsn.str() << ")\n"
            << "  the source then frees the WAL it retains; changes not yet applied are lost to cdcsync, and "
               "`cdcsync run` stops with exit 3 (slot missing) until the pipeline is set up again\n";
  if (!yes) {
    std::cout << "nothing changed: add --yes to do it\n";
    return exit_code::kUsage;
  }
  repl.drop_slot(cfg.source.slot);
  std::cout << "dropped slot " << cfg.source.slot << "\n";
  return exit_code::kOk;
}

}  // namespace

void add_slot(CLI::App& app, Registry& registry) {
  auto* cmd =
      app.add_subcommand("slot", "The pipeline's replication slot on the source: status, create, drop");
  cmd->require_subcommand(1);
  auto o = std::make_shared<SlotOptions>();
  auto* status_cmd = cmd->add_subcommand(
      "status",
      "Confirmed and restart LSN, retained WAL bytes, wal_status, safe_wal_size, active pid; exit 1 when "
      "the slot is missing");
  status_cmd->add_option("--config", o->config, "TOML config file")->required();

  auto* create_cmd =
      cmd->add_subcommand("create", "Create the slot (pgoutput, no snapshot); exit 1 when it exists");
  create_cmd->add_option("--config", o->config, "TOML config file")->required();

  auto* drop_cmd =
      cmd->add_subcommand("drop",
                          "Drop the slot (refused while it is active; needs --yes, without it prints what "
                          "would happen and exits 2)");
  drop_cmd->add_option("--config", o->config, "TOML config file")->required();
  drop_cmd->add_flag("--yes", o->yes, "Do it");
  // The registry runs the chosen top-level subcommand: dispatch to the chosen verb here.
  registry.add(cmd, [=](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "slot", [&] {
      if (status_cmd->parsed()) return status(cfg);
      if (create_cmd->parsed()) return create(cfg);
      return drop(cfg, o->yes);
    });
  });
}

}  // namespace cdcsync::commands
