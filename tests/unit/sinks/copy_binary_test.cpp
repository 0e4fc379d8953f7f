// COPY's binary encoders: the bytes each accepted text becomes, and the text each one refuses (the sink then
// copies the table as text). tests/integration/sinks/copy_binary_test.cpp has the server read both forms.
#include "sinks/copy_binary.h"

#include <gtest/gtest.h>

#include "sinks/postgres_sink.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace cdcsync {
namespace {

// The field's value bytes after checking its length prefix, or "REFUSED".
std::string field(BinaryType t, std::string_view text) {
  std::string out = "prefix";
  if (!append_copy_binary(out, t, text)) {
    EXPECT_EQ(out, "prefix") << "a refused value must leave the buffer as it was";
    return "REFUSED";
  }
  EXPECT_GE(out.size(), 10u);
  const auto* p = reinterpret_cast<const unsigned char*>(out.data()) + 6;
  const std::uint32_t length =
      std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
  EXPECT_EQ(length, out.size() - 10) << text;
  return out.substr(10);
}

std::string be(std::initializer_list<std::uint64_t> values, int width) {
  std::string out;
  for (std::uint64_t v : values) {
    for (int b = width - 1; b >= 0; --b) out.push_back(static_cast<char>(v >> (8 * b)));
  }
  return out;
}
std::string i16(std::initializer_list<std::uint64_t> v) {
  return be(v, 2);
}
std::string i64(std::int64_t v) {
  return be({static_cast<std::uint64_t>(v)}, 8);
}

TEST(CopyBinary, TypesByOid) {
  EXPECT_EQ(binary_type_of(20), BinaryType::Int8);
  EXPECT_EQ(binary_type_of(25), BinaryType::Text);
  EXPECT_EQ(binary_type_of(1043), BinaryType::Text);
  EXPECT_EQ(binary_type_of(1042), BinaryType::Text);
  EXPECT_EQ(binary_type_of(114), BinaryType::Text);
  EXPECT_EQ(binary_type_of(1184), BinaryType::Timestamptz);
  EXPECT_EQ(binary_type_of(1700), BinaryType::Numeric);
  EXPECT_EQ(binary_type_of(19), BinaryType::Unsupported);    // name: its receive refuses what its input cuts
  EXPECT_EQ(binary_type_of(18), BinaryType::Unsupported);    // "char"
  EXPECT_EQ(binary_type_of(1007), BinaryType::Unsupported);  // int4[]
  EXPECT_EQ(binary_type_of(1186), BinaryType::Unsupported);  // interval
  EXPECT_EQ(name_of(BinaryType::Timestamptz), "timestamptz");
}

TEST(CopyBinary, Integers) {
  EXPECT_EQ(field(BinaryType::Int4, "0"), be({0}, 4));
  EXPECT_EQ(field(BinaryType::Int4, "-1"), be({0xFFFFFFFF}, 4));
  EXPECT_EQ(field(BinaryType::Int4, "2147483647"), be({0x7FFFFFFF}, 4));
  EXPECT_EQ(field(BinaryType::Int4, "-2147483648"), be({0x80000000}, 4));
  EXPECT_EQ(field(BinaryType::Int4, "2147483648"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Int4, "-2147483649"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Int2, "-32768"), be({0x8000}, 2));
  EXPECT_EQ(field(BinaryType::Int2, "32768"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Int8, "9223372036854775807"), i64(INT64_MAX));
  EXPECT_EQ(field(BinaryType::Int8, "-9223372036854775808"), i64(INT64_MIN));
  EXPECT_EQ(field(BinaryType::Int8, "9223372036854775808"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Int8, "99999999999999999999"), "REFUSED");  // past 2^64
  EXPECT_EQ(field(BinaryType::Int8, "007"), i64(7));
  for (const char* bad : {"", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "١"}) {
    EXPECT_EQ(field(BinaryType::Int8, bad), "REFUSED") << bad;
  }
}

TEST(CopyBinary, BoolTextJsonbBytea) {
  EXPECT_EQ(field(BinaryType::Bool, "t"), std::string(1, '\1'));
  EXPECT_EQ(field(BinaryType::Bool, "f"), std::string(1, '\0'));
  EXPECT_EQ(field(BinaryType::Bool, "true"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Text, "tab\there\\N"), "tab\there\\N");  // no escaping in binary
  EXPECT_EQ(field(BinaryType::Text, ""), "");
  EXPECT_EQ(field(BinaryType::Jsonb, "{\"a\": 1}"), "\1{\"a\": 1}");
  EXPECT_EQ(field(BinaryType::Bytea, "\\x00ff7F"), std::string("\0\xff\x7f", 3));
  EXPECT_EQ(field(BinaryType::Bytea, "\\x"), "");
  for (const char* bad : {"\\x0", "\\xzz", "abc", "\\000", "x00"}) {
    EXPECT_EQ(field(BinaryType::Bytea, bad), "REFUSED") << bad;
  }
}

TEST(CopyBinary, UuidAndPgLsn) {
  EXPECT_EQ(field(BinaryType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            std::string("\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11", 16));
  for (const char* bad : {"a0eebc999c0b4ef8bb6d6bb9bd380a11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
                          "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g", "a0eebc99-9c0b4-ef8-bb6d-6bb9bd380a11"}) {
    EXPECT_EQ(field(BinaryType::Uuid, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(field(BinaryType::PgLsn, "16/B374D848"), i64(0x16B374D848));
  EXPECT_EQ(field(BinaryType::PgLsn, "0/0"), i64(0));
  EXPECT_EQ(field(BinaryType::PgLsn, "FFFFFFFF/FFFFFFFF"), i64(-1));
  for (const char* bad : {"16", "/1", "1/", "123456789/0", "1/2/3", "g/0"}) {
    EXPECT_EQ(field(BinaryType::PgLsn, bad), "REFUSED") << bad;
  }
}

TEST(CopyBinary, NumericInBase10000DigitsWithoutLeadingOrTrailingZeros) {
  // ndigits, weight, sign, dscale, digits
  EXPECT_EQ(field(BinaryType::Numeric, "123.45"), i16({2, 0, 0, 2, 123, 4500}));
  EXPECT_EQ(field(BinaryType::Numeric, "-1.5"), i16({2, 0, 0x4000, 1, 1, 5000}));
  EXPECT_EQ(field(BinaryType::Numeric, "0.0001"), i16({1, 0xFFFF, 0, 4, 1}));
  EXPECT_EQ(field(BinaryType::Numeric, "10000"), i16({1, 1, 0, 0, 1}));
  EXPECT_EQ(field(BinaryType::Numeric, "12345678.9"), i16({3, 1, 0, 1, 1234, 5678, 9000}));
  EXPECT_EQ(field(BinaryType::Numeric, "100000000.00000001"), i16({5, 2, 0, 8, 1, 0, 0, 0, 1}));
  EXPECT_EQ(field(BinaryType::Numeric, "0"), i16({0, 0, 0, 0}));
  EXPECT_EQ(field(BinaryType::Numeric, "-0.00"), i16({0, 0, 0, 2}));  // zero has no sign
  EXPECT_EQ(field(BinaryType::Numeric, "NaN"), i16({0, 0, 0xC000, 0}));
  EXPECT_EQ(field(BinaryType::Numeric, "Infinity"), i16({0, 0, 0xD000, 0}));
  EXPECT_EQ(field(BinaryType::Numeric, "-Infinity"), i16({0, 0, 0xF000, 0}));
  for (const char* bad : {"", "-", ".5", "5.", "1e5", "1.2.3", "+1", " 1", "nan", "inf", "1,5"}) {
    EXPECT_EQ(field(BinaryType::Numeric, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(field(BinaryType::Numeric, std::string(1001, '9')), "REFUSED");
}

TEST(CopyBinary, FloatsExactlyAsTheirShortestText) {
  EXPECT_EQ(field(BinaryType::Float8, "0.1"), be({0x3FB999999999999A}, 8));
  EXPECT_EQ(field(BinaryType::Float8, "-0"), be({0x8000000000000000}, 8));
  EXPECT_EQ(field(BinaryType::Float8, "1e+300"), be({0x7E37E43C8800759C}, 8));
  EXPECT_EQ(field(BinaryType::Float8, "Infinity"), be({0x7FF0000000000000}, 8));
  EXPECT_EQ(field(BinaryType::Float8, "-Infinity"), be({0xFFF0000000000000}, 8));
  EXPECT_EQ(field(BinaryType::Float8, "NaN"), be({0x7FF8000000000000}, 8));
  EXPECT_EQ(field(BinaryType::Float4, "0.1"), be({0x3DCCCCCD}, 4));
  EXPECT_EQ(field(BinaryType::Float4, "NaN"), be({0x7FC00000}, 4));
  for (const char* bad : {"", "inf", "nan", "infinity", "0x1p3", "1e999", "1 ", "--1"}) {
    EXPECT_EQ(field(BinaryType::Float8, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(field(BinaryType::Float4, "1e39"), "REFUSED");  // out of real's range: the input function says so
}

TEST(CopyBinary, DatesAndTimestampsInIsoFormOnly) {
  EXPECT_EQ(field(BinaryType::Date, "2000-01-01"), be({0}, 4));
  EXPECT_EQ(field(BinaryType::Date, "2000-01-02"), be({1}, 4));
  EXPECT_EQ(field(BinaryType::Date, "1970-01-01"), be({static_cast<std::uint32_t>(-10957)}, 4));
  EXPECT_EQ(field(BinaryType::Date, "2024-02-29"), be({8825}, 4));
  EXPECT_EQ(field(BinaryType::Date, "infinity"), be({0x7FFFFFFF}, 4));
  EXPECT_EQ(field(BinaryType::Date, "-infinity"), be({0x80000000}, 4));
  for (const char* bad : {"2023-02-29", "2000-13-01", "2000-00-10", "0000-01-01", "10000-01-01", "2000-1-1",
                          "0044-03-15 BC", "01/02/2000", "2000-01-01 00:00:00"}) {
    EXPECT_EQ(field(BinaryType::Date, bad), "REFUSED") << bad;
  }

  EXPECT_EQ(field(BinaryType::Timestamp, "2000-01-01 00:00:00"), i64(0));
  EXPECT_EQ(field(BinaryType::Timestamp, "1999-12-31 23:59:59.999999"), i64(-1));
  EXPECT_EQ(field(BinaryType::Timestamp, "2000-01-01 00:00:00.5"), i64(500000));
  EXPECT_EQ(field(BinaryType::Timestamp, "2000-01-02 01:02:03.000004"), i64(86400000000 + 3723000004));
  EXPECT_EQ(field(BinaryType::Timestamp, "infinity"), i64(INT64_MAX));
  EXPECT_EQ(field(BinaryType::Timestamp, "-infinity"), i64(INT64_MIN));
  // An offset is refused for a column without a time zone (its input function would drop it), and needed
  // for one with it (its input function would read the session's time zone).
  EXPECT_EQ(field(BinaryType::Timestamp, "2000-01-01 00:00:00+00"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Timestamptz, "2000-01-01 00:00:00"), "REFUSED");

  EXPECT_EQ(field(BinaryType::Timestamptz, "2000-01-01 00:00:00+00"), i64(0));
  EXPECT_EQ(field(BinaryType::Timestamptz, "2000-01-01 01:00:00+01"), i64(0));
  EXPECT_EQ(field(BinaryType::Timestamptz, "1999-12-31 18:30:00-05:30"), i64(0));
  EXPECT_EQ(field(BinaryType::Timestamptz, "1900-01-01 00:19:32.25+00:19:32"),
            i64(-3155673600000000 + 250000));
  EXPECT_EQ(field(BinaryType::Timestamptz, "2026-11-25 15:21:47.123456+00"), i64(848935307123456));
  for (const char* bad :
       {"2000-01-01T00:00:00+00", "2000-01-01 24:00:00+00", "2000-01-01 00:60:00+00",
        "2000-01-01 00:00:60+00", "2000-01-01 00:00:00.1234567+00", "2000-01-01 00:00:00.+00",
        "2000-01-01 00:00:00+1", "2000-01-01 00:00:00+16", "2000-01-01 00:00:00+00 BC",
        "Sat Jan 01 00:00:00 2000 UTC", "01/01/2000 00:00:00 UTC", "2000-01-01 00:00:00 UTC", "Infinity"}) {
    EXPECT_EQ(field(BinaryType::Timestamptz, bad), "REFUSED") << bad;
  }
}

// Which tables are copied in binary: every mapped column, the LSN column and (soft deletes) the tombstone
// column need an encoder.
TEST(CopyPlan, BinaryOnlyWhenEveryColumnTheSinkWritesHasAnEncoder) {
  TableMapping m;
  m.source = {"public", "customers"};
  m.target = {"ref", "customer"};
  m.key = {"id"};
  m.columns = {{"id", "customer_id", Transform::copy()}, {"since", "since", Transform::copy()}};
  TargetColumnTypes types = {{"customer_id", {20, "bigint"}},
                             {"since", {1184, "timestamp with time zone"}},
                             {"_cdc_lsn", {3220, "pg_lsn"}},
                             {"_cdc_deleted", {16, "boolean"}},
                             {"unmapped", {1186, "interval"}}};
  CopyPlan plan = plan_copy(m, types);
  EXPECT_TRUE(plan.binary()) << plan.text_because;
  EXPECT_EQ(plan.columns, (std::vector<BinaryType>{BinaryType::Int8, BinaryType::Timestamptz}));

  types["since"] = {1186, "interval"};
  EXPECT_EQ(plan_copy(m, types).text_because, "column \"since\" is interval");
  types["since"] = {1184, "timestamp with time zone"};

  types["_cdc_lsn"] = {20, "bigint"};
  EXPECT_EQ(plan_copy(m, types).text_because, "LSN column \"_cdc_lsn\" is not pg_lsn");
  types["_cdc_lsn"] = {3220, "pg_lsn"};

  m.deletes = DeletePolicy::Soft;
  EXPECT_TRUE(plan_copy(m, types).binary());
  types["_cdc_deleted"] = {23, "integer"};
  EXPECT_EQ(plan_copy(m, types).text_because, "tombstone column \"_cdc_deleted\" is not boolean");
  m.deletes = DeletePolicy::Hard;  // no tombstone written
  EXPECT_TRUE(plan_copy(m, types).binary());

  types.erase("since");
  EXPECT_EQ(plan_copy(m, types).text_because, "column \"since\" is missing");
}

// Arbitrary bytes are refused or encoded, never read past.
TEST(CopyBinary, ArbitraryBytesNeverCrashAnEncoder) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789-+.:/ eE\\xTtfNaInfiy";
  for (int n = 0; n < 20000; ++n) {
    std::string v(rng() % 40, '\0');
    for (auto& c : v) c = rng() % 4 == 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    for (int t = 0; t <= static_cast<int>(BinaryType::PgLsn); ++t) {
      std::string out;
      if (append_copy_binary(out, static_cast<BinaryType>(t), v))
        EXPECT_GE(out.size(), 4u);
      else
        EXPECT_TRUE(out.empty());
    }
  }
}

}  // namespace
}  // namespace cdcsync
