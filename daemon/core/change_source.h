// The seam between the pipeline and where changes come from: the customer DB's replication stream in
// production (PgChangeSource), a scripted fake in unit tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"

namespace cdcsync {

struct Polled {
  bool ended = false;            // the server ended the stream (the session must restart)
  bool reply_requested = false;  // the server asked for a status update now
  Lsn received;                  // the server's WAL end as last seen
  // Set when no source transaction is open: once everything handed out so far is durable, idle_lsn may
  // be confirmed (transactions committing later are all after it).
  std::optional<Lsn> idle_lsn;
};

class ChangeSource {
 public:
  virtual ~ChangeSource() = default;
  // Waits at most `timeout`; appends ready transactions (or chunks of one) to `out`, in commit order.
  virtual Polled poll(std::chrono::milliseconds timeout, std::vector<Transaction>& out) = 0;
  // Standby status update: `flushed` is durable in the target and mirrored in the checkpoint store.
  virtual void report(Lsn written, Lsn flushed) = 0;
  // Takes back transactions the pipeline has applied (their memory may be reused); called on the thread
  // that polls. Leaves `spent` empty.
  virtual void recycle(std::vector<Transaction>& spent) { spent.clear(); }
  // Called on the polling thread while the pipeline has no room for what the last poll returned: reads what
  // the server has already sent when it can be held without handing anything out (the blocks of streamed
  // transactions, spooled while a committed one is replayed), so the server goes on sending meanwhile.
  // Returns whether calling again soon can take more.
  virtual bool absorb() { return false; }
  // Messages absorb() has taken so far (this source's lifetime), for the metrics.
  virtual std::uint64_t absorbed() const { return 0; }
};

}  // namespace cdcsync
