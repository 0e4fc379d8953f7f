// libFuzzer target over the Debezium encoder: one column value of a chosen type and handling modes.
//
// Input: an options byte, a type byte, then the value's bytes.
//   options bits 0-1: decimal.handling.mode; bits 2-3: time.precision.mode; bits 4-5: binary.handling.mode;
//   bit 6: include the schema; bit 7: the value is in binary form (pgoutput's 'b') instead of text.
//   type byte: an index into kColumns (modulo its size).
// The value is encoded as an insert, an update changing the key, a delete with its tombstone, and an
// unchanged TOAST value; then again with the source's catalog faked: the column NOT NULL with the value's
// bytes as its default expression, the key (v, id), an update under REPLICA IDENTITY FULL and a delete whose
// old key lacks the column. Every key and value document must parse as JSON. Anything else (a crash, a
// sanitizer report, an exception, a document that does not parse) is a bug.
#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"

namespace {

using namespace cdcsync;

constexpr std::int32_t numeric(int precision, int scale) {
  return ((precision << 16) | (scale & 0x7FF)) + 4;
}

constexpr Oid kHstore = 90001, kLtree = 90002, kMood = 90003, kPrice = 90004, kMoodArray = 90005,
              kHstoreArray = 90006;

struct Column {
  Oid oid;
  std::int32_t typmod;
};

constexpr Column kColumns[] = {
    {pgtype::kBool, -1},
    {pgtype::kBit, 1},
    {pgtype::kBit, 12},
    {pgtype::kVarbit, -1},
    {pgtype::kInt2, -1},
    {pgtype::kInt4, -1},
    {pgtype::kInt8, -1},
    {pgtype::kOid, -1},
    {pgtype::kFloat4, -1},
    {pgtype::kFloat8, -1},
    {pgtype::kNumeric, -1},
    {pgtype::kNumeric, numeric(12, 2)},
    {pgtype::kNumeric, numeric(40, 5)},
    {pgtype::kNumeric, numeric(5, -3)},
    {pgtype::kMoney, -1},
    {pgtype::kText, -1},
    {pgtype::kDate, -1},
    {pgtype::kTime, -1},
    {pgtype::kTime, 2},
    {pgtype::kTimeTz, -1},
    {pgtype::kTimestamp, -1},
    {pgtype::kTimestamp, 3},
    {pgtype::kTimestampTz, -1},
    {pgtype::kTimestampTz, 0},
    {pgtype::kInterval, -1},
    {pgtype::kBytea, -1},
    {pgtype::kUuid, -1},
    {pgtype::kJson, -1},
    {pgtype::kJsonb, -1},
    {pgtype::kXml, -1},
    {pgtype::kPoint, -1},
    {pgtype::kInt4Range, -1},
    {kHstore, -1},
    {kLtree, -1},
    {kMood, -1},
    {kPrice, -1},
    {99999, -1},
    {pgtype::kInt4Array, -1},
    {pgtype::kTextArray, -1},
    {pgtype::kDateArray, -1},
    {pgtype::kNumericArray, numeric(10, 2)},
    {pgtype::kTimestampTzArray, 3},
    {pgtype::kByteaArray, -1},
    {kMoodArray, -1},
    {kHstoreArray, -1},
    {791, -1},  // money[]
};

const TypeCatalog& catalog() {
  static const TypeCatalog c = [] {
    TypeCatalog t;
    t.add_extension_type(kHstore, "public", "hstore");
    t.add_extension_type(kLtree, "public", "ltree");
    t.add_enum(kMood, "public", "mood", {"happy", "sad"});
    t.add_domain(kPrice, "public", "price", pgtype::kNumeric, numeric(12, 2));
    t.add_array(kMoodArray, "public", "_mood", kMood);
    t.add_array(kHstoreArray, "public", "_hstore", kHstore);
    return t;
  }();
  return c;
}

// Valid JSON. A number beyond a double's range is valid JSON that RapidJSON will not hold (float text that
// PostgreSQL never prints, passed through as it is); that one refusal is accepted.
void require_json_text(std::string_view text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() && doc.GetParseError() != rapidjson::kParseErrorNumberTooBig) __builtin_trap();
}

