// Internal to daemon/config: the checks that look at more than one value (a table's columns against its
// key and guard columns, conninfos, the Redis URL, metrics.listen, keys that depend on each other).
#pragma once

#include <string>

#include "daemon/config/config.h"
#include "daemon/config/issues.h"

namespace cdcsync::config {

// One [[tables]] entry, as soon as it is read; `prefix` is "tables[i]".
void validate_table(const std::string& prefix, const TableMapping& mapping, Issues& issues);

// The whole file once every key is read. Fills what is parsed from checked values: checkpoint.endpoint,
// metrics.host and metrics.port.
void validate_config(Config& config, Issues& issues);

}  // namespace cdcsync::config
