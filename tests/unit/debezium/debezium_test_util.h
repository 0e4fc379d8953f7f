// Helpers for the Debezium encoder tests: relations, tuples and a parsed view of an event.
#pragma once

#include <rapidjson/document.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/debezium_json.h"

namespace cdcsync::testing {

struct Col {
  std::string name;
  Oid oid;
  std::int32_t typmod = -1;
  bool key = false;
};

inline RelationPtr make_relation(std::string schema, std::string table, std::vector<Col> cols) {
  auto rel = std::make_shared<RelationDef>();
  rel->id = RelationId{16400};
  rel->schema = std::move(schema);
  rel->name = std::move(table);
  for (Col& c : cols) rel->columns.push_back({c.name, c.oid, c.typmod, c.key});
  return rel;
}

// nullopt is SQL NULL.
inline Tuple text_tuple(std::vector<std::optional<std::string>> values) {
  Tuple t;
  for (const auto& v : values) {
    if (v) {
      t.add_text(*v);
    } else {
      t.add_null();
    }
  }
  return t;
}

inline DebeziumOptions test_options() {
  DebeziumOptions o;
  o.topic_prefix = "PostgreSQL_server";
  o.database = "postgres";
  o.clock_us = [] { return std::int64_t{1'559'033'904'863'841}; };
  return o;
}

inline rapidjson::Document parse(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  return d;
}

// Encodes one insert of a single column `v` with the given type and returns the parsed value event.
struct OneValue {
  rapidjson::Document doc;
  const rapidjson::Value& after() const { return doc["after"]; }
  const rapidjson::Value& v() const { return doc["after"]["v"]; }
};

inline OneValue encode_one(DebeziumEncoder& enc, Oid oid, std::int32_t typmod,
                           std::optional<std::string> text) {
  static std::vector<RelationPtr> keep;  // plans are cached by relation address
  keep.push_back(make_relation("public", "t", {{"v", oid, typmod}}));
  Change c;
  c.op = ChangeOp::Insert;
  c.lsn = Lsn{24023128};
  c.relation = keep.back();
  c.after = text_tuple({std::move(text)});
  TransactionInfo info{.xid = Xid{555}, .final_lsn = Lsn{24023200}, .end_lsn = Lsn{24023300}};
  const DebeziumEvent ev = enc.encode_change(info, c, {});
  return {parse(ev.value)};
}

}  // namespace cdcsync::testing
