// What every end-to-end sync test shares: its own customer and order databases, a unique slot and pipeline
// name, a config for the cdcsync binary, the positions (source WAL, slot, target progress, Redis checkpoint),
// the "never confirmed past durable" sampler, and the oracle.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "decoders/lsn.h"
#include "tests/harness/daemon_process.h"
#include "tests/harness/servers.h"
#include "tests/harness/workload.h"

namespace cdcsync::test {

struct ConfigOptions {
  std::string truncate;  // tables[].truncate; empty: the default (fail)
  int batch_max_wait_ms = 20;
  int batch_max_rows = 5000;
  int max_txn_chunk_rows = 10000;
  int flush_interval_ms = -1;  // batch.flush_interval_ms; -1: the default
  int lease_ttl_ms = 2000;
  int renew_ms = 500;
  int reconnect_min_ms = 50;
  int reconnect_max_ms = 500;
  int status_interval_ms = 200;
  int receive_timeout_ms = 5000;
  std::string source_extra;    // appended to [source] verbatim
  std::string source_options;  // the source conninfo's options ("-c logical_decoding_work_mem=64kB")
  std::string extra;           // appended verbatim
  int metrics_port = 0;        // [metrics] listen port on 127.0.0.1; 0: a free one
};

struct ProgressRow {
  Lsn end_lsn;
  Lsn acked_lsn;
  Lsn highest() const { return std::max(end_lsn, acked_lsn); }
};

class SyncPipeline {
 public:
  // Databases e2e_<tag>_customers and e2e_<tag>_orders, slot e2e_<tag>, pipeline e2e-<tag> (tag: [a-z0-9_]).
  explicit SyncPipeline(const std::string& tag);
  ~SyncPipeline();  // drops the slot so it pins no WAL for later tests

  std::string config(const ConfigOptions& options = {}) const;
  // A daemon process on this pipeline's config (not started).
  std::unique_ptr<DaemonProcess> daemon(const std::string& name, const ConfigOptions& options = {}) const;

  const std::string& customer_admin() const { return customer_admin_; }
  const std::string& order_admin() const { return order_admin_; }
  const std::string& slot() const { return slot_; }
  const std::string& pipeline() const { return pipeline_; }
  const std::string& dir() const { return dir_; }

  WorkloadOptions workload_options(std::chrono::milliseconds duration, double rate) const;

  Lsn source_wal_lsn() const;
  std::optional<Lsn> slot_confirmed() const;
  std::optional<ProgressRow> progress() const;
  std::optional<Lsn> redis_checkpoint() const;
  bool slot_active() const;

  // Waits until the target has applied everything the source wrote before `lsn` (progress or the slot).
  bool wait_caught_up(Lsn lsn, std::chrono::milliseconds timeout) const;
  // The oracle: caught up with the source's WAL position now (call after the writers stopped), the mapped
  // projection equal, every deleted id a tombstone, the Redis checkpoint at or below the target's progress.
  void expect_oracle(const std::set<long long>& deleted_ids,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60),
                     const DaemonProcess* daemon = nullptr) const;

 private:
  std::string tag_;
  std::string customer_db_;
  std::string order_db_;
  std::string slot_;
  std::string pipeline_;
  std::string customer_admin_;
  std::string order_admin_;
  std::string dir_;
};

// Samples, every 100 ms, that the slot's confirmed_flush_lsn never exceeds the target's durable progress
// max(end_lsn, acked_lsn): the source is never told that something is applied before it is.
class ConfirmedNeverAheadSampler {
 public:
  explicit ConfirmedNeverAheadSampler(const SyncPipeline& p);
  ~ConfirmedNeverAheadSampler();
  void stop();
  std::size_t samples() const { return samples_.load(); }
  std::vector<std::string> violations() const;

 private:
  const SyncPipeline& p_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> samples_{0};
  mutable std::mutex mu_;
  std::vector<std::string> violations_;
  std::thread thread_;
};

// Waits until `needle` occurs at least `times` times in the daemon's log (all runs so far).
bool wait_for_log(const DaemonProcess& d, std::string_view needle, std::chrono::milliseconds timeout,
                  std::size_t times = 1);
// The daemon logs this line each time a session starts streaming.
inline constexpr std::string_view kStreaming = "streaming slot";
// Runs `cdcsync ARGS` (the binary under test) to its end: stdout, and the exit code.
struct CliRun {
  std::string out;
  int code = -1;
};
CliRun run_cli(const std::string& args);

// A seed for the test's own random choices (kill moments): CDCSYNC_E2E_SEED, or random; printed.
std::uint64_t test_seed(std::string_view what);

}  // namespace cdcsync::test
