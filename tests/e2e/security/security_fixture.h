// What the security tests share: their own customer and order databases (deploy/sql applied), a unique slot
// and pipeline, config files with whatever conninfo and secrets a test needs, and the binary run as a child
// process with its stdout and stderr kept.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/harness/daemon_process.h"
#include "tests/harness/servers.h"

namespace cdcsync::test {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

struct PipelineOptions {
  std::string source_conninfo;  // empty: cdcsync_source on the test server, through the servers' pgpass
  std::string target_conninfo;  // empty: cdcsync_target likewise
  std::string source_password_file;
  std::string target_password_file;
  std::string redis_url;  // empty: the test Redis, no user
  std::string redis_password_file;
  std::string pipeline;  // empty: the fixture's
  std::string log_level = "info";
  int metrics_port = 0;  // 0: a free one
  std::string snapshot_mode = "initial";
};

class SecurityPipeline {
 public:
  // Databases sec_<tag>_customers / sec_<tag>_orders, slot sec_<tag>, pipeline sec-<tag>.
  explicit SecurityPipeline(const std::string& tag);
  ~SecurityPipeline();

  // The config TOML; write_config writes it to DIR/NAME.toml and returns the path.
  std::string config_text(const PipelineOptions& options = {}) const;
  std::string write_config(const std::string& name, const PipelineOptions& options = {}) const;
  // Runs `cdcsync <args...>` to completion (killed after `timeout`).
  Run cdcsync(const std::vector<std::string>& args,
              std::chrono::seconds timeout = std::chrono::seconds(120)) const;
  // A file of mode 0600 in the fixture's directory holding `content`; returns its path.
  std::string secret_file(const std::string& name, const std::string& content) const;

  void insert_customers(int first_id, int count) const;
  // Live rows in ref.customer.
  int target_customers() const;

  const std::string& customers_db() const { return customers_db_; }
  const std::string& orders_db() const { return orders_db_; }
  const std::string& customer_admin() const { return customer_admin_; }
  const std::string& order_admin() const { return order_admin_; }
  const std::string& slot() const { return slot_; }
  const std::string& pipeline() const { return pipeline_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string slot_;
  std::string pipeline_;
  std::string customers_db_;
  std::string orders_db_;
  std::string customer_admin_;
  std::string order_admin_;
  std::string dir_;
};

// Login roles `<prefix>_source` (REPLICATION, member of cdcsync_source) and `<prefix>_target` (member of
// cdcsync_target), and the Redis ACL user cdcsync-<pipeline>, each with its own password: the demo roles'
// privileges, reachable only with these passwords. The Redis user is deleted again with this object.
class PasswordLogins {
 public:
  PasswordLogins(const SecurityPipeline& p, const std::string& prefix, const std::string& source_password,
                 const std::string& target_password, const std::string& redis_password);
  ~PasswordLogins();
  PasswordLogins(const PasswordLogins&) = delete;
  PasswordLogins& operator=(const PasswordLogins&) = delete;
  std::string source_role() const { return prefix_ + "_source"; }
  std::string target_role() const { return prefix_ + "_target"; }
  const std::string& redis_user() const { return redis_user_; }

 private:
  std::string prefix_;
  std::string redis_user_;
};

// The password of a demo role (cdcsync_source, cdcsync_target) from the servers' pgpass file.
std::string demo_password(const std::string& role, int port);
// The ACL SETUSER command of docs/security.md: `user` may run the commands cdcsync sends (checkpoint, lease,
// verify, archive and dead-letter streams) on the keys cdcsync:{<pipeline>}:* only.
std::vector<std::string> acl_setuser(const std::string& user, const std::string& password,
                                     const std::string& pipeline);

}  // namespace cdcsync::test
