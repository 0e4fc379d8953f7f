// The reply deadline every pg_connect carries (decoders/pg_link.h), against a fake server on loopback that
// speaks just enough of the protocol (the startup, then one reply per query, late or never): a command
// without reply is cut off as a lost connection, a slow reply within the limit and an idle session are
// left alone, abort() ends a blocked command at once, and in_flight() sees a main-loop command waiting.
#include "decoders/pg_link.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "decoders/pg.h"
#include "tests/harness/eventually.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string message(char type, const std::string& body) {
  std::string m(1, type);
  put_u32(m, static_cast<std::uint32_t>(body.size() + 4));
  return m + body;
}

bool read_exactly(int fd, std::size_t n, std::string& out) {
  out.resize(n);
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, out.data() + got, n - got);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::uint32_t u32(const std::string& s, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

// Accepts one connection: trust authentication, then each query answered after `reply_after`, or never.
class FakeServer {
 public:
  explicit FakeServer(std::optional<std::chrono::milliseconds> reply_after) : reply_after_(reply_after) {
    listen_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_, 4) != 0 ||
        getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("fake server: cannot listen");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    shutdown(listen_, SHUT_RDWR);
    close(listen_);
    if (client_ >= 0) shutdown(client_, SHUT_RDWR);
    thread_.join();
    if (client_ >= 0) close(client_);
  }

  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) +
           " user=test dbname=test sslmode=disable gssencmode=disable";
  }

 private:
  void serve() {
    const int c = accept(listen_, nullptr, nullptr);
    if (c < 0) return;
    client_ = c;
    std::string buf;
    if (!read_exactly(c, 4, buf) || !read_exactly(c, u32(buf, 0) - 4, buf)) return;  // the startup packet
    send_all(message('R', std::string("\0\0\0\0", 4)) + message('Z', "I"));          // trust; ready
    while (true) {
      std::string header;
      if (!read_exactly(c, 5, header) || !read_exactly(c, u32(header, 1) - 4, buf)) return;
      if (header[0] == 'X') return;  // Terminate
      if (!reply_after_) continue;   // never answered
      std::this_thread::sleep_for(*reply_after_);
      send_all(message('C', std::string("SELECT 0\0", 9)) + message('Z', "I"));
    }
  }
  void send_all(const std::string& data) const {
    if (send(client_, data.data(), data.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(data.size())) {
      // the client went: the test sees it
    }
  }

  std::optional<std::chrono::milliseconds> reply_after_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<int> client_{-1};
  std::thread thread_;
};

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

TEST(PgLink, ACommandWithoutReplyIsCutOffAtItsDeadlineAsALostConnection) {
  FakeServer server{std::nullopt};
  PgConn conn = pg_connect(server.conninfo(), "the fake server", {.reply_timeout = 400ms});
  const auto t0 = Clock::now();
  try {
    pg_exec(conn.get(), "SELECT 1", "asking the fake server");
    FAIL() << "a command without reply returned";
  } catch (const PgError& e) {
    EXPECT_TRUE(e.transient()) << e.what();
    EXPECT_EQ(e.sqlstate(), kConnectionLost) << e.what();
  }
  const auto took = ms_since(t0);
  EXPECT_GE(took, 400);
  EXPECT_LT(took, 2000);  // the limit, plus at most a look (a quarter of it) and scheduling
}

TEST(PgLink, AReplyThatComesWithinTheDeadlineIsWaitedFor) {
  FakeServer server{300ms};
  PgConn conn = pg_connect(server.conninfo(), "the fake server", {.reply_timeout = 1500ms});
  EXPECT_NO_THROW(pg_exec(conn.get(), "SELECT 1", "asking the fake server"));
  EXPECT_NO_THROW(pg_exec(conn.get(), "SELECT 1", "asking the fake server again"));
}

TEST(PgLink, AnIdleSessionOutlivesItsDeadline) {
  FakeServer server{0ms};
  PgConn conn = pg_connect(server.conninfo(), "the fake server", {.reply_timeout = 200ms});
  pg_exec(conn.get(), "SELECT 1", "asking the fake server");
  // What is tested is time passing with nothing to wait for: several of the watcher's looks.
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK);
  EXPECT_NO_THROW(pg_exec(conn.get(), "SELECT 1", "asking the fake server after a pause"));
}

TEST(PgLink, InFlightSeesAMainLoopCommandWaitingAndAbortEndsItAtOnce) {
  FakeServer server{std::nullopt};
  PgConn conn = pg_connect(server.conninfo(), "the fake server", {.reply_timeout = 60s});
  auto blocked = std::async(std::launch::async, [&] {
    try {
      pg_exec(conn.get(), "SELECT 1", "asking the fake server");
      return std::string("returned");
    } catch (const PgError& e) {
      return e.sqlstate();
    }
  });
  ASSERT_TRUE(test::eventually(
      [&] {
        for (const auto& f : pg_link::in_flight()) {
          if (f.what == "the fake server" && f.limit == 60s) return true;
        }
        return false;
      },
      5s));
  const auto t0 = Clock::now();
  pg_link::abort(conn.get());
  ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(blocked.get(), kConnectionLost);
  EXPECT_LT(ms_since(t0), 1000);
}

TEST(PgLink, ASideThreadsCommandDoesNotVouchForTheMainLoop) {
  FakeServer server{std::nullopt};
  PgConn conn = pg_connect(server.conninfo(), "the side server",
                           {.reply_timeout = 60s, .owner = pg_link::Owner::SideThread});
  ASSERT_EQ(PQsendQuery(conn.get(), "SELECT 1"), 1);
  ASSERT_EQ(PQflush(conn.get()), 0);
  // In progress (sent, not answered), but a helper's.
  ASSERT_EQ(PQtransactionStatus(conn.get()), PQTRANS_ACTIVE);
  for (const auto& f : pg_link::in_flight()) EXPECT_NE(f.what, "the side server");
}

}  // namespace
}  // namespace cdcsync
