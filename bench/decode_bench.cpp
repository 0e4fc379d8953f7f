// Decoding throughput of the pgoutput decoder and the assembler on a 9-column customer row.
//   cmake -S . -B build-dec -G Ninja -DCDCSYNC_BENCH=ON && cmake --build build-dec --target decode_bench
//   build-dec/bench/decode_bench
// Target: >= 2M Insert messages decoded per second on one core.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "decoders/assembler.h"
#include "decoders/pgoutput.h"
#include "sinks/copy_text.h"

namespace {

using namespace cdcsync;

class Bytes {
 public:
  explicit Bytes(char tag) { s_.push_back(tag); }
  Bytes& be(std::uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) s_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  Bytes& byte(char c) {
    s_.push_back(c);
    return *this;
  }
  Bytes& str(std::string_view v) {
    s_.append(v);
    s_.push_back('\0');
    return *this;
  }
  Bytes& text(std::string_view v) {
    byte('t').be(v.size(), 4);
    s_.append(v);
    return *this;
  }
  const std::string& bytes() const { return s_; }

 private:
  std::string s_;
};

constexpr std::uint32_t kCustomer = 16385;

std::string customer_relation() {
  struct Col {
    const char* name;
    std::uint32_t oid;
  };
  const Col cols[] = {{"id", 20},           {"full_name", 25},    {"email", 25},
                      {"status", 25},       {"tier", 25},         {"balance", 1700},
                      {"birth_date", 1082}, {"created_at", 1184}, {"updated_at", 1184}};
  Bytes r('R');
  r.be(kCustomer, 4).str("public").str("customers").byte('d').be(9, 2);
  for (const auto& c : cols)
    r.be(c.name[0] == 'i' && c.name[1] == 'd' ? 1 : 0, 1).str(c.name).be(c.oid, 4).be(-1, 4);
  return r.bytes();
}

std::string customer_insert(int id) {
  Bytes m('I');
  m.be(kCustomer, 4).byte('N').be(9, 2);
  m.text(std::to_string(id))
      .text("Ada Lovelace")
      .text("ada.lovelace@example.com")
      .text("active")
      .text("gold");
  m.text("1234.50")
      .text("1815-12-10")
      .text("2024-01-02 03:04:05.123456+00")
      .text("2024-01-02 03:04:05.123456+00");
  return m.bytes();
}

std::string customer_update(int id) {
  Bytes m('U');
  m.be(kCustomer, 4).byte('K').be(9, 2).text(std::to_string(id));
  for (int i = 0; i < 8; ++i) m.byte('n');
  m.byte('N').be(9, 2);
  m.text(std::to_string(id + 1))
      .text("Ada Lovelace")
      .text("ada.lovelace@example.com")
      .text("active")
      .text("gold");
  m.text("1234.50")
      .text("1815-12-10")
      .text("2024-01-02 03:04:05.123456+00")
      .text("2024-01-02 03:04:05.123456+00");
  return m.bytes();
}

void BM_DecodeInsert9Columns(benchmark::State& state) {
  PgOutputDecoder decoder{{.version = 1}};
  RelationCache relations;
  Change change;
  relations.put(
      std::get<pgoutput::Relation>(decoder.decode(customer_relation(), relations, change)).relation);
  const std::string insert = customer_insert(123456);
  for (auto _ : state) {
    auto m = decoder.decode(insert, relations, change);
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(change.after.byte_size());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(insert.size()));
}
BENCHMARK(BM_DecodeInsert9Columns);

void BM_DecodeUpdateWithOldKey9Columns(benchmark::State& state) {
  PgOutputDecoder decoder{{.version = 1}};
  RelationCache relations;
  Change change;
  relations.put(
      std::get<pgoutput::Relation>(decoder.decode(customer_relation(), relations, change)).relation);
  const std::string update = customer_update(123456);
  for (auto _ : state) {
    auto m = decoder.decode(update, relations, change);
    benchmark::DoNotOptimize(m);
    benchmark::DoNotOptimize(change.after.byte_size());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeUpdateWithOldKey9Columns);

// Whole transactions of 100 inserts through the assembler (each change is moved into its Transaction,
// so this includes the allocations of building the transactions the sinks consume).
void BM_AssembleTransactionsOf100Inserts(benchmark::State& state) {
  std::size_t changes = 0;
  TransactionAssembler assembler{AssemblerOptions{.protocol = {.version = 1}},
                                 [&](Transaction&& t) { changes += t.changes.size(); }};
  const std::string relation = customer_relation();
  const std::string insert = customer_insert(1);
  std::uint64_t lsn = 0x1000000;
  for (auto _ : state) {
    const std::uint64_t final_lsn = lsn + 101;
    assembler.feed(Bytes('B').be(final_lsn, 8).be(0, 8).be(1000, 4).bytes(), Lsn{lsn});
    assembler.feed(relation, Lsn{lsn});
    for (int i = 0; i < 100; ++i) assembler.feed(insert, Lsn{++lsn});
    assembler.feed(Bytes('C').byte(0).be(final_lsn, 8).be(final_lsn + 1, 8).be(0, 8).bytes(), Lsn{final_lsn});
    lsn = final_lsn + 1;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(changes));
}
BENCHMARK(BM_AssembleTransactionsOf100Inserts);

// The daemon's shape: transactions are assembled on one thread and freed on another (the applier), or, with
// Arg(1), handed back to the assembler (TransactionAssembler::recycle) as the pipeline does. Process CPU
// time: both threads count.
void BM_AssembleHereFreeOnAnotherThread(benchmark::State& state) {
  const bool recycle = state.range(0) != 0;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Transaction> queued;  // assembler -> consumer
  std::vector<Transaction> spent;   // consumer -> assembler
  bool done = false;
  std::size_t changes = 0;
  std::thread consumer([&] {
    std::vector<Transaction> batch;
    while (true) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return done || !queued.empty(); });
        if (queued.empty()) return;
        batch.swap(queued);
      }
      for (const auto& t : batch) changes += t.changes.size();
      if (recycle) {
        std::lock_guard lock(mu);
        if (spent.empty()) spent.swap(batch);
      }
      batch.clear();
    }
  });
  std::vector<Transaction> back;
  TransactionAssembler assembler{AssemblerOptions{.protocol = {.version = 1}}, [&](Transaction&& t) {
                                   std::lock_guard lock(mu);
                                   queued.push_back(std::move(t));
                                   cv.notify_one();
                                 }};
  const std::string relation = customer_relation();
  const std::string insert = customer_insert(1);
  std::uint64_t lsn = 0x1000000;
  assembler.feed(Bytes('B').be(lsn + 1, 8).be(0, 8).be(1000, 4).bytes(), Lsn{lsn});
  assembler.feed(relation, Lsn{lsn});
  assembler.feed(Bytes('C').byte(0).be(lsn + 1, 8).be(lsn + 2, 8).be(0, 8).bytes(), Lsn{lsn + 1});
  lsn += 2;
  for (auto _ : state) {
    {
      std::lock_guard lock(mu);
      back.swap(spent);
    }
    assembler.recycle(back);
    const std::uint64_t final_lsn = lsn + 101;
    assembler.feed(Bytes('B').be(final_lsn, 8).be(0, 8).be(1000, 4).bytes(), Lsn{lsn});
    for (int i = 0; i < 100; ++i) assembler.feed(insert, Lsn{++lsn});
    assembler.feed(Bytes('C').byte(0).be(final_lsn, 8).be(final_lsn + 1, 8).be(0, 8).bytes(), Lsn{final_lsn});
    lsn = final_lsn + 1;
  }
  {
    std::lock_guard lock(mu);
    done = true;
    cv.notify_one();
  }
  consumer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 100);
}
BENCHMARK(BM_AssembleHereFreeOnAnotherThread)->Arg(0)->Arg(1)->ArgName("recycle")->MeasureProcessCPUTime();

