#include "tests/e2e/sync/sync_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace cdcsync::test {
namespace {

using std::chrono::milliseconds;

std::optional<Lsn> parse_lsn(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return Lsn::parse(*text);
}

std::string show(const std::optional<Lsn>& lsn) {
  return lsn ? lsn->str() : "(none)";
}

// Both sides of the projection, rendered the same way (quote_nullable tells NULL from 'NULL' and '').
constexpr const char* kSourceDigest =
    "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(id::text || ',' || quote_nullable(full_name) || "
    "',' || "
    "quote_nullable(status) || ',' || quote_nullable(tier), E'\\n' ORDER BY id)), '-') FROM public.customers";
constexpr const char* kTargetDigest =
    "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(customer_id::text || ',' || "
    "quote_nullable(display_name) "
    "|| ',' || quote_nullable(status) || ',' || quote_nullable(tier), E'\\n' ORDER BY customer_id)), '-') "
    "FROM ref.customer WHERE NOT _cdc_deleted";
constexpr const char* kSourceRows =
    "SELECT id::text, quote_nullable(full_name), quote_nullable(status), quote_nullable(tier) FROM "
    "public.customers "
    "ORDER BY id";
constexpr const char* kTargetRows =
    "SELECT customer_id::text, quote_nullable(display_name), quote_nullable(status), quote_nullable(tier) "
    "FROM ref.customer WHERE NOT _cdc_deleted ORDER BY customer_id";

std::string row_text(const std::vector<std::optional<std::string>>& row) {
  std::string out;
  for (const auto& v : row) out += (out.empty() ? "" : " | ") + v.value_or("NULL");
  return out;
}

}  // namespace

bool wait_for_log(const DaemonProcess& d, std::string_view needle, milliseconds timeout, std::size_t times) {
  return eventually([&] { return d.log_count(needle) >= times; }, timeout, milliseconds(50));
}