void require_json(const DebeziumEvent& ev) {
  if (ev.has_key) require_json_text(ev.key);
  if (ev.has_value) require_json_text(ev.value);
}

// The catalog says v is NOT NULL with the fuzzed text as its default expression, and the key is (v, id).
class FuzzFacts final : public CatalogFacts {
 public:
  explicit FuzzFacts(std::string_view expression) : expression_(expression) {}
  RelationFacts relation_facts(const RelationDef&, Xid) override {
    return {.columns = {{"id", true, std::nullopt}, {"v", true, std::string{expression_}}},
            .key = {"v", "id"}};
  }
  bool reload_types() override { return false; }

 private:
  std::string_view expression_;
};

// Insert, an update under REPLICA IDENTITY FULL (the old row whole, the new one's v an unchanged TOAST
// value), and a delete whose old key lacks v (its NULL becomes the default or the fallback).
void encode_with_facts(const DebeziumOptions& o, const RelationPtr& relation, Tuple row,
                       std::string_view value) {
  FuzzFacts facts{value};
  DebeziumEncoder enc{o, catalog(), &facts};
  const TransactionInfo info{.xid = Xid{8}, .final_lsn = Lsn{0x16B374DA00}, .commit_time_us = 1};
  Change insert;
  insert.op = ChangeOp::Insert;
  insert.relation = relation;
  insert.after = row;
  Change update = insert;
  update.op = ChangeOp::Update;
  update.before_kind = 'O';
  update.before = row;
  update.after.clear();
  update.after.add_text("2");
  update.after.add_unchanged_toast();
  Change remove;
  remove.op = ChangeOp::Delete;
  remove.relation = relation;
  remove.before_kind = 'K';
  remove.before.add_text("1");
  remove.before.add_null();
  enc.encode(Transaction{.info = info, .changes = {insert, update, remove}}, require_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t options = data[0];
  const Column column = kColumns[data[1] % std::size(kColumns)];
  const std::string_view value{reinterpret_cast<const char*>(data + 2), size - 2};

  DebeziumOptions o;
  o.decimal = static_cast<DecimalHandling>((options & 3) % 3);
  o.time = static_cast<TimePrecision>((options >> 2 & 3) % 3);
  o.binary = static_cast<BinaryHandling>(options >> 4 & 3);
  o.include_schema = (options & 0x40) != 0;
  o.clock_us = [] { return std::int64_t{1'700'000'000'000'000}; };
  DebeziumEncoder enc{o, catalog()};

  auto relation = std::make_shared<RelationDef>();
  relation->id = RelationId{16400};
  relation->schema = "public";
  relation->name = "t";
  relation->columns = {{"id", pgtype::kInt4, -1, true}, {"v", column.oid, column.typmod, true}};
  Change change;
  change.relation = relation;
  change.lsn = Lsn{0x16B374D848};
  const auto add = [&](Tuple& t) {
    t.add_text("1");
    if (options & 0x80) {
      t.add_binary(value);
    } else {
      t.add_text(value);
    }
  };
  const TransactionInfo info{.xid = Xid{7}, .final_lsn = Lsn{0x16B374D900}, .commit_time_us = 1};

  change.op = ChangeOp::Insert;
  add(change.after);
  require_json(enc.encode_change(info, change, {}));

  change.op = ChangeOp::Update;  // the key changes: delete, tombstone, create
  change.before_kind = 'K';
  change.before.add_text("2");
  change.before.add_unchanged_toast();
  enc.encode(Transaction{.info = info, .changes = {change}}, require_json);

  change.op = ChangeOp::Delete;
  change.after.clear();
  change.before.clear();
  add(change.before);
  require_json(enc.encode_change(info, change, {}));
  require_json(enc.encode_tombstone(change));

  encode_with_facts(o, relation, change.before, value);
  return 0;
}
