// The reply-deadline watcher of every PostgreSQL connection (pg_link.h).
#include "decoders/pg_link.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace cdcsync::pg_link {
namespace {

using std::chrono::milliseconds;

struct Link {
  int fd = -1;  // the watcher's own duplicate of the connection's socket
  std::string what;
  milliseconds limit{0};
  Owner owner = Owner::MainLoop;
  bool tripped = false;  // shut down; not again
};

struct Silence {
  milliseconds since_sent;
  milliseconds since_received;
  milliseconds both() const { return std::min(since_sent, since_received); }
};

// How long the socket has sent and received no data (the kernel's TCP_INFO, in ms); nullopt: not TCP.
std::optional<Silence> silence_of(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  return Silence{milliseconds(info.tcpi_last_data_sent), milliseconds(info.tcpi_last_data_recv)};
}

bool command_in_progress(const PGconn* conn) {
  return PQtransactionStatus(conn) == PQTRANS_ACTIVE;
}

class Watcher;
Watcher& watcher();

class Watcher {
 public:
  Watcher() {
    // The watcher's thread runs until the process ends and may be logging while it exits: spdlog's registry
    // is made to exist before the handler below is registered, so the handler runs first at exit, waits for
    // a line being written and silences the thread before spdlog is torn down.
    spdlog::default_logger_raw();
    std::atexit([] { watcher().fall_quiet(); });
  }

  void fall_quiet() {
    std::lock_guard lock(log_mu_);
    quiet_ = true;
  }

  void watch(PGconn* conn, std::string what, milliseconds limit, Owner owner) {
    const int fd = fcntl(PQsocket(conn), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return;  // out of descriptors: this connection goes without a deadline
    {
      std::lock_guard lock(mu_);
      forget_locked(conn);
      links_[conn] = Link{.fd = fd, .what = std::move(what), .limit = limit, .owner = owner};
      if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    }
    cv_.notify_all();  // a shorter limit may need a closer look
  }

  void set_limit(PGconn* conn, milliseconds limit) {
    {
      std::lock_guard lock(mu_);
      const auto it = links_.find(conn);
      if (it == links_.end()) return;
      it->second.limit = limit;
    }
    cv_.notify_all();
  }

  void set_owner(PGconn* conn, Owner owner) {
    std::lock_guard lock(mu_);
    const auto it = links_.find(conn);
    if (it != links_.end()) it->second.owner = owner;
  }

  void forget(PGconn* conn) {
    std::lock_guard lock(mu_);
    forget_locked(conn);
  }

  void abort(PGconn* conn) {
    std::lock_guard lock(mu_);
    const auto it = links_.find(conn);
    if (it != links_.end()) shutdown(it->second.fd, SHUT_RDWR);
  }

  std::vector<InFlight> in_flight() {
    std::vector<InFlight> out;
    std::lock_guard lock(mu_);
    for (const auto& [conn, link] : links_) {
      if (link.owner != Owner::MainLoop || link.limit.count() <= 0 || link.tripped) continue;
      if (!command_in_progress(conn)) continue;
      const auto s = silence_of(link.fd);
      if (s && s->both() < link.limit) out.push_back({link.what, s->both(), link.limit});
    }
    return out;
  }

 private:
  void forget_locked(PGconn* conn) {
    const auto it = links_.find(conn);
    if (it == links_.end()) return;
    close(it->second.fd);
    links_.erase(it);
  }

  // Looks at every link a few times per its limit (at most every second, at least every 50 ms).
  milliseconds interval_locked() const {
    milliseconds every{1000};
    for (const auto& [conn, link] : links_) {
      if (link.limit.count() > 0) every = std::min(every, link.limit / 4);
    }
    return std::max(every, milliseconds(50));
  }

  void loop() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait_for(lock, interval_locked());
      std::vector<std::string> tripped;
      for (auto& [conn, link] : links_) {
        if (link.limit.count() <= 0) continue;
        if (!command_in_progress(conn)) {
          link.tripped = false;
          continue;
        }
        const auto s = silence_of(link.fd);
        if (!s || link.tripped || s->both() < link.limit) continue;
        shutdown(link.fd, SHUT_RDWR);
        link.tripped = true;
        tripped.push_back(
            fmt::format("no reply from {} for {} ms: taking the connection for dead and reconnecting",
                        link.what, s->since_sent.count()));
      }
      if (tripped.empty()) continue;
      lock.unlock();
      {
        std::lock_guard log_lock(log_mu_);
        if (!quiet_)
          for (const auto& line : tripped) spdlog::warn("{}", line);
      }
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<PGconn*, Link> links_;
  std::thread thread_;  // started by the first watch(); runs until the process ends
  std::mutex log_mu_;   // held while the thread writes its log lines
  bool quiet_ = false;  // the process is exiting: no more log lines
};

// Never destroyed: connections may be finished during static destruction, and the thread runs to the end.
Watcher& watcher() {
  static Watcher* const w = new Watcher();
  return *w;
}

std::atomic<milliseconds::rep> g_default_limit{600000};

}  // namespace

milliseconds default_reply_timeout() {
  return milliseconds(g_default_limit.load());
}

void set_default_reply_timeout(milliseconds limit) {
  g_default_limit = limit.count();
}

void watch(PGconn* conn, std::string what, milliseconds reply_timeout, Owner owner) {
  if (conn == nullptr || PQsocket(conn) < 0) return;
  watcher().watch(conn, std::move(what), reply_timeout, owner);
}

void set_reply_timeout(PGconn* conn, milliseconds reply_timeout) {
  watcher().set_limit(conn, reply_timeout);
}

void set_owner(PGconn* conn, Owner owner) {
  watcher().set_owner(conn, owner);
}

void forget(PGconn* conn) {
  if (conn != nullptr) watcher().forget(conn);
}

void abort(PGconn* conn) {
  if (conn != nullptr) watcher().abort(conn);
}

std::vector<InFlight> in_flight() {
  return watcher().in_flight();
}

}  // namespace cdcsync::pg_link
