// Debezium JSON encoding of a realistic customer row change: encode alone (and under REPLICA IDENTITY FULL,
// keyed by the primary key), and pgoutput decode + encode.
//   cmake --build build-json --target json_bench && build-json/bench/json_bench
#include <benchmark/benchmark.h>

#include <string>

#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"
#include "decoders/pgoutput.h"
#include "decoders/relation_cache.h"
#include "decoders/relation_facts.h"

namespace cdcsync {
namespace {

RelationDef customer_relation() {
  RelationDef rel;
  rel.id = RelationId{16385};
  rel.schema = "public";
  rel.name = "customer";
  rel.columns = {{"id", pgtype::kInt8, -1, true},
                 {"name", pgtype::kText, -1, false},
                 {"email", pgtype::kText, -1, false},
                 {"phone", pgtype::kText, -1, false},
                 {"birth_date", pgtype::kDate, -1, false},
                 {"status", pgtype::kText, -1, false},
                 {"tier", pgtype::kText, -1, false},
                 {"balance", pgtype::kNumeric, ((12 << 16) | 2) + 4, false},
                 {"updated_at", pgtype::kTimestampTz, -1, false}};
  return rel;
}

const char* const kValues[] = {
    "1048576", "Ada Lovelace", "ada.lovelace@example.com",     "+44 20 7946 0958", "1985-12-10", "active",
    "gold",    "12345.67",     "2024-03-01 12:34:56.789012+00"};

void put_u32(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(v >> s));
}

// pgoutput Update without an old tuple: 'U' relid 'N' TupleData.
std::string update_message() {
  std::string m{"U"};
  put_u32(m, 16385);
  m.push_back('N');
  m.push_back(0);
  m.push_back(9);
  for (const char* v : kValues) {
    m.push_back('t');
    put_u32(m, static_cast<std::uint32_t>(std::char_traits<char>::length(v)));
    m.append(v);
  }
  return m;
}

DebeziumOptions bench_options() {
  DebeziumOptions o;
  o.topic_prefix = "customerdb";
  o.clock_us = [] { return std::int64_t{1'709'296'496'789'012}; };
  return o;
}

void BM_EncodeCustomerUpdate(benchmark::State& state) {
  const TypeCatalog catalog;
  DebeziumOptions o = bench_options();
  o.include_schema = state.range(0) != 0;
  DebeziumEncoder enc{o, catalog};
  Change change;
  change.op = ChangeOp::Update;
  change.lsn = Lsn{0x16B374D848};
  change.relation = std::make_shared<const RelationDef>(customer_relation());
  for (const char* v : kValues) change.after.add_text(v);
  const TransactionInfo info{
      .xid = Xid{771}, .final_lsn = Lsn{0x16B374D900}, .commit_time_us = 762'611'696'789'012};
  std::size_t bytes = 0;
  for (auto _ : state) {
    const DebeziumEvent ev = enc.encode_change(info, change, {.total_order = 1});
    bytes += ev.value.size() + ev.key.size();
    benchmark::DoNotOptimize(ev.value.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_EncodeCustomerUpdate)->Arg(0)->Arg(1)->ArgName("schema");

// The source's catalog as PgCatalogFacts reads it: customer's primary key is (id).
class CustomerFacts final : public CatalogFacts {
 public:
  RelationFacts relation_facts(const RelationDef&, Xid) override {
    return {.columns = {{"id", true, std::nullopt}}, .key = {"id"}};
  }
  bool reload_types() override { return false; }
};

// An update under REPLICA IDENTITY FULL: the whole old row comes too, and the key (the primary key) of the
// old and the new row are compared to tell an update from a key change.
void BM_EncodeCustomerUpdateFullIdentity(benchmark::State& state) {
  const TypeCatalog catalog;
  CustomerFacts facts;
  DebeziumEncoder enc{bench_options(), catalog, &facts};
  RelationDef rel = customer_relation();
  rel.replica_identity = 'f';
  for (ColumnDef& c : rel.columns) c.part_of_key = true;
  Transaction txn;
  txn.info = {.xid = Xid{771}, .final_lsn = Lsn{0x16B374D900}, .commit_time_us = 762'611'696'789'012};
  Change& change = txn.changes.emplace_back();
  change.op = ChangeOp::Update;
  change.lsn = Lsn{0x16B374D848};
  change.relation = std::make_shared<const RelationDef>(std::move(rel));
  change.before_kind = 'O';
  for (const char* v : kValues) {
    change.before.add_text(v);
    change.after.add_text(v);
  }
  for (auto _ : state) {
    enc.encode(txn, [](const DebeziumEvent& ev) { benchmark::DoNotOptimize(ev.value.data()); });
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeCustomerUpdateFullIdentity);

void BM_DecodeAndEncodeCustomerUpdate(benchmark::State& state) {
  const TypeCatalog catalog;
  DebeziumEncoder enc{bench_options(), catalog};
  RelationCache relations;
  relations.put(customer_relation());
  PgOutputDecoder decoder{ProtocolOptions{}};
  const std::string message = update_message();
  const TransactionInfo info{
      .xid = Xid{771}, .final_lsn = Lsn{0x16B374D900}, .commit_time_us = 762'611'696'789'012};
  Change change;
  for (auto _ : state) {
    decoder.decode(message, relations, change);
    const DebeziumEvent ev = enc.encode_change(info, change, {.total_order = 1});
    benchmark::DoNotOptimize(ev.value.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAndEncodeCustomerUpdate);

}  // namespace
}  // namespace cdcsync

BENCHMARK_MAIN();
