// The order-DB sink's encoding of a realistic customer row into COPY data: each value from pgoutput's text
// into its column type's binary receive format (target.copy_format = "binary", sinks/copy_binary.h), or
// escaped into COPY's text format ("text"). One row per iteration, as flush_table writes it (with _cdc_lsn).
//   cmake --build build-bench --target copy_bench && build-bench/bench/copy_bench
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "sinks/copy_binary.h"
#include "sinks/copy_text.h"

namespace {

using namespace cdcsync;

// The demo's customers row: bigint, five texts, numeric(12,2), date, timestamptz.
constexpr BinaryType kTypes[] = {BinaryType::Int8,    BinaryType::Text, BinaryType::Text,
                                 BinaryType::Text,    BinaryType::Text, BinaryType::Text,
                                 BinaryType::Numeric, BinaryType::Date, BinaryType::Timestamptz};
constexpr std::string_view kValues[] = {"1048576",          "Ada Lovelace", "ada.lovelace@example.com",
                                        "+44 20 7946 0958", "active",       "gold",
                                        "12345.67",         "1985-12-10",   "2024-03-01 12:34:56.789012+00"};

void BM_CopyBinaryCustomerRow(benchmark::State& state) {
  std::string out;
  out.reserve(1 << 20);
  std::int64_t bytes = 0;
  for (auto _ : state) {
    append_copy_binary_row(out, std::size(kTypes) + 1);
    for (std::size_t c = 0; c < std::size(kTypes); ++c) {
      if (!append_copy_binary(out, kTypes[c], kValues[c])) state.SkipWithError("refused");
    }
    append_copy_binary_lsn(out, 0x16B374D848);
    if (out.size() > (1 << 20) - 512) {
      bytes += static_cast<std::int64_t>(out.size());
      out.clear();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes + static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_CopyBinaryCustomerRow);

void BM_CopyTextCustomerRow(benchmark::State& state) {
  std::string out;
  out.reserve(1 << 20);
  std::int64_t bytes = 0;
  for (auto _ : state) {
    for (std::string_view v : kValues) {
      append_copy_text(out, v);
      out.push_back('\t');
    }
    out += "16/B374D848\n";
    if (out.size() > (1 << 20) - 512) {
      bytes += static_cast<std::int64_t>(out.size());
      out.clear();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(bytes + static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_CopyTextCustomerRow);

}  // namespace

BENCHMARK_MAIN();
