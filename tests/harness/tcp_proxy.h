// A loopback TCP proxy the test controls, to put network faults between the daemon and one server: added
// latency per direction, a stall (nothing forwarded, sockets kept open), a reset of every connection (RST),
// a half-open link (nothing forwarded or answered, ever, on the connections it catches), and refused
// connections. One thread with poll(); every control call takes effect before it returns.
//
// What the kernel still does: the proxy's sockets are open, so the daemon's TCP keepalives and data are
// ACKed while stalled or half-open. Only application-level deadlines (replication receive timeout, a
// client-side statement deadline, a command timeout) can notice; that is the point of the test.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cdcsync::test {

class TcpProxy {
 public:
  // Listens on 127.0.0.1:<free port> and forwards every connection to 127.0.0.1:upstream_port.
  explicit TcpProxy(int upstream_port, std::string name = "proxy");
  ~TcpProxy();  // closes everything, joins the thread
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const;
  const std::string& name() const;

  // Bytes read from the client are forwarded `to_server` later, bytes from the server `to_client` later.
  void set_latency(std::chrono::milliseconds to_server, std::chrono::milliseconds to_client);
  // Stop forwarding in both directions (nothing is read, so the senders see backpressure) while every
  // socket stays open; new connections are accepted and stalled too. stall(false) resumes them all.
  void stall(bool on);
  // Closes every open connection, both sides, with RST (SO_LINGER 0).
  void reset_all();
  // Half-open: every open connection, and every one accepted while it is on, is cut off for good: what
  // either side sends is read and discarded, nothing is ever answered, and the client side stays open
  // until the client closes it. half_open(false) lets new connections through again and resets the caught
  // ones, as the first packet after a partition heals does on a connection the far side has forgotten.
  void half_open(bool on);
  // Accept new connections and reset them at once (RST), leaving open ones alone.
  void refuse_new(bool on);
  // Back to plain forwarding for new connections: no latency, no stall, no half-open, no refusal.
  void heal();
  // Once: the next time `marker` passes from a server to its client within one read, the four bytes just
  // before it (in a pgoutput message, the length of the column value it starts) become 0x7ffffff0, so the
  // client decodes a value longer than the message. A corrupted message in flight, for decode-error drills.
  void corrupt_length_before(std::string marker);
  std::uint64_t corrupted() const;  // how many times it happened

  std::uint64_t accepted() const;  // connections accepted so far
  std::size_t open() const;        // connections open now (client side)
  std::uint64_t bytes_forwarded() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cdcsync::test
