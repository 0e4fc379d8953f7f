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
  EXPECT_EQ(binary_type_of(1007), BinaryType::Unsupported);  // int4[]: see binary_encoder_of
  EXPECT_EQ(binary_type_of(790), BinaryType::Unsupported);   // money: its text depends on lc_monetary
  EXPECT_EQ(binary_type_of(1186), BinaryType::Interval);
  EXPECT_EQ(binary_type_of(650), BinaryType::Cidr);
  EXPECT_EQ(name_of(BinaryType::Timestamptz), "timestamptz");
  EXPECT_EQ(name_of(BinaryEncoder{BinaryType::Text, 25}), "text[]");
}

ColumnType base_type(std::uint32_t oid, std::string shown) {
  return {.oid = oid, .shown = std::move(shown), .base = oid};
}

// Domains are read as their base type, enums as their label's text, arrays element by element; the array
// header carries the element type as the column declares it (a domain's, an enum's OID).
TEST(CopyBinary, EncodersOfDomainsEnumsAndArrays) {
  EXPECT_EQ(binary_encoder_of(base_type(20, "bigint")), (BinaryEncoder{BinaryType::Int8, 0}));
  EXPECT_EQ(binary_encoder_of({.oid = 90001, .shown = "email", .base = 25}),
            (BinaryEncoder{BinaryType::Text}));
  EXPECT_EQ(binary_encoder_of({.oid = 90002, .shown = "status", .base = 90002, .base_kind = 'e'}),
            (BinaryEncoder{BinaryType::Text}));
  EXPECT_EQ(
      binary_encoder_of({.oid = 1007, .shown = "integer[]", .base = 1007, .element = 23, .element_base = 23}),
      (BinaryEncoder{BinaryType::Int4, 23}));
  EXPECT_EQ(binary_encoder_of(
                {.oid = 90003, .shown = "emails", .base = 90003, .element = 90001, .element_base = 25}),
            (BinaryEncoder{BinaryType::Text, 90001}));
  EXPECT_EQ(binary_encoder_of({.oid = 90004,
                               .shown = "status[]",
                               .base = 90004,
                               .element = 90002,
                               .element_base = 90002,
                               .element_kind = 'e'}),
            (BinaryEncoder{BinaryType::Text, 90002}));
  // No encoder: a composite, a range, an array of money, of a composite.
  EXPECT_FALSE(
      binary_encoder_of({.oid = 90005, .shown = "address", .base = 90005, .base_kind = 'c'}).supported());
  EXPECT_FALSE(
      binary_encoder_of({.oid = 3904, .shown = "int4range", .base = 3904, .base_kind = 'r'}).supported());
  EXPECT_FALSE(
      binary_encoder_of({.oid = 791, .shown = "money[]", .base = 791, .element = 790, .element_base = 790})
          .supported());
  EXPECT_FALSE(binary_encoder_of({.oid = 90006,
                                  .shown = "address[]",
                                  .base = 90006,
                                  .element = 90005,
                                  .element_base = 90005,
                                  .element_kind = 'c'})
                   .supported());
}

// The bytes of an array field: ndim, null flag, element type, then (one dimension) size and lower bound 1.
std::string array_field(const BinaryEncoder& e, std::string_view text) {
  std::string out = "prefix";
  if (!append_copy_binary(out, e, text)) {
    EXPECT_EQ(out, "prefix");
    return "REFUSED";
  }
  return out.substr(10);
}

