// `cdcsync check`, source side: what the customer DB must offer a pipeline (logical WAL, a replication
// role, the publication with every mapped table and column, a replica identity that covers the key,
// SELECT on the mapped columns for snapshots, a usable slot).
#pragma once

#include <string>
#include <vector>

#include "decoders/pg.h"
#include "sinks/mapping.h"

namespace cdcsync {

struct SourceProblem {
  std::string subject;  // table, publication, slot or server setting
  std::string problem;
  std::string fix;
};

std::vector<SourceProblem> check_source(PGconn* source, const Mapping& mapping, const std::string& publication,
                                        const std::string& slot, bool create_slot);

}  // namespace cdcsync
