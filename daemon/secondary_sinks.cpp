#include "daemon/secondary_sinks.h"

namespace cdcsync {

std::vector<std::unique_ptr<Sink>> make_secondary_sinks(const Config& config) {
  std::vector<std::unique_ptr<Sink>> sinks;
  (void)config;
  return sinks;
}

}  // namespace cdcsync
