// The test side of scripts/servers.sh: reads the env file of the servers that the ctest fixture started
// (CDCSYNC_SERVERS_ENV) and offers the few helpers integration tests share.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "decoders/pg.h"
#include "tests/harness/eventually.h"

namespace cdcsync::test {

enum class Server { Customer, Order };

class TestServers {
 public:
  // Loads the env file; skips nothing: a missing file is a test failure with a message saying how to start
  // them.
  static const TestServers& get();

  std::string env(const std::string& key) const;
  const std::string& servers_dir() const { return dir_; }
  int port(Server s) const;
  int redis_port() const;
  std::string redis_url() const { return env("CDCSYNC_REDIS_URL"); }
  std::string passfile() const { return env("CDCSYNC_PGPASSFILE"); }

  // Admin (superuser) conninfo for a database on one server.
  std::string admin_conninfo(Server s, const std::string& dbname) const;
  // Demo-role conninfos (cdcsync_source on customers, cdcsync_target on orders).
  std::string source_conninfo(const std::string& dbname = "customers") const;
  std::string target_conninfo(const std::string& dbname = "orders") const;

  // Drops and creates a database, optionally applying deploy/sql files (paths relative to the repo root);
  // returns its admin conninfo.
  std::string fresh_database(Server s, const std::string& dbname,
                             const std::vector<std::string>& sql_files = {}) const;

  // Runs scripts/servers.sh with the given arguments (e.g. {"pg-stop", "customer", "immediate"}).
  void control(const std::vector<std::string>& args) const;

 private:
  std::map<std::string, std::string> vars_;
  std::string dir_;
};

std::string repo_root();

// Runs SQL as-is on a short-lived connection; throws PgError on failure.
void exec_sql(const std::string& conninfo, const std::string& sql);
// First column of the first row, or nullopt when there is no row or it is NULL.
std::optional<std::string> query_value(const std::string& conninfo, const std::string& sql);

// Sets a server setting for the holder's lifetime (ALTER SYSTEM, reload), and resets it after (a failure to
// reset is printed, not thrown: the server may be down after a failed test).
class ClusterSetting {
 public:
  ClusterSetting(Server server, std::string name, const std::string& value);
  ~ClusterSetting();
  ClusterSetting(const ClusterSetting&) = delete;
  ClusterSetting& operator=(const ClusterSetting&) = delete;

 private:
  Server server_;
  std::string name_;
};

// A free loopback TCP port (for metrics.listen and proxies), found by binding port 0.
int free_port();

// Drops the replication slot on the customer server (terminating its walsender first), waiting until it is
// gone.
void drop_slot(const std::string& slot);
std::vector<std::vector<std::optional<std::string>>> query_rows(const std::string& conninfo,
                                                                const std::string& sql);

// A Redis command through redis-cli-free hiredis; returns the reply as text ("(nil)" for nil).
std::string redis_command(const std::vector<std::string>& argv);

}  // namespace cdcsync::test
