// The sinks a pipeline feeds besides its primary one (the order DB): each is built from the config when
// enabled, and the runner hands them all to a FanoutSink.
#pragma once

#include <memory>
#include <vector>

#include "daemon/config/config.h"
#include "sinks/kafka_sink.h"
#include "sinks/redis_archive_sink.h"
#include "sinks/sink.h"

namespace cdcsync {

// `mapping`: the pipeline's mapping, with the source OIDs its session looked up (a renamed source table is
// bound to its entry in every sink alike). `kafka`: the Kafka sink's metrics hooks, when [kafka] is enabled
// next to the order DB. `memory`: the pipeline's memory budget, which their encoders' buffers count against
// (null: not counted).
std::vector<std::unique_ptr<Sink>> make_secondary_sinks(const Config& config, const Mapping& mapping,
                                                        const KafkaSinkObserver& kafka = {},
                                                        const ArchiveSinkObserver& archive = {},
                                                        MemoryBudget* memory = nullptr);

// The sink [kafka] describes (not connected yet): a secondary, or the primary of a Kafka-only pipeline.
std::unique_ptr<KafkaSink> make_kafka_sink(const Config& config, const Mapping& mapping,
                                           KafkaSinkObserver observer, MemoryBudget* memory = nullptr);

// The event archive [archive] describes: a Redis stream on the checkpoint Redis (sinks/redis_archive_sink.h).
std::unique_ptr<Sink> make_archive_sink(const Config& config, const Mapping& mapping,
                                        ArchiveSinkObserver observer = {}, MemoryBudget* memory = nullptr);

}  // namespace cdcsync