CliRun run_cli(const std::string& args) {
  CliRun r;
  const std::string cmd = DaemonProcess::binary() + " " + args + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  for (std::size_t n = 0; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::uint64_t test_seed(std::string_view what) {
  std::uint64_t seed = 0;
  if (const char* env = std::getenv("CDCSYNC_E2E_SEED"); env != nullptr && *env != '\0') {
    seed = std::strtoull(env, nullptr, 10);
  } else {
    std::random_device rd;
    seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  }
  std::cout << "[ seed     ] " << what << ": " << seed << " (CDCSYNC_E2E_SEED=" << seed << " replays it)"
            << std::endl;
  return seed;
}

SyncPipeline::SyncPipeline(const std::string& tag)
    : tag_(tag),
      customer_db_("e2e_" + tag + "_customers"),
      order_db_("e2e_" + tag + "_orders"),
      slot_("e2e_" + tag),
      pipeline_("e2e-" + tag) {
#ifdef CDCSYNC_E2E_BINARY
  setenv("CDCSYNC_BINARY", CDCSYNC_E2E_BINARY, /*overwrite=*/0);  // before any thread of the test starts
#endif
  const auto& s = TestServers::get();
  const auto postgres = s.admin_conninfo(Server::Customer, "postgres");
  // A slot left by an earlier run would pin WAL and keep its database from being dropped.
  const bool dropped = eventually(
      [&] {
        exec_sql(postgres,
                 "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" +
                     slot_ + "' AND active_pid IS NOT NULL");
        exec_sql(postgres,
                 "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                     slot_ + "'");
        return true;
      },
      std::chrono::seconds(10), milliseconds(100));
  if (!dropped) throw std::runtime_error("cannot drop the leftover slot " + slot_);
  customer_admin_ = s.fresh_database(Server::Customer, customer_db_,
                                     {"deploy/sql/customer_schema.sql", "deploy/sql/customer_roles.sql"});
  order_admin_ = s.fresh_database(Server::Order, order_db_,
                                  {"deploy/sql/order_schema.sql", "deploy/sql/order_roles.sql"});
  redis_command({"DEL", "cdcsync:{" + pipeline_ + "}:checkpoint", "cdcsync:{" + pipeline_ + "}:lease"});
  dir_ = make_temp_dir("cdcsync-e2e-" + tag);
  std::cout << "[ e2e      ] pipeline " << pipeline_ << ", slot " << slot_ << ", logs and configs in " << dir_
            << std::endl;
}

SyncPipeline::~SyncPipeline() {
  try {
    const auto postgres = TestServers::get().admin_conninfo(Server::Customer, "postgres");
    eventually(
        [&] {
          exec_sql(postgres,
                   "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" +
                       slot_ + "' AND active_pid IS NOT NULL");
          exec_sql(
              postgres,
              "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '" +
                  slot_ + "'");
          return true;
        },
        std::chrono::seconds(10), milliseconds(100));
  } catch (...) {
    // a leftover slot is dropped by the next run's constructor
  }
}

std::string SyncPipeline::config(const ConfigOptions& o) const {
  const auto& s = TestServers::get();
  std::ostringstream c;
  c << "pipeline = \"" << pipeline_ << "\"\n\n"
    << "[source]\n"
    << "conninfo = \"" << s.source_conninfo(customer_db_)
    << (o.source_options.empty() ? std::string() : " options='" + o.source_options + "'") << "\"\n"
    << "publication = \"cdcsync_customers\"\n"
    << "slot = \"" << slot_ << "\"\n"
    << "create_slot = true\n"
    << "status_interval_ms = " << o.status_interval_ms << "\n"
    << "receive_timeout_ms = " << o.receive_timeout_ms << "\n"
    << "reconnect_min_ms = " << o.reconnect_min_ms << "\n"
    << "reconnect_max_ms = " << o.reconnect_max_ms << "\n"
    << o.source_extra << "\n"
    << "[target]\n"
    << "conninfo = \"" << s.target_conninfo(order_db_) << "\"\n\n"
    << "[batch]\n"
    << "max_rows = " << o.batch_max_rows << "\n"
    << "max_wait_ms = " << o.batch_max_wait_ms << "\n"
    << "max_txn_chunk_rows = " << o.max_txn_chunk_rows << "\n"
    << (o.flush_interval_ms >= 0 ? "flush_interval_ms = " + std::to_string(o.flush_interval_ms) + "\n" : "")
    << "\n"
    << "[checkpoint]\n"
    << "redis = \"" << s.redis_url() << "\"\n"
    << "lease_ttl_ms = " << o.lease_ttl_ms << "\n"
    << "renew_ms = " << o.renew_ms << "\n\n"
    << "[metrics]\n"
    << "listen = \"127.0.0.1:" << (o.metrics_port != 0 ? o.metrics_port : free_port()) << "\"\n\n"
    << "[[tables]]\n"
    << "source  = \"public.customers\"\n"
    << "target  = \"ref.customer\"\n"
    << "key     = [\"id\"]\n"
    << "columns = { id = \"customer_id\", full_name = \"display_name\", status = \"status\", tier = \"tier\" "
       "}\n"
    << "deletes = \"soft\"\n";
  if (!o.truncate.empty()) c << "truncate = \"" << o.truncate << "\"\n";
  c << o.extra;
  return c.str();
}

std::unique_ptr<DaemonProcess> SyncPipeline::daemon(const std::string& name,
                                                    const ConfigOptions& options) const {
  return std::make_unique<DaemonProcess>(dir_, name, config(options));
}

WorkloadOptions SyncPipeline::workload_options(std::chrono::milliseconds duration, double rate) const {
  WorkloadOptions o;
  o.conninfo = customer_admin_;
  o.duration = duration;
  o.transactions_per_second = rate;
  return o;
}

Lsn SyncPipeline::source_wal_lsn() const {
  const auto lsn = parse_lsn(query_value(customer_admin_, "SELECT pg_current_wal_lsn()::text"));
  if (!lsn) throw std::runtime_error("no pg_current_wal_lsn()");
  return *lsn;
}

std::optional<Lsn> SyncPipeline::slot_confirmed() const {
  return parse_lsn(query_value(customer_admin_,
                               "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE "
                               "slot_name = '" +
                                   slot_ + "'"));
}

bool SyncPipeline::slot_active() const {
  return query_value(customer_admin_, "SELECT active::text FROM pg_replication_slots WHERE slot_name = '" +
                                          slot_ + "'") == "true";
}

std::optional<ProgressRow> SyncPipeline::progress() const {
  const auto rows = query_rows(order_admin_,
                               "SELECT end_lsn::text, acked_lsn::text FROM ref.cdc_progress WHERE "
                               "pipeline = '" +
                                   pipeline_ + "'");
  if (rows.empty()) return std::nullopt;
  const auto end = parse_lsn(rows[0][0]);
  const auto acked = parse_lsn(rows[0][1]);
  if (!end || !acked) throw std::runtime_error("unreadable progress row");
  return ProgressRow{*end, *acked};
}

std::optional<Lsn> SyncPipeline::redis_checkpoint() const {
  const auto v = redis_command({"HGET", "cdcsync:{" + pipeline_ + "}:checkpoint", "lsn"});
  if (v == "(nil)") return std::nullopt;
  const auto lsn = Lsn::parse(v);
  if (!lsn) throw std::runtime_error("checkpoint lsn field is not an LSN: " + v);
  return lsn;
}

bool SyncPipeline::wait_caught_up(Lsn lsn, milliseconds timeout) const {
  return eventually(
      [&] {
        const auto p = progress();
        if (p && p->highest() >= lsn) return true;
        const auto confirmed = slot_confirmed();
        return confirmed && *confirmed >= lsn;
      },
      timeout, milliseconds(100));
}

void SyncPipeline::expect_oracle(const std::set<long long>& deleted_ids, milliseconds timeout,
                                 const DaemonProcess* daemon) const {
  const Lsn after_load = source_wal_lsn();
  const auto started = std::chrono::steady_clock::now();
  const bool caught_up = wait_caught_up(after_load, timeout);
  auto positions = [&] {
    std::optional<ProgressRow> p;
    std::optional<Lsn> slot;
    std::optional<Lsn> redis;
    try {
      p = progress();
      slot = slot_confirmed();
      redis = redis_checkpoint();
    } catch (const std::exception&) {
    }
    return "source after the load " + after_load.str() + "; target progress end " +
           show(p ? std::optional<Lsn>(p->end_lsn) : std::nullopt) + " acked " +
           show(p ? std::optional<Lsn>(p->acked_lsn) : std::nullopt) + "; slot confirmed " + show(slot) +
           "; Redis checkpoint " + show(redis);
  };
  ASSERT_TRUE(caught_up) << "the target did not catch up with the source within " << timeout.count()
                         << " ms: " << positions() << "\n"
                         << (daemon != nullptr ? daemon->log_tail() : std::string());
  std::cout << "[ oracle   ] caught up in "
            << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started).count()
            << " ms: " << positions() << std::endl;

  // 1. The projection: every source row, exactly as mapped, and nothing else alive.
  const auto source_digest = query_value(customer_admin_, kSourceDigest);
  const auto target_digest = query_value(order_admin_, kTargetDigest);
  if (source_digest != target_digest) {
    const auto src = query_rows(customer_admin_, kSourceRows);
    const auto tgt = query_rows(order_admin_, kTargetRows);
    std::size_t shown = 0;
    std::ostringstream diff;
    std::size_t i = 0;
    std::size_t j = 0;
    while ((i < src.size() || j < tgt.size()) && shown < 10) {
      const long long si = i < src.size() ? std::stoll(*src[i][0]) : LLONG_MAX;
      const long long tj = j < tgt.size() ? std::stoll(*tgt[j][0]) : LLONG_MAX;
      if (si == tj) {
        if (src[i] != tgt[j]) {
          diff << "  differs:        source " << row_text(src[i]) << "\n                  target "
               << row_text(tgt[j]) << "\n";
          ++shown;
        }
        ++i;
        ++j;
      } else if (si < tj) {
        diff << "  missing:        source " << row_text(src[i++]) << "\n";
        ++shown;
      } else {
        diff << "  extra (alive):  target " << row_text(tgt[j++]) << "\n";
        ++shown;
      }
    }
    ADD_FAILURE() << "ref.customer is not the projection of public.customers (count digest: source "
                  << source_digest.value_or("?") << ", target " << target_digest.value_or("?")
                  << "); first differences:\n"
                  << diff.str();
  }

  // 2. Every committed delete left a tombstone.
  std::set<long long> tombstones;
  for (const auto& row :
       query_rows(order_admin_, "SELECT customer_id FROM ref.customer WHERE _cdc_deleted")) {
    tombstones.insert(std::stoll(*row[0]));
  }
  std::vector<long long> missing;
  for (auto id : deleted_ids) {
    if (!tombstones.contains(id)) missing.push_back(id);
  }
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << deleted_ids.size()
                               << " deleted ids have no tombstone, e.g. " << missing.front();

  // 3. Redis mirrors the target and is never ahead of it.
  const auto p = progress();
  const auto redis = redis_checkpoint();
  ASSERT_TRUE(p.has_value()) << "no progress row";
  if (redis) {
    EXPECT_LE(*redis, p->highest()) << positions();
  }
}

ConfirmedNeverAheadSampler::ConfirmedNeverAheadSampler(const SyncPipeline& p) : p_(p) {
  thread_ = std::thread([this] {
    while (!stop_) {
      try {
        // The slot first: progress only grows, so reading it second can only make the check more lenient
        // by what was committed in between, never hide a confirmation made ahead of the target.
        const auto confirmed = p_.slot_confirmed();
        const auto progress = p_.progress();
        if (confirmed && progress) {
          ++samples_;
          if (*confirmed > progress->highest()) {
            std::lock_guard lock(mu_);
            violations_.push_back("slot confirmed " + confirmed->str() + " > target progress end " +
                                  progress->end_lsn.str() + " acked " + progress->acked_lsn.str());
          }
        }
      } catch (const std::exception&) {
        // a server is restarting: no sample
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
  });
}

ConfirmedNeverAheadSampler::~ConfirmedNeverAheadSampler() {
  stop();
}

void ConfirmedNeverAheadSampler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> ConfirmedNeverAheadSampler::violations() const {
  std::lock_guard lock(mu_);
  return violations_;
}

}  // namespace cdcsync::test
