// cdcsync verify --config FILE [--table T] [--repair] [--json]: compares the order DB's reference tables
// with the mapped (and transformed) projection of the customer DB at a known source position; see
// daemon/tools/verify.h for the buckets, the hashes and the snapshot point, daemon/tools/verifier.h for the
// run.
#include <chrono>
#include <iostream>
#include <memory>

#include "checkpoints/redis_client.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/verifier.h"

namespace cdcsync::commands {
namespace {

using verify::Report;

struct VerifyOptions {
  std::string config;
  std::string table;
  bool repair = false;
  bool json = false;
  long long wait_ms = 60000;
  long long rows_per_bucket = 1000;
  long long max_keys = 1000;
};

// The result as hash cdcsync:{<pipeline>}:verify, for the daemon's probe: mismatched_rows, unix_ms,
// snapshot_lsn and status of this run (cdcsync_verify_mismatched_rows), and "table:<target>" for each table
// it compared (cdcsync_verify_table_mismatched_rows). A run over every table replaces the hash; a --table
// run updates its table and keeps the others' last counts. A failure here is a warning: the comparison
// stands.
void record_result(const config::Config& cfg, const Report& report, bool every_table) {
  try {
    RedisClient redis{redis_options(cfg)};
    const std::string key = "cdcsync:{" + cfg.pipeline + "}:verify";
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::size_t mismatched = report.mismatched();
    std::vector<std::string> fields{
        "mismatched_rows", std::to_string(mismatched), "unix_ms", std::to_string(now),
        "snapshot_lsn",    report.snapshot_lsn.str(),  "status",  mismatched == 0 ? "equal" : "diverged"};
    for (const auto& t : report.tables) {
      fields.push_back("table:" + t.table->target.str());
      fields.push_back(std::to_string(t.diff.size()));
    }
    std::vector<std::string_view> hset{"HSET", key};
    hset.insert(hset.end(), fields.begin(), fields.end());
    redis.command("MULTI", {"MULTI"});
    if (every_table) redis.command("DEL " + key, {"DEL", key});
    redis.command("HSET " + key, hset);
    const RedisValue done = redis.command("EXEC", {"EXEC"});
    if (done.type != RedisValue::Type::Array) throw std::runtime_error("EXEC on " + key + " was aborted");
  } catch (const std::exception& e) {
    std::cerr << "cdcsync: warning: verify result not recorded in Redis: " << e.what() << "\n";
  }
}

// The comparison (and the repair), printed; exit 0 equal, 1 diverged, 7 the target behind the snapshot.
int run_verify(const config::Config& cfg, const VerifyOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  verify::Verifier v{cfg,
                     {.table = o.table,
                      .wait = std::chrono::milliseconds(o.wait_ms),
                      .rows_per_bucket = static_cast<std::uint64_t>(o.rows_per_bucket)}};
  try {
    Report report = v.run();
    std::optional<Report> before;
    if (o.repair && report.mismatched() > 0) {
      if (!o.json) std::cout << verify::render_text(report, 0) << verify::render_details(report, o.max_keys);
      const std::vector<verify::RecopyResult> repaired = v.repair(report);
      if (!o.json) {
        for (std::size_t i = 0; i < repaired.size(); ++i) {
          if (report.tables[i].diff.size() == 0) continue;
          std::cout << "repair " << report.tables[i].table->target.str() << ": " << repaired[i].upserted
                    << " row(s) written, " << repaired[i].removed << " removed, " << repaired[i].skipped_gone
                    << " skipped (deleted on the source since)\n";
        }
        std::cout << "verify: checking again after the repair\n";
      }
      before = std::move(report);
      report = v.run();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (o.json) {
      std::cout << verify::render_json(report, secs, cfg.pipeline, o.max_keys, before);
    } else {
      std::cout << verify::render_text(report, secs) << verify::render_details(report, o.max_keys);
    }
    record_result(cfg, report, o.table.empty());
    return report.mismatched() == 0 ? exit_code::kOk : exit_code::kError;
  } catch (const verify::TargetBehind& e) {
    std::cerr << "cdcsync: verify: could not check: " << e.what() << "\n";
    return exit_code::kUnavailable;
  }
}

}  // namespace

void add_verify(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand("verify",
                                 "Compare the order DB's reference tables with the mapped, transformed "
                                 "projection of the customer DB at a "
                                 "known source position (hash buckets; rows travel only where buckets "
                                 "differ). Prints the keys (never other "
                                 "values) of missing, extra and different rows. Exit 0 equal, 1 diverged, 7 "
                                 "could not check (a server unreachable, or the target behind: is the daemon "
                                 "running?). Records the result in Redis hash cdcsync:{pipeline}:verify");
  auto o = std::make_shared<VerifyOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_option("--table", o->table, "Only this mapped table (source or target name, schema.table)");
  cmd->add_flag(
      "--repair", o->repair,
      "Re-copy the mismatched rows from a source snapshot through the LSN guard (newer streamed rows "
      "win), in one target transaction per table, then verify again");
  cmd->add_flag("--json", o->json, "Print a JSON report on stdout instead of the text summary");
  cmd->add_option("--wait-timeout-ms", o->wait_ms,
                  "Longest wait for the target's progress to reach the source snapshot (default 60000)")
      ->check(CLI::Range(0LL, 3600000LL));
  cmd->add_option("--rows-per-bucket", o->rows_per_bucket,
                  "About this many rows per hash bucket (default 1000)")
      ->check(CLI::Range(1LL, 100000000LL));
  cmd->add_option("--max-keys", o->max_keys, "Most keys printed per kind and table (default 1000)")
      ->check(CLI::Range(0LL, 100000000LL));
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "verify", [&] { return run_verify(cfg, *o); });
  });
}

}  // namespace cdcsync::commands
