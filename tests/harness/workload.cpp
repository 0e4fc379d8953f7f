#include "tests/harness/workload.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace cdcsync::test {
namespace {

using Clock = std::chrono::steady_clock;

// Texts that exercise quoting and the COPY text format on the way to the order DB.
constexpr const char* kNames[] = {"Ada Lovelace",    "O'Brien",      "Zoë Ærøskøbing",
                                  "back\\slash",     "tab\there",    "line\nbreak",
                                  "\"quoted\"",      "日本語の名前", "Robert'); DROP TABLE x;--",
                                  "trailing space ", "NULL",         "\\N"};
constexpr const char* kStatuses[] = {"active", "suspended", "closed"};
constexpr const char* kTiers[] = {"standard", "gold", "platinum", "tier\t2", ""};

PgResult exec_params(PGconn* conn, const std::string& sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PgResult res{PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                            nullptr, nullptr, 0)};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw pg_error(conn, res.get(), "workload");
  return res;
}

// Appends the parts in order. Used instead of `"literal" + std::to_string(n)`: g++ 12 at -O2/-O3 reports the
// insert() that operator+(const char*, std::string&&) inlines as an overlapping memcpy (-Wrestrict, a known
// false positive of GCC 12).
std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const auto part : parts) out += part;
  return out;
}

std::vector<long long> returned_ids(const PgResult& res) {
  std::vector<long long> ids;
  for (int r = 0; r < PQntuples(res.get()); ++r) ids.push_back(std::atoll(PQgetvalue(res.get(), r, 0)));
  return ids;
}

std::uint64_t initial_seed(std::uint64_t requested) {
  if (const char* env = std::getenv("CDCSYNC_E2E_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  if (requested != 0) return requested;
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) | rd();
}

// What one transaction did to the set of customers, applied to the bookkeeping only after COMMIT returned.
struct Effects {
  std::vector<long long> inserted;
  std::vector<long long> deleted;
  std::uint64_t updated = 0;
  std::uint64_t unpublished = 0;
};

}  // namespace

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)), seed_(initial_seed(options_.seed)), rng_(seed_) {
  std::cout << "[ workload ] seed " << seed_ << " (CDCSYNC_E2E_SEED=" << seed_ << " replays it)" << std::endl;
}

Workload::~Workload() {
  stop();
}

void Workload::start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
    finished_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void Workload::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Workload::wait_finished(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool done = cv_.wait_for(lock, timeout, [&] { return finished_; });
  lock.unlock();
  if (done && thread_.joinable()) thread_.join();
  return done;
}

WorkloadStats Workload::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::set<long long> Workload::deleted_ids() const {
  std::lock_guard lock(mu_);
  return deleted_;
}

std::string Workload::summary() const {
  const auto s = stats();
  std::ostringstream out;
  out << "workload seed " << seed_ << ": " << s.committed << " transactions committed, " << s.failed
      << " failed; rows " << s.inserted << " inserted, " << s.updated << " updated, " << s.deleted
      << " deleted, " << s.unpublished << " unpublished";
  return out.str();
}

bool Workload::wait_until(Clock::time_point t) {
  std::unique_lock lock(mu_);
  return !cv_.wait_until(lock, t, [&] { return stop_; });
}

void Workload::insert_rows(const std::string& conninfo, long long rows, std::string_view tag) {
  auto conn = pg_connect(conninfo, "customer DB (workload)");
  exec_params(
      conn.get(),
      "INSERT INTO public.customers (full_name, email, phone, status, tier, balance) "
      "SELECT 'bulk ' || g, $1 || '-' || g || '@example.test', '+1555' || g, 'active', 'standard', g % 1000 "
      "FROM generate_series(1, $2::bigint) g",
      {std::string(tag), std::to_string(rows)});
}

void Workload::run() {
  const auto started = Clock::now();
  const auto deadline = started + options_.duration;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.001, options_.transactions_per_second)));
  PgConn conn;
  std::uint64_t n = 0;
  auto next = started;
  while (Clock::now() < deadline) {
    if (!wait_until(next)) break;
    next += period;
    try {
      if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        conn = pg_connect(options_.conninfo, "customer DB (workload)");
        if (live_.empty()) {
          live_ = returned_ids(exec_params(conn.get(), "SELECT id FROM public.customers ORDER BY id", {}));
        }
      }
      one_transaction(conn.get());
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      ++stats_.failed;
      if (stats_.failed <= 3)
        std::cout << "[ workload ] transaction failed (retrying): " << e.what() << std::endl;
    }
    ++n;
  }
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
}

