// Tail: stream a slot, print each whole transaction's Debezium events on stdout, confirm what was printed.
#include "daemon/tools/tail.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "decoders/assembler.h"
#include "decoders/byte_reader.h"
#include "decoders/debezium_json.h"
#include "decoders/pg.h"
#include "decoders/pgoutput.h"
#include "decoders/relation_facts.h"
#include "decoders/replication_stream.h"
#include "decoders/type_catalog.h"

namespace cdcsync::tail {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// stdout, written with write(2) so a closed pipe is seen at once as EPIPE (SIGPIPE is ignored in main).
class StdoutWriter {
 public:
  enum class Result : std::uint8_t { Ok, Closed };
  Result write(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, bytes.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EPIPE) return Result::Closed;
        throw TailError(std::string("writing to stdout: ") + std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
    return Result::Ok;
  }
};

bool conninfo_has_password(const std::string& conninfo) {
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(conninfo.c_str(), &raw_error), &PQconninfoFree);
  std::unique_ptr<char, PqFreemem> err(raw_error);
  if (!opts) {
    std::string msg = err ? err.get() : "out of memory";
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw TailError("--source is not a valid conninfo: " + msg);
  }
  for (const PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (std::string_view(o->keyword) == "password" && o->val != nullptr && *o->val != '\0') return true;
  }
  return false;
}

std::string source_conninfo(const Options& o) {
  if (conninfo_has_password(o.source)) {
    throw TailError("--source contains a password; use --password-file, ~/.pgpass or PGPASSFILE instead");
  }
  if (o.password_file.empty()) return o.source;
  config::SecretFile secret{.spec = o.password_file, .path = std::filesystem::path(o.password_file)};
  return conninfo_with_password(o.source, config::read_secret(secret));
}

// What the ordinary connection tells us before streaming: the database name, and whether every publication
// exists (START_REPLICATION would only complain at the first change).
struct SourceFacts {
  std::string database;
};

SourceFacts inspect_source(const std::string& conninfo, const std::vector<std::string>& publications) {
  PgConn conn = pg_connect(conninfo, "the source");
  SourceFacts facts;
  {
    PgResult res =
        pg_exec(conn.get(), "SELECT current_database()", "reading the database name", PGRES_TUPLES_OK);
    facts.database = PQgetvalue(res.get(), 0, 0);
  }
  for (const std::string& pub : publications) {
    PgResult res = pg_exec_params(conn.get(), "SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1",
                                  {pub}, "looking up publication \"" + pub + "\"");
    if (PQntuples(res.get()) == 0) {
      throw TailError("publication \"" + pub + "\" does not exist in database \"" + facts.database + "\"");
    }
  }
  return facts;
}

// Opens the slot (creating it when asked) and returns where streaming starts.
Lsn prepare_slot(ReplicationStream& stream, const Options& o, std::optional<Lsn> from) {
  if (!valid_slot_name(o.slot)) {
    throw TailError("invalid slot name \"" + o.slot + "\": use 1 to 63 of [a-z0-9_]");
  }
  const std::optional<SlotState> state = stream.slot_state(o.slot);
  if (state) {
    if (state->plugin != "pgoutput") {
      throw TailError("slot \"" + o.slot + "\" uses plugin \"" + state->plugin + "\", not pgoutput");
    }
    if (o.temporary) {
      throw TailError("slot \"" + o.slot + "\" already exists; --temporary needs a new slot name");
    }
    if (state->active) {
      throw TailError("slot \"" + o.slot + "\" is in use by PID " + std::to_string(state->active_pid));
    }
    spdlog::info("tail: slot {} confirmed up to {}", o.slot, state->confirmed_flush_lsn.str());
  } else {
    if (!o.create_slot) {
      throw TailError("slot \"" + o.slot + "\" does not exist (add --create-slot to create it)");
    }
    const CreatedSlot created = stream.create_slot(o.slot, o.temporary, /*export_snapshot=*/false,
                                                   /*two_phase=*/false);
    spdlog::info("tail: created {}slot {} at {}", o.temporary ? "temporary " : "", o.slot,
                 created.consistent_point.str());
  }
  // 0/0 lets the server start at the slot's confirmed position.
  return from.value_or(Lsn{});
}