TEST(CopyBinary, OneDimensionalArraysAsArrayOutWritesThem) {
  const BinaryEncoder ints{BinaryType::Int4, 23}, texts{BinaryType::Text, 25};
  EXPECT_EQ(array_field(ints, "{}"), be({0, 0, 23}, 4));
  EXPECT_EQ(array_field(ints, "{1,-2}"), be({1, 0, 23, 2, 1, 4, 1, 4, 0xFFFFFFFE}, 4));
  EXPECT_EQ(array_field(ints, "{NULL,3}"), be({1, 1, 23, 2, 1, 0xFFFFFFFF, 4, 3}, 4));
  EXPECT_EQ(array_field(texts, "{null}"), be({1, 1, 25, 1, 1, 0xFFFFFFFF}, 4));  // array_in: any case
  EXPECT_EQ(
      array_field(texts, R"({"NULL","",a,"b c","q\"\\"})"),
      be({1, 0, 25, 5, 1, 4}, 4) + "NULL" + be({0, 1}, 4) + "a" + be({3}, 4) + "b c" + be({3}, 4) + "q\"\\");
  for (const char* bad : {"", "{", "}", "{1,}", "{,1}", "{1,,2}", "{1 ,2}", "{{1,2},{3,4}}", "[0:1]={1,2}",
                          "{1,x}", "{\"1}", "{\"1\"2}", "{\"1\\\"}", "1,2", "{1}{2}"}) {
    EXPECT_EQ(array_field(ints, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(array_field(texts, "{a b}"), "REFUSED");  // array_out quotes what has spaces
  EXPECT_EQ(array_field(BinaryEncoder{}, "{}"), "REFUSED");
}

TEST(CopyBinary, TimesIntervalsAddressesAndOids) {
  EXPECT_EQ(field(BinaryType::Time, "00:00:00"), i64(0));
  EXPECT_EQ(field(BinaryType::Time, "01:02:03.5"), i64(3723500000));
  EXPECT_EQ(field(BinaryType::Time, "24:00:00"), i64(86400000000));
  for (const char* bad : {"24:00:00.000001", "1:02:03", "01:02", "01:60:00", "01:02:03+00", "allballs"}) {
    EXPECT_EQ(field(BinaryType::Time, bad), "REFUSED") << bad;
  }
  // timetz: the time, then the zone in seconds west of UTC.
  EXPECT_EQ(field(BinaryType::Timetz, "12:00:00+02"),
            i64(43200000000) + be({static_cast<std::uint32_t>(-7200)}, 4));
  EXPECT_EQ(field(BinaryType::Timetz, "12:00:00-05:30"), i64(43200000000) + be({19800}, 4));
  EXPECT_EQ(field(BinaryType::Timetz, "12:00:00"), "REFUSED");

  // interval: microseconds, days, months.
  const auto interval = [](std::int64_t us, std::int32_t days, std::int32_t months) {
    return i64(us) + be({static_cast<std::uint32_t>(days), static_cast<std::uint32_t>(months)}, 4);
  };
  EXPECT_EQ(field(BinaryType::Interval, "00:00:00"), interval(0, 0, 0));
  EXPECT_EQ(field(BinaryType::Interval, "1 year 2 mons 3 days 04:05:06.5"), interval(14706500000, 3, 14));
  EXPECT_EQ(field(BinaryType::Interval, "-1 years -2 mons +3 days -04:05:06"),
            interval(-14706000000, 3, -14));
  EXPECT_EQ(field(BinaryType::Interval, "1 day -00:00:01"), interval(-1000000, 1, 0));
  EXPECT_EQ(field(BinaryType::Interval, "-2 days"), interval(0, -2, 0));
  EXPECT_EQ(field(BinaryType::Interval, "2562047788:00:54.775807"), interval(INT64_MAX, 0, 0));
  EXPECT_EQ(field(BinaryType::Interval, "178956970 years 7 mons"), interval(0, 0, INT32_MAX));
  for (const char* bad : {"", "1", "1 day 2 years", "1 day 1 day", "1 fortnight", "1-2", "3 4:05:06",
                          "@ 1 year", "P1Y2M", "1 year  2 mons", "1:02:03", "00:00:00 1 day",
                          "2562047788:00:54.775808", "178956970 years 8 mons", "++1 day", "1 day "}) {
    EXPECT_EQ(field(BinaryType::Interval, bad), "REFUSED") << bad;
  }

  // inet and cidr: family (2, 3), bits, is_cidr, address size, address.
  EXPECT_EQ(field(BinaryType::Inet, "192.168.0.5"), std::string("\2\x20\0\4\xc0\xa8\0\5", 8));
  EXPECT_EQ(field(BinaryType::Inet, "192.168.0.5/24"), std::string("\2\x18\0\4\xc0\xa8\0\5", 8));
  EXPECT_EQ(field(BinaryType::Cidr, "10.0.0.0/8"), std::string("\2\x08\1\4\x0a\0\0\0", 8));
  EXPECT_EQ(field(BinaryType::Inet, "::ffff:1.2.3.4/120"),
            std::string("\3\x78\0\x10", 4) + std::string(10, '\0') + "\xff\xff\1\2\3\4");
  for (const char* bad :
       {"10.0.0.0", "10.0.0.1/8", "10.1/16", "::1/129", "10.0.0.0/33", "10.0.0.0/08", "x"}) {
    EXPECT_EQ(field(BinaryType::Cidr, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(field(BinaryType::Inet, "1.2.3.4/"), "REFUSED");
  EXPECT_EQ(field(BinaryType::Inet, "01.2.3.4"), "REFUSED");

  EXPECT_EQ(field(BinaryType::Macaddr, "08:00:2b:01:02:0F"), std::string("\x08\0\x2b\1\2\x0f", 6));
  EXPECT_EQ(field(BinaryType::Macaddr8, "08:00:2b:01:02:03:04:05"), std::string("\x08\0\x2b\1\2\3\4\5", 8));
  for (const char* bad : {"08:00:2b:01:02", "08-00-2b-01-02-03", "0800.2b01.0203", "08:00:2b:01:02:0g"}) {
    EXPECT_EQ(field(BinaryType::Macaddr, bad), "REFUSED") << bad;
  }
  EXPECT_EQ(field(BinaryType::Macaddr8, "08:00:2b:01:02:03"), "REFUSED");

  EXPECT_EQ(field(BinaryType::Oid, "4294967295"), be({0xFFFFFFFF}, 4));
  for (const char* bad : {"4294967296", "-1", "", "01", "1.0"}) {
    EXPECT_EQ(field(BinaryType::Oid, bad), "REFUSED") << bad;
  }
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
  TargetColumnTypes types = {{"customer_id", base_type(20, "bigint")},
                             {"since", base_type(1184, "timestamp with time zone")},
                             {"_cdc_lsn", base_type(3220, "pg_lsn")},
                             {"_cdc_deleted", base_type(16, "boolean")},
                             {"unmapped", base_type(790, "money")}};
  CopyPlan plan = plan_copy(m, types);
  EXPECT_TRUE(plan.binary()) << plan.text_because;
  EXPECT_EQ(plan.columns, (std::vector<BinaryEncoder>{{BinaryType::Int8}, {BinaryType::Timestamptz}}));

  types["since"] = base_type(790, "money");
  EXPECT_EQ(plan_copy(m, types).text_because, "column \"since\" is money");
  types["since"] = {.oid = 1187, .shown = "interval[]", .base = 1187, .element = 1186, .element_base = 1186};
  EXPECT_EQ(plan_copy(m, types).columns[1], (BinaryEncoder{BinaryType::Interval, 1186}));
  types["since"] = base_type(1184, "timestamp with time zone");

  types["_cdc_lsn"] = base_type(20, "bigint");
  EXPECT_EQ(plan_copy(m, types).text_because, "LSN column \"_cdc_lsn\" is not pg_lsn");
  types["_cdc_lsn"] = {.oid = 90007, .shown = "lsn_domain", .base = 3220};
  EXPECT_TRUE(plan_copy(m, types).binary());
  types["_cdc_lsn"] = base_type(3220, "pg_lsn");

  m.deletes = DeletePolicy::Soft;
  EXPECT_TRUE(plan_copy(m, types).binary());
  types["_cdc_deleted"] = base_type(23, "integer");
  EXPECT_EQ(plan_copy(m, types).text_because, "tombstone column \"_cdc_deleted\" is not boolean");
  m.deletes = DeletePolicy::Hard;  // no tombstone written
  EXPECT_TRUE(plan_copy(m, types).binary());

  types.erase("since");
  EXPECT_EQ(plan_copy(m, types).text_because, "column \"since\" is missing");
}

// Arbitrary bytes are refused or encoded, never read past.
TEST(CopyBinary, ArbitraryBytesNeverCrashAnEncoder) {
  std::mt19937 rng(7);
  const std::string alphabet = "0123456789-+.:/ eE\\xTtfNaInfiy{},\"abdlmorsy";
  for (int n = 0; n < 20000; ++n) {
    std::string v(rng() % 40, '\0');
    for (auto& c : v) c = rng() % 4 == 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
    for (int t = 0; t <= static_cast<int>(kLastBinaryType); ++t) {
      std::string out;
      if (append_copy_binary(out, static_cast<BinaryType>(t), v))
        EXPECT_GE(out.size(), 4u);
      else
        EXPECT_TRUE(out.empty());
      // The same text inside an array, bare and quoted.
      const BinaryEncoder array{static_cast<BinaryType>(t), 1};
      for (const std::string& a : {"{" + v + "}", "{\"" + v + "\"," + v + "}"}) {
        out = "x";
        if (append_copy_binary(out, array, a))
          EXPECT_GE(out.size(), 17u);
        else
          EXPECT_EQ(out, "x");
      }
    }
  }
}

}  // namespace
}  // namespace cdcsync
