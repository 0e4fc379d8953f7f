// Probe's slot poller: a thread of its own asks the source about the slot every poll_interval and turns the
// answer into the lag, retention and invalidation-forecast gauges (NaN while the source cannot be polled).
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

#include "daemon/ops/probe.h"
#include "daemon/ops/probe_internal.h"
#include "decoders/pg.h"
#include "decoders/pg_link.h"

namespace cdcsync {
namespace {

using probe_detail::kInf;
using probe_detail::kNaN;
using probe_detail::kWalStatuses;

std::optional<Lsn> parse_lsn_bytes(const PGresult* res, int column) {
  if (PQgetisnull(res, 0, column)) return std::nullopt;
  // pg_lsn - '0/0' is numeric: the LSN as a number of bytes, without a fraction.
  return Lsn{std::strtoull(PQgetvalue(res, 0, column), nullptr, 10)};
}

}  // namespace

void Probe::record_poll(const SlotPoll& poll) {
  const auto now = options_.now();
  std::lock_guard lock(mutex_);
  poll_ok_ = true;
  wal_samples_.emplace_back(now, poll.current_wal_lsn);
  while (wal_samples_.size() > 2 && now - wal_samples_.front().first > options_.wal_rate_window) {
    wal_samples_.pop_front();
  }
  source_probe_up_->Set(1);
  last_poll_time_->Set(std::chrono::duration<double>(now.time_since_epoch()).count());
  source_wal_lsn_->Set(static_cast<double>(poll.current_wal_lsn.value()));

  double rate = 0;
  if (wal_samples_.size() >= 2) {
    const auto& [t0, lsn0] = wal_samples_.front();
    const auto& [t1, lsn1] = wal_samples_.back();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    if (secs > 0) rate = static_cast<double>(bytes_between(lsn0, lsn1)) / secs;
  }
  wal_rate_->Set(rate);

  const std::string status = poll.slot_exists ? poll.wal_status : "missing";
  for (const char* s : kWalStatuses) wal_status_->Add({{"status", s}}).Set(status == s ? 1 : 0);
  if (!poll.slot_exists) {
    last_poll_ = poll;
    return;
  }
  if (poll.confirmed_flush_lsn) {
    lag_bytes_->Set(static_cast<double>(bytes_between(*poll.confirmed_flush_lsn, poll.current_wal_lsn)));
  }
  if (poll.restart_lsn) {
    retained_wal_->Set(static_cast<double>(bytes_between(*poll.restart_lsn, poll.current_wal_lsn)));
  }
  if (poll.wal_status == "lost") {
    safe_wal_size_->Set(0);
    forecast_->Set(0);
  } else if (!poll.safe_wal_size) {
    safe_wal_size_->Set(kInf);
    forecast_->Set(kInf);
  } else {
    const double safe = std::max<double>(0.0, static_cast<double>(*poll.safe_wal_size));
    safe_wal_size_->Set(safe);
    forecast_->Set(rate > 0 ? safe / rate : (safe > 0 ? kInf : 0.0));
  }
  last_poll_ = poll;
}

void Probe::record_poll_failure() {
  std::lock_guard lock(mutex_);
  poll_ok_ = false;
  source_probe_up_->Set(0);
  // What only the poll knows is unknown now, not what it was: NaN keeps each series (and the dashboards'
  // panels) but compares false, so the lag and retention alerts fall quiet and CdcsyncSourceProbeDown speaks.
  for (prometheus::Gauge* g :
       {lag_bytes_, retained_wal_, safe_wal_size_, wal_rate_, forecast_, source_wal_lsn_})
    g->Set(kNaN);
  for (const char* s : kWalStatuses) wal_status_->Add({{"status", s}}).Set(kNaN);
}

void Probe::start_polling(std::string conninfo) {
  stop_polling();
  {
    std::lock_guard lock(poll_mutex_);
    poll_stop_ = false;
  }
  poller_ = std::thread([this, conninfo = std::move(conninfo)]() mutable { poll_loop(std::move(conninfo)); });
}

void Probe::stop_polling() {
  {
    std::lock_guard lock(poll_mutex_);
    poll_stop_ = true;
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
}

void Probe::poll_loop(std::string conninfo) {
  static constexpr const char* kQuery =
      "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::text, (s.confirmed_flush_lsn - '0/0'::pg_lsn)::text, "
      "(s.restart_lsn - '0/0'::pg_lsn)::text, s.wal_status, s.safe_wal_size::text, s.slot_name IS NOT NULL "
      "FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots AS s ON s.slot_name = $1";
  PgConn conn;
  const auto drop = [&] { conn.reset(); };
  std::string last_error;
  while (true) {
    {
      std::unique_lock lock(poll_mutex_);
      if (poll_stop_) return;
    }
    try {
      if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
        drop();
        // What the poller needs comes after the conninfo, whatever it says. A silent (half-open) link would
        // hold a poll, and a SIGTERM after it, until the link is reset: a reply that has not come after the
        // statement_timeout below plus 3 s shuts the socket down.
        conn = pg_connect(conninfo, "the customer database (metrics poller)",
                          {.reply_timeout = std::chrono::milliseconds(8000),
                           .owner = pg_link::Owner::SideThread,
                           .after = {{"application_name", "cdcsync_probe"}, {"connect_timeout", "5"}}});
        pg_exec(conn.get(), "SET statement_timeout = 5000", "setting the probe's statement_timeout");
      }
      const char* params[] = {options_.slot.c_str()};
      PgResult res{PQexecParams(conn.get(), kQuery, 1, nullptr, params, nullptr, nullptr, 0)};
      if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1) {
        throw pg_error(conn.get(), res.get(), "polling the slot");
      }
      SlotPoll poll;
      poll.current_wal_lsn = parse_lsn_bytes(res.get(), 0).value_or(Lsn{});
      poll.confirmed_flush_lsn = parse_lsn_bytes(res.get(), 1);
      poll.restart_lsn = parse_lsn_bytes(res.get(), 2);
      poll.wal_status = PQgetisnull(res.get(), 0, 3) ? "" : PQgetvalue(res.get(), 0, 3);
      if (!PQgetisnull(res.get(), 0, 4))
        poll.safe_wal_size = std::strtoll(PQgetvalue(res.get(), 0, 4), nullptr, 10);
      poll.slot_exists = std::string_view(PQgetvalue(res.get(), 0, 5)) == "t";
      record_poll(poll);
      if (!last_error.empty()) spdlog::info("probe: polling the source again");
      last_error.clear();
    } catch (const std::exception& e) {
      record_poll_failure();
      if (conn && PQstatus(conn.get()) != CONNECTION_OK) drop();
      if (last_error != e.what()) spdlog::warn("probe: cannot poll the source's slot: {}", e.what());
      last_error = e.what();
    }
    if (verify_reader_) {
      try {
        if (const auto v = verify_reader_()) record_verify(*v);
      } catch (const std::exception& e) {
        spdlog::debug("probe: cannot read the last verify result: {}", e.what());
      }
    }
    refresh();
    std::unique_lock lock(poll_mutex_);
    poll_cv_.wait_for(lock, options_.poll_interval, [&] { return poll_stop_; });
  }
}

}  // namespace cdcsync
