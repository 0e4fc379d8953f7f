// Kafka Connect schemas of Debezium's events, as JsonConverter writes them with schemas.enable=true.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/debezium/plan.h"

namespace cdcsync::debezium {

// Avro-style name sanitising of schema names: Debezium keeps [A-Za-z0-9_] (and '.' separators).
std::string schema_name_part(std::string_view s);

// A table's change events: the Envelope (before, after, source, op, ts_*, transaction) and the Key.
// Nullability is not in the Relation message: key columns are required, every other column optional.
std::string row_envelope_schema(const DebeziumOptions& options, const RelationDef& relation,
                                const std::vector<ColumnPlan>& columns);
std::string row_key_schema(const DebeziumOptions& options, const RelationDef& relation,
                           const std::vector<ColumnPlan>& columns);
// A table's truncate events: the Envelope without before/after.
std::string truncate_envelope_schema(const DebeziumOptions& options, const RelationDef& relation);

// Logical decoding messages: the key {prefix} and the Envelope with its `message` block.
const std::string& message_key_schema();
std::string message_envelope_schema(const DebeziumOptions& options);

// Transaction metadata events (BEGIN/END).
const std::string& transaction_key_schema();
const std::string& transaction_value_schema();

}  // namespace cdcsync::debezium
