// A seeded workload on the customer DB for end-to-end tests: inserts, updates, deletes, multi-row
// transactions (with a rolled-back savepoint), a transaction with many rows, updates of unmapped columns
// only, and writes to the unpublished payment_methods table; from one thread, at a bounded rate, for a
// bounded time, stoppable. It survives the customer server restarting (reconnects and goes on).
//
// Every run prints its seed; CDCSYNC_E2E_SEED=N in the environment replays the same sequence of operations.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "decoders/pg.h"

namespace cdcsync::test {

// Relative weights of the kinds of transactions.
struct WorkloadMix {
  int insert = 30;         // one customer
  int update = 30;         // mapped columns of one customer
  int remove = 8;          // one customer
  int multi_row = 15;      // 2..multi_row_max mixed operations in one transaction
  int bulk = 2;            // bulk_rows inserted by one INSERT ... SELECT
  int unmapped_only = 10;  // published but unmapped (balance, updated_at) or unpublished (email) columns
  int unpublished = 5;     // a row in public.payment_methods (not in the publication)

  // Only writes the daemon must not forward: the idle-source test.
  static WorkloadMix unpublished_only() { return {0, 0, 0, 0, 0, 0, 1}; }
};

struct WorkloadOptions {
  std::string conninfo;    // the customer DB, as its admin
  std::uint64_t seed = 0;  // 0: random (CDCSYNC_E2E_SEED overrides both)
  double transactions_per_second = 100;
  std::chrono::milliseconds duration{10000};  // the thread ends by itself after this
  WorkloadMix mix;
  int multi_row_max = 12;
  int bulk_rows = 500;
};

struct WorkloadStats {
  std::uint64_t committed = 0;  // transactions that returned from COMMIT
  std::uint64_t failed = 0;     // transactions that failed (outcome unknown when the server went away)
  std::uint64_t inserted = 0;   // rows, committed transactions only
  std::uint64_t updated = 0;
  std::uint64_t deleted = 0;
  std::uint64_t unpublished = 0;
};

class Workload {
 public:
  explicit Workload(WorkloadOptions options);
  ~Workload();  // stops and joins
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void start();
  // Asks the thread to stop after its current transaction and joins it.
  void stop();
  // Waits until the thread ended by itself (its duration passed) or `timeout`; true when it ended.
  bool wait_finished(std::chrono::milliseconds timeout);

  std::uint64_t seed() const { return seed_; }
  WorkloadStats stats() const;
  // Ids whose DELETE was committed (confirmed by COMMIT's reply).
  std::set<long long> deleted_ids() const;
  std::string summary() const;

  // One transaction inserting `rows` customers with INSERT ... SELECT generate_series.
  static void insert_rows(const std::string& conninfo, long long rows, std::string_view tag);

 private:
  void run();
  void one_transaction(PGconn* conn);
  bool wait_until(std::chrono::steady_clock::time_point t);  // false when asked to stop

  WorkloadOptions options_;
  std::uint64_t seed_;
  std::mt19937_64 rng_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool finished_ = false;
  WorkloadStats stats_;
  std::set<long long> deleted_;
  std::vector<long long> live_;  // ids believed to exist (only this thread writes customers)
  std::uint64_t counter_ = 0;
};

}  // namespace cdcsync::test
