// The reply deadline of every PostgreSQL connection cdcsync opens (pg_connect registers each one here).
//
// statement_timeout is the server's, keepalives and tcp_user_timeout the kernel's: when the server, or
// something between (a stuck pooler or load balancer, a half-open link through a proxy), takes the bytes
// but never answers, the peer's kernel still ACKs, and a blocking libpq call (PQexec, PQgetCopyData(..., 0))
// waits forever. One watcher thread looks at every registered TCP socket's TCP_INFO: a connection that
// has a command in progress (libpq's PQtransactionStatus is PQTRANS_ACTIVE) and has neither received nor
// sent a byte for longer than its limit is waiting on a reply that is not coming. The watcher shuts its
// socket down; the blocked call then fails as a lost connection (SQLSTATE 08006, transient) and its caller
// reconnects. No caller arms anything, so a new caller cannot forget to; and a COPY that streams rows in or
// out, a replication connection that sends its status updates, an idle session, none of them looks like a
// wait. Unix-socket connections have no TCP_INFO and no deadline (the local server's socket does not go
// half-open); abort() works on them too.
//
// The watcher reads libpq's command state from its own thread: a plain read of an enum the owning thread
// writes, where a stale value only delays the verdict by one look; the connection cannot be freed meanwhile
// (PqFinish calls forget(), which takes the watcher's mutex, before PQfinish). (The socket alone cannot
// tell: TCP_INFO's last-sent and last-received times have the kernel tick's granularity, so a reply read
// and the next statement sent in the same tick, the apply loop's usual rhythm, look like an idle session.)
// It keeps its own duplicate of each socket, so a descriptor libpq closes and the process reuses is never
// shut down by mistake.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace cdcsync::pg_link {

// The limit of a connection opened without one of its own (network.reply_timeout_ms; 10 min until set).
std::chrono::milliseconds default_reply_timeout();
void set_default_reply_timeout(std::chrono::milliseconds limit);

// Whose waits a connection's are.
enum class Owner : std::uint8_t {
  MainLoop,    // the runner's, the applier's, a command's: a wait in flight vouches for their liveness
  SideThread,  // a helper thread's (heartbeat, metrics poller, replication receiver): it does not
};

// Watches `conn`'s socket from now on; `what` names the server in the log line ("the order database").
// A limit of 0: no deadline (abort() still works).
void watch(PGconn* conn, std::string what, std::chrono::milliseconds reply_timeout, Owner owner);
// Changes the limit of a watched connection (a statement known to take longer, such as a slot creation).
void set_reply_timeout(PGconn* conn, std::chrono::milliseconds reply_timeout);
// Changes whose waits the connection's are (a replication connection handed to the receiver's thread).
void set_owner(PGconn* conn, Owner owner);
// Stops watching; called before PQfinish (PqFinish does).
void forget(PGconn* conn);
// Shuts the connection's socket down now, from any thread: a call blocked on it fails at once (a stop that
// must not wait for the deadline). No effect on a connection that is not watched.
void abort(PGconn* conn);

// A command in progress on a main-loop connection, silent for `waited` (no byte either way), within its
// limit: a live wait the watcher ends at `limit` at the latest. The health check the watchdog is fed from
// reads these.
struct InFlight {
  std::string what;
  std::chrono::milliseconds waited;
  std::chrono::milliseconds limit;
};
std::vector<InFlight> in_flight();

}  // namespace cdcsync::pg_link
