// cdcsync run --config FILE: the daemon. Wires the runner to its observers: the probe (every metric, and
// /metrics, /healthz, /readyz on [metrics] listen) and systemd (READY=1, STATUS=, WATCHDOG=1).
#include <fmt/chrono.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "checkpoints/redis_client.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/config/reload.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/log_context.h"
#include "daemon/core/runner.h"
#include "daemon/ops/load_progress.h"
#include "daemon/ops/logging.h"
#include "daemon/ops/metrics/http_server.h"
#include "daemon/ops/probe.h"
#include "daemon/ops/systemd.h"
#include "daemon/version.h"

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

// After a fatal stop under systemd, /metrics stays up until two scrapes have read cdcsync_fatal (one from
// each of an HA pair of Prometheus servers), for at most this long: below TimeoutStopSec=60, which counts
// from STOPPING=1. Past it the target goes down, and up == 0 (CdcsyncDown) says the rest.
constexpr std::chrono::seconds kFatalLingerMax{45};
constexpr std::uint64_t kFatalScrapes = 2;

// systemd's STATUS= line: what `systemctl status` shows. No secrets, no row values.
std::string status_line(const Probe& probe, const PipelineStatus& status) {
  const auto lag_bytes = probe.replication_lag_bytes();
  return fmt::format(
      "{}; confirmed {}; lag {} bytes, {:.0f} s", name_of(probe.state()), status.confirmed_lsn.load().str(),
      lag_bytes ? std::to_string(*lag_bytes) : std::string("unknown"), probe.replication_lag_seconds());
}

// The last failure the runner reported, for /healthz's body (`cdcsync status` shows it). Any thread.
class LastError {
 public:
  void set(const std::string& message) {
    const std::lock_guard lock(mu_);
    text_ = fmt::format("at {:%FT%TZ}: {}", fmt::gmtime(std::time(nullptr)), message);
  }
  std::string text() const {
    const std::lock_guard lock(mu_);
    return text_;
  }

 private:
  mutable std::mutex mu_;
  std::string text_;
};

// One SIGHUP: the file read and validated again; its live changes handed to the runner, its restart-only
// changes logged and kept, an invalid file logged issue by issue and the running config kept. Never throws.
void reload_config(const std::string& file, config::Config& running, Runner& runner, Probe& probe) {
  spdlog::info("reload: reading {}", file);
  std::optional<config::ReloadPlan> plan;
  try {
    plan = config::plan_reload(running, config::load_config(file));
  } catch (const config::ConfigError& e) {
    for (const auto& issue : e.issues()) spdlog::error("reload: {}", issue.str());
    spdlog::error("reload: {} is invalid ({} issue(s)): the running config is kept", file, e.issues().size());
    probe.config_reloaded("invalid");
    return;
  } catch (const std::exception& e) {
    spdlog::error("reload: {}: the running config is kept", e.what());
    probe.config_reloaded("invalid");
    return;
  }
  for (const auto& key : plan->restart)
    spdlog::warn("reload: {} changed, which needs a restart: the running value is kept until one", key);
  if (plan->live.empty()) {
    spdlog::info("reload: nothing to apply live");
    probe.config_reloaded(plan->restart.empty() ? "unchanged" : "restart_required");
    return;
  }
  std::optional<Mapping> mapping;
  try {
    mapping.emplace(mapping_from_config(plan->next));  // reads the transforms' key files again
  } catch (const std::exception& e) {
    spdlog::error("reload: {}: the running config is kept", e.what());
    probe.config_reloaded("invalid");
    return;
  }
  logging::set_format(plan->next.log.format);
  logging::set_level(config::name_of(plan->next.log.level));
  spdlog::debug("reload: log level {}", config::name_of(plan->next.log.level));
  for (const auto& t : plan->added) {
    const LogScope scope{t, std::nullopt};
    spdlog::info("reload: table {} added to the mapping", t);
  }
  for (const auto& t : plan->removed) {
    const LogScope scope{t, std::nullopt};
    spdlog::warn(
        "reload: table {} removed from the mapping: its changes are no longer applied; its rows in the "
        "target are left as they are",
        t);
  }
  spdlog::info("reload: applying {}", fmt::join(plan->live, ", "));
  if (plan->changes_pipeline()) runner.reload(plan->next, std::move(*mapping));
  running = std::move(plan->next);
  probe.config_reloaded("applied");
}

int run_daemon(const std::string& file, const std::atomic<bool>& stop,
               const std::atomic<std::uint64_t>* reloads) {
  config::Config cfg = config::load_config(file);
  logging::set_pipeline(cfg.pipeline);
  logging::set_format(cfg.log.format);
  logging::set_level(config::name_of(cfg.log.level));

  PipelineStatus status;
  ProbeOptions probe_options;
  probe_options.pipeline = cfg.pipeline;
  probe_options.version = std::string(build::version());
  probe_options.revision = std::string(build::revision());
  probe_options.unit = systemd_unit_name();
  probe_options.slot = cfg.source.slot;
  auto probe = std::make_shared<Probe>(probe_options, status);

  metrics::MetricsServerOptions server_options;
  server_options.listen = cfg.metrics.listen;
  server_options.allow_remote = cfg.metrics.allow_remote;
  auto last_error = std::make_shared<LastError>();
  metrics::MetricsServer server{server_options,
                                {probe},
                                [probe, last_error] {
                                  metrics::HealthStatus h = probe->liveness();
                                  if (const std::string e = last_error->text(); !e.empty())
                                    h.reason += "; last error " + e;
                                  return h;
                                },
                                [probe] { return probe->readiness(); }};
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
  // The initial snapshot's progress: the metrics, and a bar on a terminal or a log line every few seconds.
  LoadProgressDisplay display{LoadProgressDisplay::style_for_stderr(cfg.log.format)};
  hooks.snapshot_progress = [metrics = std::move(hooks.snapshot_progress),
                             &display](const LoadProgressView& v) {
    metrics(v);
    display.show(v);
  };
  hooks.last_error = [last_error](const std::string& message) { last_error->set(message); };
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
  // SIGHUP: the config again, on this thread beside the runner's (never the signal thread's).
  std::jthread reloader([&](const std::stop_token& done) {
    std::uint64_t seen = 0;
    while (reloads != nullptr && !done.stop_requested()) {
      if (const std::uint64_t now = reloads->load(); now != seen) {
        seen = now;
        systemd.reloading();
        reload_config(file, cfg, runner, *probe);
        systemd.reloaded();
      }
      std::this_thread::sleep_for(50ms);
    }
  });
  const int code = runner.run(stop);
  reloader.request_stop();
  reloader.join();
  systemd.stop();
  systemd.stopping();
  if (systemd.enabled() && (code == exit_code::kDataLossRisk || code == exit_code::kApplyFailed ||
                            code == exit_code::kDecodeError)) {
    // systemd will not restart us (RestartPreventExitStatus=): stay scrapeable a little longer so
    // Prometheus records cdcsync_fatal{reason} before the target goes down.
    spdlog::info("serving /metrics until the fatal reason is scraped (at most {} s)",
                 kFatalLingerMax.count());
    const std::uint64_t scraped = probe->scrapes();
    const auto until = std::chrono::steady_clock::now() + kFatalLingerMax;
    while (!stop && std::chrono::steady_clock::now() < until && probe->scrapes() < scraped + kFatalScrapes)
      std::this_thread::sleep_for(100ms);
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
  registry.add(run, [file, &registry](const std::atomic<bool>& stop) {
    return run_daemon(*file, stop, registry.reload_count());
  });
  registry.mark_reloadable(run);
}

}  // namespace cdcsync::commands
