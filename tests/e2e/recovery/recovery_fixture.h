// What the recovery command tests share: their own customer and order databases, a unique slot and
// pipeline, a config file, the binary run as a child process (exit code, stdout, stderr), and a daemon.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/harness/servers.h"

namespace cdcsync::test {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

struct RecoveryConfig {
  std::string customers_extra;  // appended to the customers [[tables]] entry (e.g. transforms)
  bool with_loyalty = true;     // also map public.loyalty_accounts -> ref.loyalty_account (deletes = hard)
};

class RecoveryPipeline {
 public:
  // Databases rec_<tag>_customers / rec_<tag>_orders, slot rec_<tag>, pipeline rec-<tag>.
  explicit RecoveryPipeline(const std::string& tag, const RecoveryConfig& config = {});
  ~RecoveryPipeline();

  // Runs `cdcsync <args...>`; "CONFIG" in args is replaced by this pipeline's config path.
  Run cdcsync(std::vector<std::string> args, std::chrono::seconds timeout = std::chrono::seconds(120)) const;

  // `cdcsync run` in the background (stopped by the destructor or stop_daemon()).
  void start_daemon();
  void stop_daemon();
  std::string daemon_log() const;

  // A progress row far ahead: verify need not wait for a daemon.
  void mark_target_caught_up() const;

  const std::string& customer_admin() const { return customer_admin_; }
  const std::string& order_admin() const { return order_admin_; }
  const std::string& slot() const { return slot_; }
  const std::string& pipeline() const { return pipeline_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string slot_;
  std::string pipeline_;
  std::string customer_admin_;
  std::string order_admin_;
  std::string dir_;
  std::string config_path_;
  pid_t daemon_ = -1;
};

// Copies public.customers (id, full_name, status, tier) and loyalty_accounts into the target as the daemon
// would (no transforms), with _cdc_lsn 0/1.
void copy_projection(const RecoveryPipeline& p);
// Rows of the two sides, as "key|col|col..." lines sorted by key (live rows only on the target).
std::vector<std::string> source_customers(const RecoveryPipeline& p);
std::vector<std::string> target_customers(const RecoveryPipeline& p);
std::vector<std::string> source_loyalty(const RecoveryPipeline& p);
std::vector<std::string> target_loyalty(const RecoveryPipeline& p);

}  // namespace cdcsync::test
