// cdcsync run --config FILE: the daemon. Wires the runner to its observers: the probe (every metric, and
// /metrics, /healthz, /readyz on [metrics] listen) and systemd (READY=1, STATUS=, WATCHDOG=1).
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include "checkpoints/redis_client.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/ops/logging.h"
#include "daemon/ops/metrics/http_server.h"
#include "daemon/ops/probe.h"
#include "daemon/ops/systemd.h"

namespace cdcsync::commands {
namespace {

std::set<std::string, std::less<>> target_tables(const config::Config& cfg) {
  std::set<std::string, std::less<>> out;
  for (const auto& t : cfg.tables) out.insert(t.target.str());
  return out;
}

// The hash `cdcsync verify` records (daemon/commands/verify.cpp): mismatched_rows and unix_ms of the last
// run, and "table:<target>" per table compared. nullopt before any verify. Per-table values are taken only
// for this configuration's tables, so the metric's label values stay a bounded set.
std::optional<VerifyResult> verify_result_from(const RedisValue& hash,
                                               const std::set<std::string, std::less<>>& tables) {
  if (hash.type != RedisValue::Type::Array) return std::nullopt;
  std::optional<VerifyResult> r;
  VerifyResult v;
  for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
    const std::string_view field = hash.elements[i].str;
    const std::string& value = hash.elements[i + 1].str;
    if (field == "mismatched_rows") {
      v.mismatched_rows = std::stoll(value);
      r.emplace();
    } else if (field == "unix_ms") {
      v.unix_ms = std::stoll(value);
    } else if (field.starts_with("table:") && tables.contains(field.substr(6))) {
      v.tables.emplace_back(std::string(field.substr(6)), std::stoll(value));
    }
  }
  if (r) *r = std::move(v);
  return r;
}

using namespace std::chrono_literals;

// How long a daemon under systemd keeps /metrics up after a fatal stop (longer than a usual scrape interval).
constexpr std::chrono::seconds kFatalLinger{20};

// systemd's STATUS= line: what `systemctl status` shows. No secrets, no row values.
std::string status_line(const Probe& probe, const PipelineStatus& status) {
  const auto lag_bytes = probe.replication_lag_bytes();
  return fmt::format(
      "{}; confirmed {}; lag {} bytes, {:.0f} s", name_of(probe.state()), status.confirmed_lsn.load().str(),
      lag_bytes ? std::to_string(*lag_bytes) : std::string("unknown"), probe.replication_lag_seconds());
}

int run_daemon(const std::string& file, const std::atomic<bool>& stop) {
  const config::Config cfg = config::load_config(file);
  logging::set_format(cfg.log.format);
  logging::set_level(config::name_of(cfg.log.level));

  PipelineStatus status;
  ProbeOptions probe_options;
  probe_options.pipeline = cfg.pipeline;
  probe_options.version = CDCSYNC_VERSION;
  probe_options.slot = cfg.source.slot;
  auto probe = std::make_shared<Probe>(probe_options, status);

  metrics::MetricsServerOptions server_options;
  server_options.listen = cfg.metrics.listen;
  server_options.allow_remote = cfg.metrics.allow_remote;
  metrics::MetricsServer server{
      server_options, {probe}, [probe] { return probe->liveness(); }, [probe] { return probe->readiness(); }};
  server.start();
  spdlog::info("metrics on http://{}:{}/metrics", server.address().host, server.port());

  SystemdNotifier systemd;
  // The hooks' heartbeat is the probe's beat: the health check (/healthz) the watchdog is fed from.
  RunnerHooks hooks = probe->hooks([&](RunnerState s) {
    if (s == RunnerState::Streaming || s == RunnerState::Standby) systemd.ready();
    systemd.status(status_line(*probe, status));
  });
  systemd.start([probe] { return probe->liveness(); },
                [probe, &status] { return status_line(*probe, status); });
  Runner runner{cfg, status, hooks};
  probe->set_lease_view([&runner] { return runner.lease_held(); });
  // cdcsync_verify_mismatched_rows: the last result `cdcsync verify` recorded next to the checkpoint.
  auto verify_redis = std::make_shared<RedisClient>(redis_options(cfg));
  probe->set_verify_reader([verify_redis, key = "cdcsync:{" + cfg.pipeline + "}:verify",
                            tables = target_tables(cfg)]() -> std::optional<VerifyResult> {
    return verify_result_from(verify_redis->command("HGETALL " + key, {"HGETALL", key}), tables);
  });
  probe->start_polling(source_conninfo(cfg));
  spdlog::info("pipeline {}: {} table(s), source slot {}, publication {}", cfg.pipeline, cfg.tables.size(),
               cfg.source.slot, cfg.source.publication);
  const int code = runner.run(stop);
  systemd.stop();
  systemd.stopping();
  if (systemd.enabled() && (code == exit_code::kDataLossRisk || code == exit_code::kApplyFailed ||
                            code == exit_code::kDecodeError)) {
    // systemd will not restart us (RestartPreventExitStatus=): stay scrapeable a little longer so
    // Prometheus records cdcsync_fatal{reason} before the target goes down.
    spdlog::info("serving /metrics for {} s more so the fatal reason is scraped", kFatalLinger.count());
    const auto until = std::chrono::steady_clock::now() + kFatalLinger;
    while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100ms);
  }
  probe->stop_polling();
  server.stop();
  probe->set_lease_view({});
  return code;
}

}  // namespace

void add_run(CLI::App& app, Registry& registry) {
  auto* run = app.add_subcommand("run", "Run the sync daemon until SIGTERM");
  auto file = std::make_shared<std::string>();
  run->add_option("--config", *file, "TOML config file (see `cdcsync config help`)")->required();
  registry.add(run, [file](const std::atomic<bool>& stop) { return run_daemon(*file, stop); });
}

}  // namespace cdcsync::commands
