#include "daemon/core/log_context.h"

#include <utility>

namespace cdcsync {
namespace {

LogFields& fields() {
  thread_local LogFields f;
  return f;
}

}  // namespace

const LogFields& log_fields() {
  return fields();
}

LogScope::LogScope(std::string table, std::optional<Lsn> lsn) : saved_(fields()) {
  if (!table.empty()) fields().table = std::move(table);
  if (lsn) fields().lsn = lsn;
}

LogScope::~LogScope() {
  fields() = std::move(saved_);
}

}  // namespace cdcsync