// The sink's COPY text of one value (Arg: its length; WIDE's values are 9.6 kB): append_copy_text against
// the byte-at-a-time scan it replaced.
void copy_text_bytewise(std::string& out, std::string_view v) {
  const char* p = v.data();
  const char* const end = p + v.size();
  while (p < end) {
    const char* q = p;
    while (q < end && detail::kCopyEscape[static_cast<unsigned char>(*q)] == 0) ++q;
    out.append(p, q);
    if (q == end) break;
    const char escaped[2] = {'\\', detail::kCopyEscape[static_cast<unsigned char>(*q)]};
    out.append(escaped, 2);
    p = q + 1;
  }
}

template <bool kWordAtATime>
void BM_CopyTextOfAValue(benchmark::State& state) {
  std::string value;
  while (value.size() < static_cast<std::size_t>(state.range(0))) value += "ada.lovelace@example.com 1815 ";
  value.resize(static_cast<std::size_t>(state.range(0)));
  std::string out;
  out.reserve(2 * value.size());
  for (auto _ : state) {
    out.clear();
    if constexpr (kWordAtATime) {
      append_copy_text(out, value);
    } else {
      copy_text_bytewise(out, value);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_CopyTextOfAValue<false>)->Arg(24)->Arg(9600)->Name("BM_CopyTextOfAValue/bytewise");
BENCHMARK(BM_CopyTextOfAValue<true>)->Arg(24)->Arg(9600)->Name("BM_CopyTextOfAValue/words");

}  // namespace

BENCHMARK_MAIN();
