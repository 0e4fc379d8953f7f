// cdcsync audit verify-archive --config FILE [--json]: proves the event archive was neither altered nor cut
// in the middle (daemon/tools/archive_audit.h).
#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/archive_audit.h"
#include "sinks/redis_archive_sink.h"

namespace cdcsync::commands {
namespace {

struct AuditArchiveOptions {
  std::string config;
  bool json = false;
};

int run_verify_archive(const config::Config& cfg, const AuditArchiveOptions& o) {
  ArchiveConnectionOptions co;
  co.url = RedisUrl::parse(cfg.checkpoint.redis);
  if (cfg.checkpoint.password_file.configured())
    co.url.password = config::read_secret(cfg.checkpoint.password_file);
  co.pipeline = cfg.pipeline;
  RedisArchive archive(co);
  const audit::ArchiveVerdict v = audit::verify_archive(archive);
  std::cout << (o.json ? audit::render_json(v) : audit::render_text(v));
  return v.ok() ? exit_code::kOk : exit_code::kError;
}

}  // namespace

void add_audit_archive(CLI::App& app, Registry& registry) {
  CLI::App* audit = subcommand(app, "audit", "Audit reports and proofs");
  auto* cmd = audit->add_subcommand(
      "verify-archive",
      "Prove the event archive (Redis stream cdcsync:{pipeline}:archive) was neither altered nor cut: "
      "recompute every entry's SHA-256 hash, check each prev is the previous entry's hash, ids increase, "
      "transactions are whole, and the head key matches the last entry. Reports the first broken entry by id "
      "and commit LSN. Exit 0 proven, 1 broken, 7 Redis unreachable");
  auto o = std::make_shared<AuditArchiveOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_flag("--json", o->json, "Print a JSON report instead of text");
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "audit verify-archive", [&] { return run_verify_archive(cfg, *o); });
  });
}

}  // namespace cdcsync::commands
