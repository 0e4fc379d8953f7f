// What the fault-injection tests share on top of the sync suite's pipeline and oracle: the daemon's three
// connections through one loopback TCP proxy each, and small helpers to wait for facts in its log.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "tests/e2e/sync/sync_fixture.h"
#include "tests/harness/tcp_proxy.h"

namespace cdcsync::test {

// One proxy per server: customer PostgreSQL, order PostgreSQL, Redis.
struct Proxies {
  Proxies();
  TcpProxy source;
  TcpProxy target;
  TcpProxy redis;
};

// The pipeline's config with the source and target conninfos and the Redis URL pointing at the proxies (a
// pgpass file in the pipeline's directory carries the passwords for the proxies' ports). `source_options`
// is appended to the source conninfo (e.g. "options='-cwal_sender_timeout=2000'"), `target_options` to the
// target's, `target_keys` to the [target] section (e.g. "statement_timeout_ms = 2000\n").
struct ProxiedOptions {
  std::string source_conninfo;
  std::string target_conninfo;
  std::string target_keys;
};
std::string proxied_config(const SyncPipeline& p, const Proxies& px, const ConfigOptions& options,
                           const ProxiedOptions& extra = {});

// Milliseconds since `t0`.
long long ms_since(std::chrono::steady_clock::time_point t0);

}  // namespace cdcsync::test
