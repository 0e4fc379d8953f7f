#include "tests/harness/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace cdcsync::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxQueued = 1 << 20;  // per direction: stop reading beyond this (backpressure)

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void close_with_rst(int fd) {
  if (fd < 0) return;
  const linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

struct Chunk {
  Clock::time_point due;
  std::string data;
  std::size_t off = 0;
};

// One direction of a connection: what was read from one side and is not yet written to the other.
struct Flow {
  std::deque<Chunk> chunks;
  std::size_t queued = 0;
  bool eof = false;  // the reading side ended; close once drained

  bool due(Clock::time_point now) const { return !chunks.empty() && chunks.front().due <= now; }
};

struct Conn {
  int client = -1;
  int server = -1;
  bool dead = false;  // half-open: read and discard, never answer
  Flow to_server;
  Flow to_client;
};

}  // namespace

struct TcpProxy::Impl {
  int upstream_port;
  std::string name;
  int listen_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread thread;
  std::atomic<bool> quit{false};

  std::mutex mu;
  std::vector<std::function<void()>> commands;  // run on the proxy thread

  // Proxy-thread state.
  std::list<Conn> conns;
  std::chrono::milliseconds latency_to_server{0};
  std::chrono::milliseconds latency_to_client{0};
  bool stalled = false;
  bool half_open = false;
  bool refuse = false;

  std::string corrupt_marker;  // corrupt_length_before: armed while not empty
  std::atomic<std::uint64_t> corrupted{0};

  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::size_t> open{0};
  std::atomic<std::uint64_t> forwarded{0};

  void run_on_loop(std::function<void()> f) {
    std::promise<void> done;
    auto fut = done.get_future();
    {
      std::lock_guard lock(mu);
      commands.push_back([&f, &done] {
        f();
        done.set_value();
      });
    }
    const std::uint64_t one = 1;
    if (write(wake_fd, &one, sizeof one) < 0) throw std::runtime_error("proxy wake failed");
    fut.wait();
  }

  void close_conn(std::list<Conn>::iterator it, bool rst) {
    if (rst) {
      close_with_rst(it->client);
      close_with_rst(it->server);
    } else {
      if (it->client >= 0) close(it->client);
      if (it->server >= 0) close(it->server);
    }
    conns.erase(it);
    open = conns.size();
  }

  void accept_one() {
    const int c = accept(listen_fd, nullptr, nullptr);
    if (c < 0) return;
    ++accepted;
    if (refuse) {
      close_with_rst(c);
      return;
    }
    Conn conn;
    conn.client = c;
    const int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (half_open) {
      conn.dead = true;
    } else {
      const int s = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port));
      if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (s >= 0) close(s);
        close_with_rst(c);  // the server is down: the client sees a reset, as it would without the proxy
        return;
      }
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      set_nonblocking(s);
      conn.server = s;
    }
    set_nonblocking(c);
    conns.push_back(std::move(conn));
    open = conns.size();
  }

  // Reads what `from` has into `flow`; false when the connection must go (error).
  bool read_into(int from, Flow& flow, std::chrono::milliseconds latency) {
    char buf[65536];
    const ssize_t n = read(from, buf, sizeof buf);
    if (n > 0) {
      flow.chunks.push_back(Chunk{Clock::now() + latency, std::string(buf, static_cast<std::size_t>(n))});
      flow.queued += static_cast<std::size_t>(n);
      return true;
    }
    if (n == 0) {
      flow.eof = true;
      return true;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }

  bool write_due(int to, Flow& flow) {
    const auto now = Clock::now();
    while (flow.due(now)) {
      Chunk& ch = flow.chunks.front();
      const ssize_t n = send(to, ch.data.data() + ch.off, ch.data.size() - ch.off, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
      ch.off += static_cast<std::size_t>(n);
      flow.queued -= static_cast<std::size_t>(n);
      forwarded += static_cast<std::uint64_t>(n);
      if (ch.off < ch.data.size()) return true;
      flow.chunks.pop_front();
    }
    return true;
  }

  void corrupt_if_armed(std::string& data) {
    if (corrupt_marker.empty()) return;
    const auto at = data.find(corrupt_marker);
    if (at == std::string::npos || at < 4) return;
    const char length[4] = {0x7f, static_cast<char>(0xff), static_cast<char>(0xff), static_cast<char>(0xf0)};
    data.replace(at - 4, 4, length, 4);
    corrupt_marker.clear();
    ++corrupted;
  }

  static bool discard(int fd) {
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
  }

  void loop() {
    std::vector<pollfd> fds;
    std::vector<std::list<Conn>::iterator> owner;  // per pollfd from index 2
    while (!quit) {
      fds.clear();
      owner.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      fds.push_back({listen_fd, POLLIN, 0});
      auto now = Clock::now();
      int timeout_ms = 200;
      for (auto it = conns.begin(); it != conns.end(); ++it) {
        if (it->dead) {
          fds.push_back({it->client, POLLIN, 0});
          owner.push_back(it);
          if (it->server >= 0) {
            fds.push_back({it->server, POLLIN, 0});
            owner.push_back(it);
          }
          continue;
        }
        if (stalled) continue;
        short ce = 0;
        short se = 0;
        if (!it->to_server.eof && it->to_server.queued < kMaxQueued) ce |= POLLIN;
        if (!it->to_client.eof && it->to_client.queued < kMaxQueued) se |= POLLIN;
        if (it->to_client.due(now)) ce |= POLLOUT;
        if (it->to_server.due(now)) se |= POLLOUT;
        for (const Flow* f : {&it->to_server, &it->to_client}) {
          if (!f->chunks.empty() && f->chunks.front().due > now) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(f->chunks.front().due - now).count() +
                1;
            timeout_ms = std::min<int>(timeout_ms, static_cast<int>(left));
          }
        }
        fds.push_back({it->client, ce, 0});
        owner.push_back(it);
        fds.push_back({it->server, se, 0});
        owner.push_back(it);
      }
      if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;

      std::vector<std::list<Conn>::iterator> gone;
      auto mark_gone = [&](std::list<Conn>::iterator it) {
        for (const auto& g : gone) {
          if (g == it) return;
        }
        gone.push_back(it);
      };
      for (std::size_t i = 2; i < fds.size(); ++i) {
        auto it = owner[i - 2];
        const short re = fds[i].revents;
        if (re == 0) continue;
        const bool is_client = fds[i].fd == it->client;
        if (it->dead) {
          if (!discard(fds[i].fd)) {
            if (is_client) {
              mark_gone(it);
            } else {
              close(it->server);
              it->server = -1;
            }
          }
          continue;
        }
        Flow& in = is_client ? it->to_server : it->to_client;
        Flow& out = is_client ? it->to_client : it->to_server;
        const auto in_latency = is_client ? latency_to_server : latency_to_client;
        if ((re & (POLLIN | POLLHUP | POLLERR)) != 0 && !in.eof) {
          const std::size_t chunks_before = in.chunks.size();
          if (!read_into(fds[i].fd, in, in_latency)) {
            mark_gone(it);
            continue;
          }
          if (!is_client && in.chunks.size() > chunks_before) corrupt_if_armed(in.chunks.back().data);
        }
        if ((re & POLLOUT) != 0 && !write_due(fds[i].fd, out)) mark_gone(it);
      }
      // A side that ended closes the connection once what it sent has been delivered.
      for (auto it = conns.begin(); it != conns.end(); ++it) {
        if (it->dead || stalled) continue;
        if ((it->to_server.eof && it->to_server.chunks.empty()) ||
            (it->to_client.eof && it->to_client.chunks.empty())) {
          mark_gone(it);
        }
      }
      for (auto it : gone) close_conn(it, false);

      if ((fds[1].revents & POLLIN) != 0) accept_one();
      if ((fds[0].revents & POLLIN) != 0) {
        std::uint64_t n = 0;
        if (read(wake_fd, &n, sizeof n) < 0) {
          // nothing to drain
        }
        std::vector<std::function<void()>> todo;
        {
          std::lock_guard lock(mu);
          todo.swap(commands);
        }
        for (auto& f : todo) f();
      }
    }
  }
};

