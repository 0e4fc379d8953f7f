// The sinks a pipeline feeds besides its primary one (the order DB): each is built from the config when
// enabled, and the runner hands them all to a FanoutSink.
#pragma once

#include <memory>
#include <vector>

#include "daemon/config.h"
#include "sinks/sink.h"

namespace cdcsync {

std::vector<std::unique_ptr<Sink>> make_secondary_sinks(const Config& config);

}  // namespace cdcsync