void Workload::one_transaction(PGconn* conn) {
  const auto& m = options_.mix;
  std::discrete_distribution<int> kind_of{{double(m.insert), double(m.update), double(m.remove),
                                           double(m.multi_row), double(m.bulk), double(m.unmapped_only),
                                           double(m.unpublished)}};
  const int kind = kind_of(rng_);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); };
  auto name = [&] { return std::string(kNames[pick(std::size(kNames))]) + " " + std::to_string(counter_++); };
  auto status = [&] { return std::string(kStatuses[pick(std::size(kStatuses))]); };
  auto tier = [&] { return std::string(kTiers[pick(std::size(kTiers))]); };
  auto email = [&] {
    return concat({"w", std::to_string(seed_), "-", std::to_string(counter_++), "@example.test"});
  };

  Effects fx;
  std::vector<long long> txn_live = live_;  // what this transaction may touch
  auto some_id = [&]() -> std::optional<long long> {
    if (txn_live.empty()) return std::nullopt;
    return txn_live[pick(txn_live.size())];
  };
  auto forget = [&](long long id) {
    txn_live.erase(std::remove(txn_live.begin(), txn_live.end(), id), txn_live.end());
  };

  auto op_insert = [&](Effects& e) {
    const auto ids =
        returned_ids(exec_params(conn,
                                 "INSERT INTO public.customers (full_name, email, phone, status, tier, "
                                 "balance) VALUES ($1, $2, $3, $4, $5, "
                                 "$6) RETURNING id",
                                 {name(), email(), concat({"+44 20 7946 ", std::to_string(counter_ % 10000)}),
                                  status(), tier(), std::to_string(pick(100000)) + ".25"}));
    for (auto id : ids) {
      e.inserted.push_back(id);
      txn_live.push_back(id);
    }
  };
  auto op_update = [&](Effects& e) {
    const auto id = some_id();
    if (!id) return op_insert(e);
    switch (pick(3)) {
      case 0:
        exec_params(conn,
                    "UPDATE public.customers SET full_name = $2, status = $3, tier = $4, updated_at = now() "
                    "WHERE id = $1",
                    {std::to_string(*id), name(), status(), tier()});
        break;
      case 1:
        exec_params(conn, "UPDATE public.customers SET status = $2 WHERE id = $1",
                    {std::to_string(*id), status()});
        break;
      default:
        exec_params(conn, "UPDATE public.customers SET tier = $2, balance = balance + 1 WHERE id = $1",
                    {std::to_string(*id), tier()});
    }
    ++e.updated;
  };
  auto op_delete = [&](Effects& e) {
    const auto id = some_id();
    if (!id) return;
    exec_params(conn, "DELETE FROM public.customers WHERE id = $1", {std::to_string(*id)});
    e.deleted.push_back(*id);
    forget(*id);
  };
  auto op_unmapped = [&](Effects& e) {
    const auto id = some_id();
    if (!id) return;
    if (pick(2) == 0) {
      exec_params(conn, "UPDATE public.customers SET balance = balance + 7, updated_at = now() WHERE id = $1",
                  {std::to_string(*id)});
    } else {
      exec_params(conn, "UPDATE public.customers SET email = $2, phone = $3, notes = $4 WHERE id = $1",
                  {std::to_string(*id), email(), "+1 555 0100",
                   concat({"private note ", std::to_string(counter_++)})});
    }
    ++e.updated;
  };
  auto op_unpublished = [&](Effects& e) {
    const auto id = some_id();
    if (!id) return;
    exec_params(
        conn,
        "INSERT INTO public.payment_methods (customer_id, card_last4, card_token) VALUES ($1, '4242', $2)",
        {std::to_string(*id), concat({"tok_", std::to_string(counter_++)})});
    ++e.unpublished;
  };
  auto op_bulk = [&](Effects& e) {
    const auto ids =
        returned_ids(exec_params(conn,
                                 "INSERT INTO public.customers (full_name, email, status, tier) SELECT $1 || "
                                 "g, $2 || g || '@example.test', "
                                 "(ARRAY['active', 'suspended', 'closed'])[1 + g % 3], 'bulk' FROM "
                                 "generate_series(1, $3::int) g RETURNING id",
                                 {name() + " #", email() + "-", std::to_string(options_.bulk_rows)}));
    for (auto id : ids) {
      e.inserted.push_back(id);
      txn_live.push_back(id);
    }
  };

  switch (kind) {
    case 0:
      op_insert(fx);
      break;
    case 1:
      op_update(fx);
      break;
    case 2:
      op_delete(fx);
      break;
    case 4:
      op_bulk(fx);
      break;
    case 5:
      op_unmapped(fx);
      break;
    case 6:
      op_unpublished(fx);
      break;
    default: {
      exec_params(conn, "BEGIN", {});
      try {
        const int ops =
            2 + static_cast<int>(pick(static_cast<std::size_t>(std::max(1, options_.multi_row_max - 1))));
        for (int i = 0; i < ops; ++i) {
          switch (pick(8)) {
            case 0:
            case 1:
              op_insert(fx);
              break;
            case 2:
            case 3:
              op_update(fx);
              break;
            case 4:
              op_delete(fx);
              break;
            case 5:
              op_unmapped(fx);
              break;
            case 6: {  // one key changed twice, then maybe deleted, in the same transaction
              op_insert(fx);
              const long long id = txn_live.back();
              exec_params(conn, "UPDATE public.customers SET full_name = $2 WHERE id = $1",
                          {std::to_string(id), name()});
              if (pick(2) == 0) {
                exec_params(conn, "DELETE FROM public.customers WHERE id = $1", {std::to_string(id)});
                fx.deleted.push_back(id);
                forget(id);
              }
              break;
            }
            default: {  // work rolled back to a savepoint never reaches the order DB
              exec_params(conn, "SAVEPOINT wl", {});
              Effects discarded;
              const auto before = txn_live;
              op_insert(discarded);
              op_update(discarded);
              exec_params(conn, "ROLLBACK TO SAVEPOINT wl", {});
              txn_live = before;
            }
          }
        }
        exec_params(conn, "COMMIT", {});
      } catch (...) {
        // The outcome is unknown when the server went away; ids this transaction deleted are not used again.
        for (auto id : fx.deleted) live_.erase(std::remove(live_.begin(), live_.end(), id), live_.end());
        if (PQstatus(conn) == CONNECTION_OK) PQclear(PQexec(conn, "ROLLBACK"));
        throw;
      }
    }
  }

  // Committed: the effects are real.
  live_ = std::move(txn_live);
  std::lock_guard lock(mu_);
  ++stats_.committed;
  stats_.inserted += fx.inserted.size();
  stats_.updated += fx.updated;
  stats_.deleted += fx.deleted.size();
  stats_.unpublished += fx.unpublished;
  for (auto id : fx.deleted) deleted_.insert(id);
}

}  // namespace cdcsync::test
