// cdcsync checkpoint show|set|reset --config FILE: the pipeline's positions side by side (Redis checkpoint,
// lease, target progress row, slot), and the operator's two destructive edits of the Redis mirror.
#include <iostream>
#include <memory>

#include "checkpoints/redis_store.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/verify.h"
#include "decoders/replication_stream.h"

namespace cdcsync::commands {
namespace {

struct CheckpointOptions {
  std::string config;
  std::string lsn;
  bool yes = false;
};

RedisStoreOptions store_options(const config::Config& cfg) {
  RedisStoreOptions o;
  o.connection.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    o.connection.url.password = config::read_secret(cfg.checkpoint.password_file);
  o.pipeline = cfg.pipeline;
  return o;
}

// Prints every position it can read; returns the number of servers it could not read.
int show(const config::Config& cfg) {
  int failures = 0;
  std::cout << "pipeline " << cfg.pipeline << "\n";
  try {
    RedisCheckpointStore store{store_options(cfg)};
    const auto ckpt = store.load();
    std::cout << "  redis checkpoint  " << store.checkpoint_key() << ": ";
    if (ckpt) {
      std::cout << ckpt->lsn.str() << " (unix_ms " << ckpt->unix_ms << ", owner " << ckpt->owner << ")\n";
    } else {
      std::cout << "(none)\n";
    }
    const auto holder = store.lease_holder();
    std::cout << "  lease             " << store.lease_key() << ": " << holder.value_or("(free)") << "\n";
  } catch (const std::exception& e) {
    ++failures;
    std::cout << "  redis             unreadable: " << e.what() << "\n";
  }
  try {
    PgConn target = pg_connect(target_conninfo(cfg), "the target");
    const QualifiedName progress{cfg.target.progress_table.schema, cfg.target.progress_table.name};
    const std::string sql =
        "SELECT end_lsn::text, acked_lsn::text, xid::text, coalesce(commit_time::text, ''), "
        "coalesce(applied_by, ''), updated_at::text FROM " +
        progress.quoted() + " WHERE pipeline = $1";
    PgResult res = pg_exec_params(target.get(), sql, {cfg.pipeline}, "reading " + progress.str());
    std::cout << "  target progress   " << progress.str() << ": ";
    if (PQntuples(res.get()) == 0) {
      std::cout << "(no row)\n";
    } else {
      auto v = [&](int c) { return std::string(PQgetvalue(res.get(), 0, c)); };
      std::cout << "end_lsn " << v(0) << ", acked_lsn " << v(1) << ", xid " << v(2) << ", commit_time "
                << (v(3).empty() ? "(none)" : v(3)) << ", applied_by " << v(4) << ", updated_at " << v(5)
                << "\n";
    }
  } catch (const std::exception& e) {
    ++failures;
    std::cout << "  target            unreadable: " << e.what() << "\n";
  }
  try {
    ReplicationStream repl{source_conninfo(cfg)};
    const auto slot = repl.slot_state(cfg.source.slot);
    std::cout << "  slot              " << cfg.source.slot << ": ";
    if (slot) {
      std::cout << "confirmed_flush_lsn " << slot->confirmed_flush_lsn.str() << ", restart_lsn "
                << slot->restart_lsn.str() << ", " << (slot->active ? "active" : "inactive")
                << ", wal_status " << (slot->wal_status.empty() ? "(none)" : slot->wal_status) << "\n";
    } else {
      std::cout << "(missing)\n";
    }
  } catch (const std::exception& e) {
    ++failures;
    std::cout << "  source            unreadable: " << e.what() << "\n";
  }
  return failures;
}

// Destructive edits refuse while a daemon holds the lease (it would move the checkpoint again) and, without
// --yes, only say what they would do.
int edit(const config::Config& cfg, const CheckpointOptions& o, std::optional<Lsn> to) {
  RedisCheckpointStore store{store_options(cfg)};
  const auto current = store.load();
  const auto holder = store.lease_holder();
  const std::string now = current ? current->lsn.str() : std::string("(none)");
  if (to) {
    std::cout
        << "would set " << store.checkpoint_key() << " from " << now << " to " << to->str() << "\n"
        << "  at the next start the daemon compares it with the target's progress row: ahead of the target "
           "it stops (exit 3), behind it is repaired from the target\n";
  } else {
    std::cout << "would delete " << store.checkpoint_key() << " (now " << now << ")\n"
              << "  at the next start the daemon rewrites it from the target's progress row\n";
  }
  if (holder) {
    std::cerr << "cdcsync: checkpoint: the lease " << store.lease_key() << " is held by " << *holder
              << ": stop that daemon first\n";
    return exit_code::kError;
  }
  if (!o.yes) {
    std::cout << "nothing changed: add --yes to do it\n";
    return exit_code::kUsage;
  }
  if (to) {
    store.overwrite(*to, "cdcsync checkpoint set");
    std::cout << "checkpoint set to " << to->str() << "\n";
  } else {
    store.reset();
    std::cout << "checkpoint deleted\n";
  }
  return exit_code::kOk;
}

}  // namespace

void add_checkpoint(CLI::App& app, Registry& registry) {
  auto* cmd =
      app.add_subcommand("checkpoint",
                         "The pipeline's positions side by side (show), and operator edits of the Redis "
                         "checkpoint mirror (set, reset; both need --yes)");
  cmd->require_subcommand(1);
  auto o = std::make_shared<CheckpointOptions>();

  auto* show_cmd =
      cmd->add_subcommand("show",
                          "Print the Redis checkpoint, the lease holder, the target's progress row and "
                          "the slot's confirmed/restart LSN; exit 7 when a server cannot be read");
  show_cmd->add_option("--config", o->config, "TOML config file")->required();
  const Action show_action = [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return show(cfg) == 0 ? exit_code::kOk : exit_code::kUnavailable;
  };

  auto* set_cmd = cmd->add_subcommand(
      "set",
      "Overwrite the Redis checkpoint with --lsn (refused while a daemon holds the lease; needs --yes)");
  set_cmd->add_option("--config", o->config, "TOML config file")->required();
  set_cmd->add_option("--lsn", o->lsn, "The new checkpoint, e.g. 16/B374D848")->required();
  set_cmd->add_flag("--yes", o->yes, "Do it (without: print what would happen and exit 2)");
  const Action set_action = [o](const std::atomic<bool>&) {
    const auto lsn = Lsn::parse(o->lsn);
    if (!lsn) {
      std::cerr << "cdcsync: checkpoint set: --lsn \"" << o->lsn
                << "\" is not an LSN (expected two hex numbers, like 16/B374D848)\n";
      return exit_code::kUsage;
    }
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "checkpoint set", [&] { return edit(cfg, *o, *lsn); });
  };

  auto* reset_cmd = cmd->add_subcommand(
      "reset",
      "Delete the Redis checkpoint; the daemon rewrites it from the target (refused while a daemon holds "
      "the lease; needs --yes)");
  reset_cmd->add_option("--config", o->config, "TOML config file")->required();
  reset_cmd->add_flag("--yes", o->yes, "Do it (without: print what would happen and exit 2)");
  const Action reset_action = [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "checkpoint reset", [&] { return edit(cfg, *o, std::nullopt); });
  };
  // The registry runs the chosen top-level subcommand: dispatch to the chosen verb here.
  registry.add(cmd, [=](const std::atomic<bool>& stop) {
    if (show_cmd->parsed()) return show_action(stop);
    if (set_cmd->parsed()) return set_action(stop);
    return reset_action(stop);
  });
}

}  // namespace cdcsync::commands
