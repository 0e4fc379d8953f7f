// A reload (SIGHUP): what the file now says against the running config, and what of it a running daemon
// takes. Log level and format, the batch bounds and the table mapping (tables added or removed, columns,
// transforms) apply live; every other key (conninfos, slot, publication, pipeline name, Redis, metrics,
// memory, ...) needs a restart and keeps its running value until one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/config.h"

namespace cdcsync::config {

struct ReloadPlan {
  Config next;                       // the running config with the file's live changes applied
  std::vector<std::string> live;     // changed keys applied now ("log.level", "tables.ref.customer")
  std::vector<std::string> restart;  // changed keys kept at their running value until a restart
  std::vector<std::string> added;    // target tables mapped now and not before
  std::vector<std::string> removed;  // target tables mapped before and not now
  bool changes_pipeline() const;     // a live change beyond log.* (the session restarts to take it)
};

// Whether a key ("batch.max_rows", "tables.ref.customer") applies without a restart.
bool applies_live(std::string_view key);

// `file` is the new file, loaded and validated (load_config).
ReloadPlan plan_reload(const Config& running, const Config& file);

}  // namespace cdcsync::config
