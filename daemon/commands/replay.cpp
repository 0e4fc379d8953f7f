// cdcsync replay --config FILE --from-lsn LSN [--to-lsn LSN] [--table T] [--dry-run] [--json]: re-applies
// archived changes to the order DB through the LSN guard (daemon/tools/replay.h).
#include <iostream>
#include <memory>
#include <optional>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/replay.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync::commands {
namespace {

struct ReplayOptions {
  std::string config;
  std::string from;
  std::string to;
  std::string table;
  bool dry_run = false;
  bool json = false;
};

std::unique_ptr<RedisArchive> open_archive(const config::Config& cfg) {
  ArchiveConnectionOptions o;
  o.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    o.url.password = config::read_secret(cfg.checkpoint.password_file);
  o.pipeline = cfg.pipeline;
  return std::make_unique<RedisArchive>(std::move(o));
}

int replay(const config::Config& cfg, const ReplayOptions& o) {
  if (!cfg.archive.enabled) {
    std::cerr << "cdcsync: replay: the event archive is disabled in " << o.config
              << " (archive.enabled = false): there is nothing to replay from\n";
    return exit_code::kError;
  }
  replay::Request request;
  const auto from = Lsn::parse(o.from);
  if (!from) {
    std::cerr << "cdcsync: replay: --from-lsn " << o.from << ": not an LSN like 16/B374D848\n";
    return exit_code::kUsage;
  }
  request.from = *from;
  if (!o.to.empty()) {
    request.to = Lsn::parse(o.to);
    if (!request.to || *request.to < *from) {
      std::cerr << "cdcsync: replay: --to-lsn " << o.to << ": not an LSN at or after --from-lsn\n";
      return exit_code::kUsage;
    }
  }
  if (!o.table.empty()) {
    request.only = replay::table_named(mapping_from_config(cfg), o.table);
    if (!request.only) {
      std::cerr << "cdcsync: replay: --table " << o.table << ": not a mapped source or target table of "
                << o.config << "\n";
      return exit_code::kUsage;
    }
  }
  request.dry_run = o.dry_run;
  request.note = [](const std::string& note) { std::cerr << "cdcsync: replay: note: " << note << "\n"; };

  auto archive = open_archive(cfg);
  const replay::Result result = replay::run(cfg, *archive, request);
  if (o.dry_run) {
    std::cout << (o.json ? replay::render_preview_json(result) : replay::render_preview_text(result));
  } else {
    std::cout << (o.json ? replay::render_json(result) : replay::render_text(result, *from));
  }
  return exit_code::kOk;
}

}  // namespace

void add_replay(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand(
      "replay",
      "Re-apply archived changes (the Redis stream cdcsync:{pipeline}:archive, archive.enabled) to the order "
      "DB "
      "through the LSN guard: rows already newer in the target are left alone, replaying twice changes "
      "nothing. "
      "After an order DB restored from a dump, replay --from-lsn <the dump's progress LSN> with the daemon "
      "stopped: the pipeline's progress then moves to the last replayed transaction and the daemon starts "
      "again. "
      "The hash chain over the range is checked first. Exit 0 done, 1 archive disabled/empty/trimmed/broken, "
      "2 usage, 7 a server unreachable");
  auto o = std::make_shared<ReplayOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_option(
         "--from-lsn", o->from,
         "Replay transactions committed at or after this LSN (e.g. the end_lsn of ref.cdc_progress in a "
         "restored dump)")
      ->required();
  cmd->add_option("--to-lsn", o->to, "Replay transactions committed at or before this LSN (default: all)");
  cmd->add_option(
      "--table", o->table,
      "Only this mapped table (source or target name, schema.table); the progress row is not moved");
  cmd->add_flag("--dry-run", o->dry_run,
                "Print, per target table, each row the replay would change with its current value in the "
                "target and the new one; write nothing");
  cmd->add_flag("--json", o->json, "Print a JSON report instead of text");
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    try {
      return against_servers(cfg, "replay", [&] { return replay(cfg, *o); });
    } catch (const replay::ReplayError& e) {
      std::cerr << "cdcsync: replay: " << e.what() << "\n";
      return exit_code::kError;
    } catch (const ArchiveFormatError& e) {
      std::cerr << "cdcsync: replay: " << e.what() << "\n";
      return exit_code::kError;
    }
  });
}

}  // namespace cdcsync::commands
