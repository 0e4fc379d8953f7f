// classify: what every error that ends a session means, in one place.
#include "daemon/core/errors.h"

#include <fmt/format.h>

#include <new>

#include "checkpoints/checkpoint_store.h"
#include "daemon/config/config.h"
#include "decoders/byte_reader.h"
#include "decoders/pg.h"
#include "decoders/pgoutput.h"
#include "decoders/spool.h"
#include "sinks/kafka_sink.h"
#include "sinks/postgres_sink.h"
#include "sinks/sink.h"

namespace cdcsync {
namespace {

Classified retry(std::string component, std::string kind, const std::exception& e) {
  return {.error_class = ErrorClass::Transient,
          .exit_code = exit_code::kOk,
          .reason = std::move(kind),
          .component = std::move(component),
          .message = e.what()};
}

Classified stop(ErrorClass c, int code, std::string reason, std::string message) {
  return {.error_class = c, .exit_code = code, .reason = std::move(reason), .message = std::move(message)};
}

ErrorClass class_of_exit_code(int code) {
  switch (code) {
    case exit_code::kError:
      return ErrorClass::Config;
    case exit_code::kDataLossRisk:
      return ErrorClass::DataLossRisk;
    case exit_code::kApplyFailed:
      return ErrorClass::TargetRefused;
    case exit_code::kDecodeError:
      return ErrorClass::SourceStream;
    default:
      return ErrorClass::Internal;
  }
}

std::string stream_message(std::string_view kind, Lsn lsn, std::string_view what) {
  return fmt::format(
      "{} in the source stream at LSN {}: {}. Nothing past it was confirmed; retrying would read the same "
      "bytes again",
      kind == "protocol_violation" ? "a protocol violation" : "a message that cannot be decoded",
      lsn.valid() ? lsn.str() : std::string("(unknown)"), what);
}

// The source side's PgErrors (the target's come wrapped by the sink as TransientError or PermanentError).
Classified classify_pg(const PgError& e) {
  if (e.transient()) return retry("source", e.sqlstate().starts_with("08") ? "connection" : e.sqlstate(), e);
  if (e.sqlstate() == "55006") {  // object_in_use: another session streams the slot
    return {.error_class = ErrorClass::Standby,
            .exit_code = exit_code::kOk,
            .reason = "slot_in_use",
            .message = e.what()};
  }
  if (e.sqlstate().starts_with("XX") || e.sqlstate().empty()) {
    return stop(ErrorClass::Internal, exit_code::kInternal, "internal",
                fmt::format("unexpected error from the source: {}", e.what()));
  }
  return stop(ErrorClass::Config, exit_code::kError, "source_refused",
              fmt::format("the source refuses cdcsync: {} (a permission, a publication or an object only an "
                          "operator can fix)",
                          e.what()));
}

Classified classify_std(const std::exception& e) {
  if (const auto* f = dynamic_cast<const FatalError*>(&e)) {
    return stop(class_of_exit_code(f->exit_code()), f->exit_code(), f->reason(),
                fmt::format("{} ({})", f->what(), f->reason()));
  }
  if (const auto* p = dynamic_cast<const PermanentError*>(&e)) {
    return stop(
        ErrorClass::TargetRefused, exit_code::kApplyFailed, "apply_failed",
        fmt::format("the target refused source transaction {} on {} (SQLSTATE {}): {}. Nothing past it "
                    "was confirmed; fix the target, or skip the transaction, and start again",
                    p->lsn().str(), p->table(), p->sqlstate(), p->what()));
  }
  if (const auto* s = dynamic_cast<const SourceStreamError*>(&e)) {
    return stop(ErrorClass::SourceStream, exit_code::kDecodeError,
                s->kind() == "protocol_violation" ? "protocol_error" : "decode_error",
                stream_message(s->kind(), s->lsn(), s->what()));
  }
  if (const auto* pe = dynamic_cast<const ProtocolError*>(&e)) {
    return stop(ErrorClass::SourceStream, exit_code::kDecodeError, "protocol_error",
                stream_message("protocol_violation", pe->lsn(), pe->what()));
  }
  if (dynamic_cast<const DecodeError*>(&e) != nullptr) {
    return stop(ErrorClass::SourceStream, exit_code::kDecodeError, "decode_error",
                stream_message("malformed_message", Lsn{}, e.what()));
  }
  if (const auto* c = dynamic_cast<const CheckpointFatal*>(&e)) {
    return stop(ErrorClass::Config, exit_code::kError, "checkpoint_store",
                fmt::format("checkpoint store refused us ({}): {}", c->code(), c->what()));
  }
  if (dynamic_cast<const config::ConfigError*>(&e) != nullptr) {
    return stop(ErrorClass::Config, exit_code::kError, "config", e.what());
  }
  if (dynamic_cast<const LeaseLost*>(&e) != nullptr || dynamic_cast<const WriterLockHeld*>(&e) != nullptr) {
    return {.error_class = ErrorClass::Standby,
            .exit_code = exit_code::kOk,
            .reason = "standby",
            .message = e.what()};
  }
  if (const auto* pg = dynamic_cast<const PgError*>(&e)) return classify_pg(*pg);
  if (dynamic_cast<const KafkaUnavailable*>(&e) != nullptr) return retry("kafka", "transient", e);
  if (dynamic_cast<const TransientError*>(&e) != nullptr) return retry("target", "transient", e);
  if (dynamic_cast<const CheckpointUnavailable*>(&e) != nullptr) return retry("checkpoint", "unavailable", e);
  // The spool of streamed transactions: a full or failing disk, retried like the target's disk full.
  if (dynamic_cast<const SpoolError*>(&e) != nullptr) return retry("spool", "io", e);
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return stop(ErrorClass::Internal, exit_code::kInternal, "out_of_memory", "out of memory");
  }
  return stop(ErrorClass::Internal, exit_code::kInternal, "internal",
              fmt::format("unexpected internal error: {}", e.what()));
}

}  // namespace

Classified classify(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return classify_std(e);
  } catch (...) {
    return stop(ErrorClass::Internal, exit_code::kInternal, "internal",
                "unexpected internal error (not a std::exception)");
  }
}

}  // namespace cdcsync