TcpProxy::TcpProxy(int upstream_port, std::string name) : impl_(std::make_unique<Impl>()) {
  impl_->upstream_port = upstream_port;
  impl_->name = std::move(name);
  impl_->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(impl_->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (impl_->listen_fd < 0 || bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(impl_->listen_fd, 64) != 0 ||
      getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("tcp proxy " + impl_->name + ": cannot listen: " + std::strerror(errno));
  }
  impl_->port = ntohs(addr.sin_port);
  set_nonblocking(impl_->listen_fd);
  impl_->wake_fd = eventfd(0, EFD_NONBLOCK);
  impl_->thread = std::thread([this] { impl_->loop(); });
}

TcpProxy::~TcpProxy() {
  impl_->run_on_loop([this] {
    while (!impl_->conns.empty()) impl_->close_conn(impl_->conns.begin(), true);
    impl_->quit = true;
  });
  impl_->thread.join();
  close(impl_->listen_fd);
  close(impl_->wake_fd);
}

int TcpProxy::port() const {
  return impl_->port;
}
const std::string& TcpProxy::name() const {
  return impl_->name;
}

void TcpProxy::set_latency(std::chrono::milliseconds to_server, std::chrono::milliseconds to_client) {
  impl_->run_on_loop([&] {
    impl_->latency_to_server = to_server;
    impl_->latency_to_client = to_client;
  });
}

void TcpProxy::stall(bool on) {
  impl_->run_on_loop([&] { impl_->stalled = on; });
}

void TcpProxy::reset_all() {
  impl_->run_on_loop([&] {
    while (!impl_->conns.empty()) impl_->close_conn(impl_->conns.begin(), true);
  });
}

void TcpProxy::half_open(bool on) {
  impl_->run_on_loop([&] {
    impl_->half_open = on;
    if (!on) {
      // Healed: the first packet on a connection the far side forgot gets a reset.
      for (auto it = impl_->conns.begin(); it != impl_->conns.end();) {
        auto next = std::next(it);
        if (it->dead) impl_->close_conn(it, true);
        it = next;
      }
      return;
    }
    for (auto& c : impl_->conns) {
      c.dead = true;
      c.to_server = {};
      c.to_client = {};
    }
  });
}

void TcpProxy::refuse_new(bool on) {
  impl_->run_on_loop([&] { impl_->refuse = on; });
}

void TcpProxy::heal() {
  impl_->run_on_loop([&] {
    impl_->latency_to_server = impl_->latency_to_client = std::chrono::milliseconds(0);
    impl_->stalled = impl_->half_open = impl_->refuse = false;
  });
}

void TcpProxy::corrupt_length_before(std::string marker) {
  impl_->run_on_loop([&] { impl_->corrupt_marker = std::move(marker); });
}

std::uint64_t TcpProxy::corrupted() const {
  return impl_->corrupted.load();
}

std::uint64_t TcpProxy::accepted() const {
  return impl_->accepted.load();
}
std::size_t TcpProxy::open() const {
  return impl_->open.load();
}
std::uint64_t TcpProxy::bytes_forwarded() const {
  return impl_->forwarded.load();
}

}  // namespace cdcsync::test
