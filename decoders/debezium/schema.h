// Kafka Connect schemas of Debezium's events, as JsonConverter writes them with schemas.enable=true.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/debezium/plan.h"

namespace cdcsync::debezium {

// A table's change events: the Envelope (before, after, source, op, ts_*, transaction) and the Key, named
// after the plan's topic (TableSchemaBuilder.create with schema.name.adjustment.mode=none: the topic name,
// then ".Envelope", ".Value", ".Key"). Each field is optional as its column is, with its default.
std::string row_envelope_schema(const DebeziumOptions& options, const RelationPlan& plan);
std::string row_key_schema(const DebeziumOptions& options, const RelationPlan& plan);

// Logical decoding messages (PostgresSchemaFactory): the MessageKey {prefix} and the MessageValue {op, ts_ms,
// source, message}.
const std::string& message_key_schema();
std::string message_value_schema(const DebeziumOptions& options);

// Transaction metadata events (BEGIN/END).
const std::string& transaction_key_schema();
const std::string& transaction_value_schema();

}  // namespace cdcsync::debezium
