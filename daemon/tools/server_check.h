// `cdcsync check` and `cdcsync target-ddl`: the live source and order servers held against the config (the
// source's offer in source_check.h, the target's tables in sinks/target_ddl.h, and the target session's
// compression, durability and copy formats).
#pragma once

#include <functional>
#include <string>

#include "daemon/config/config.h"
#include "sinks/mapping.h"
#include "sinks/target_ddl.h"

namespace cdcsync::check {

// What a check tells as it goes: each problem with its fix, and what it found that is fine to know.
struct Listener {
  std::function<void(const std::string& subject, const std::string& problem, const std::string& fix)> problem;
  std::function<void(const std::string& line)> note;
};

// The source: publication, replica identity, privileges, slot; a connection failure is a problem too.
// Fills `types` with the mapped tables' source column types (for the target's checks).
void check_source_server(const config::Config& config, const Mapping& mapping, SourceTypes& types,
                         const Listener& listener);

// The target: tables and privileges, TOAST compression, commit durability and how each table is copied.
void check_target_server(const config::Config& config, const Mapping& mapping, const SourceTypes& types,
                         const Listener& listener);

// The idempotent DDL the order DB needs for the mapping, with the column types read from the source.
std::string target_ddl_for(const config::Config& config);

}  // namespace cdcsync::check