class Tail {
 public:
  Tail(const Options& o, ReplicationStream& stream, const TypeCatalog& catalog, CatalogFacts& facts,
       DebeziumOptions enc_options)
      : o_(o),
        stream_(stream),
        encoder_(std::move(enc_options), catalog, &facts),
        assembler_(
            AssemblerOptions{.protocol = {.version = o.proto_version,
                                          .streaming = o.streaming ? StreamingMode::On : StreamingMode::Off}},
            [this](Transaction&& t) { ready_.push_back(std::move(t)); }),
        status_interval_(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.status_interval_s))) {
  }

  void run(const std::atomic<bool>& stop) {
    last_change_ = Clock::now();
    last_status_ = Clock::now();
    const auto idle_limit =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.timeout_s));
    while (!done_) {
      if (stop.load()) {
        spdlog::debug("tail: stopping on signal");
        break;
      }
      if (o_.timeout_s > 0 && Clock::now() - last_change_ >= idle_limit) {
        spdlog::info("tail: no change for {} s, stopping", o_.timeout_s);
        break;
      }
      const StreamEvent ev = stream_.next(200ms);
      switch (ev.kind) {
        case StreamEvent::Kind::Ended:
          throw TailError("the source ended the replication stream on slot \"" + o_.slot + "\"");
        case StreamEvent::Kind::Timeout:
          // Everything that had arrived is printed: a good moment to confirm it.
          if (confirmed_ > reported_) report(false);
          break;
        case StreamEvent::Kind::Keepalive:
          received_ = std::max(received_, ev.wal_end);
          // Everything before a keepalive's position has been sent and read: with nothing held (and every
          // transaction handed out printed), transactions committing later all come after it.
          if (!assembler_.in_transaction() && assembler_.streamed_in_progress() == 0 &&
              assembler_.prepared_held() == 0 && ready_.empty() && ev.wal_end > confirmed_) {
            confirmed_ = ev.wal_end;
          }
          if (ev.reply_requested) report(false);
          break;
        case StreamEvent::Kind::Data:
          received_ = std::max(received_, ev.wal_end);
          feed(ev);
          break;
      }
      if (closed_) {
        report(false);  // what was printed whole before the pipe closed, nothing after
        return;
      }
      if (Clock::now() - last_status_ >= status_interval_) report(false);
    }
    report(false);
    stream_.finish();
  }

  bool closed() const { return closed_; }

 private:
  void feed(const StreamEvent& ev) {
    try {
      assembler_.feed(ev.payload, ev.wal_start);
    } catch (const DecodeError& e) {
      throw TailError("malformed pgoutput message at " + ev.wal_start.str() + " on slot \"" + o_.slot +
                      "\": " + e.what());
    } catch (const ProtocolError& e) {
      throw TailError(std::string("slot \"") + o_.slot + "\": " + e.what());
    }
    try {
      for (Transaction& txn : ready_) {
        if (!done_ && !closed_) print(txn);
      }
    } catch (const CatalogError& e) {
      throw TailError(e.what());
    }
    ready_.clear();
  }

  // Encodes one transaction (or chunk), writes and flushes its lines, and confirms it once whole.
  void print(const Transaction& txn) {
    out_.clear();
    bool cut = false;
    encoder_.encode(txn, [&](const DebeziumEvent& ev) {
      if (cut) return;
      if (ev.kind == EventKind::Change) {
        if (o_.limit > 0 && changes_ >= o_.limit) {
          cut = true;  // the rest of this transaction stays unprinted and unconfirmed
          return;
        }
        ++changes_;
        last_change_ = Clock::now();
      }
      append_line(ev);
    });
    if (!out_.empty() && writer_.write(out_) == StdoutWriter::Result::Closed) {
      closed_ = true;
      spdlog::debug("tail: stdout closed");
      return;
    }
    if (cut) {
      done_ = true;
      return;
    }
    if (txn.last_chunk && txn.info.end_lsn > confirmed_) confirmed_ = txn.info.end_lsn;
    if (o_.limit > 0 && changes_ >= o_.limit) done_ = true;
  }

  void append_line(const DebeziumEvent& ev) {
    if (o_.keys) {
      out_ += "{\"key\":";
      if (ev.has_key)
        out_.append(ev.key);
      else
        out_ += "null";
      out_ += ",\"value\":";
      if (ev.has_value)
        out_.append(ev.value);
      else
        out_ += "null";
      out_ += "}\n";
      return;
    }
    // Without keys a tombstone (null value) carries nothing: it is not printed.
    if (!ev.has_value) return;
    out_.append(ev.value);
    out_.push_back('\n');
  }

  void report(bool reply_requested) {
    stream_.send_status(std::max(received_, confirmed_), confirmed_, confirmed_, reply_requested);
    reported_ = confirmed_;
    last_status_ = Clock::now();
  }

  const Options& o_;
  ReplicationStream& stream_;
  DebeziumEncoder encoder_;
  TransactionAssembler assembler_;
  std::vector<Transaction> ready_;
  StdoutWriter writer_;
  std::string out_;
  Clock::duration status_interval_;
  Clock::time_point last_change_;
  Clock::time_point last_status_;
  Lsn received_;
  Lsn confirmed_;  // end of the last whole transaction printed (or an idle keepalive position)
  Lsn reported_;
  std::uint64_t changes_ = 0;
  bool done_ = false;
  bool closed_ = false;
};

}  // namespace

void run(const Options& o, const std::atomic<bool>& stop) {
  const std::string conninfo = source_conninfo(o);

  const SourceFacts facts = inspect_source(conninfo, o.publications);
  // The source's catalog, over a connection of its own kept for the tail's life: the types now, and per
  // Relation message the table's NOT NULL columns, defaults and key (one query each).
  TypeCatalog catalog;
  PgCatalogFacts catalog_facts{conninfo, catalog};
  try {
    catalog_facts.reload_types();
  } catch (const CatalogError& e) {
    throw TailError(e.what());
  }
  spdlog::debug("tail: {} types known", catalog.size());

  ReplicationStream stream{conninfo};
  const Lsn start = prepare_slot(stream, o, o.from);
  StreamOptions stream_options{.proto_version = o.proto_version,
                               .publications = o.publications,
                               .streaming = o.streaming,
                               .messages = true};
  stream.start(o.slot, start, stream_options);
  spdlog::info("tail: streaming slot {} (publication {}) from {}", o.slot,
               publication_names_option(o.publications),
               start.valid() ? start.str() : std::string("its confirmed position"));

  DebeziumOptions enc{.topic_prefix = o.topic_prefix,
                      .database = facts.database,
                      .include_schema = o.schemas,
                      .transaction_metadata = o.transaction_metadata,
                      .tombstones_on_delete = o.tombstones,
                      .skipped_operations = o.skipped_operations};
  Tail tail{o, stream, catalog, catalog_facts, std::move(enc)};
  tail.run(stop);
}

}  // namespace cdcsync::tail
