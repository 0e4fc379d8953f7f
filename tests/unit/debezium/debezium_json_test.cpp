// Value encodings. Expected values follow the Debezium PostgreSQL connector documentation
// (documentation/modules/ROOT/pages/connectors/postgresql.adoc, "Data type mappings"); the section is cited
// on each test.
#include <gtest/gtest.h>

#include "decoders/debezium_json.h"
#include "decoders/pg_types.h"
#include "tests/unit/debezium/debezium_test_util.h"

namespace cdcsync {
namespace {

using testing::encode_one;
using testing::test_options;

class DebeziumValues : public ::testing::Test {
 protected:
  TypeCatalog catalog_;
  DebeziumEncoder enc_{test_options(), catalog_};

  std::string str(Oid oid, std::int32_t typmod, std::string text) {
    auto r = encode_one(enc_, oid, typmod, std::move(text));
    EXPECT_TRUE(r.v().IsString()) << text;
    return r.v().IsString() ? r.v().GetString() : "";
  }
  std::int64_t num(Oid oid, std::int32_t typmod, std::string text) {
    auto r = encode_one(enc_, oid, typmod, std::move(text));
    EXPECT_TRUE(r.v().IsInt64()) << text;
    return r.v().IsInt64() ? r.v().GetInt64() : 0;
  }
};

// "Basic types": BOOLEAN -> BOOLEAN.
TEST_F(DebeziumValues, EncodesBooleans) {
  EXPECT_TRUE(encode_one(enc_, pgtype::kBool, -1, "t").v().GetBool());
  EXPECT_FALSE(encode_one(enc_, pgtype::kBool, -1, "f").v().GetBool());
}

// "Basic types": BIT(1) -> BOOLEAN; BIT(>1) -> io.debezium.data.Bits, little-endian, numBytes = n/8 (+1);
// BIT VARYING -> Bits sized based on the content.
// PostgresValueConverter.convertBits: bit(n) and bit varying alike are java.util.BitSet.toByteArray, sized to
// the highest set bit: trailing zero bytes are dropped, all zeros are no bytes.
TEST_F(DebeziumValues, EncodesBitsLittleEndian) {
  EXPECT_TRUE(encode_one(enc_, pgtype::kBit, 1, "1").v().GetBool());
  EXPECT_EQ(str(pgtype::kBit, 3, "101"), "BQ==");                // 0b00000101
  EXPECT_EQ(str(pgtype::kBit, 16, "0000000000000101"), "BQ==");  // {0x05}: the zero byte above is dropped
  EXPECT_EQ(str(pgtype::kBit, 16, "1000000000000000"), "AIA=");  // {0x00, 0x80}
  EXPECT_EQ(str(pgtype::kBit, 16, "0000000000000000"), "");      // no bytes
  EXPECT_EQ(str(pgtype::kVarbit, 33, "101"), "BQ==");            // one byte, not five
}

// "Basic types": SMALLINT -> INT16, INTEGER -> INT32, BIGINT/OID -> INT64.
TEST_F(DebeziumValues, EncodesIntegersAsNumbers) {
  EXPECT_EQ(num(pgtype::kInt2, -1, "-32768"), -32768);
  EXPECT_EQ(num(pgtype::kInt4, -1, "2147483647"), 2147483647);
  EXPECT_EQ(num(pgtype::kInt8, -1, "-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(num(pgtype::kOid, -1, "4294967295"), 4294967295LL);
}

// "Basic types": REAL -> FLOAT32, DOUBLE PRECISION -> FLOAT64. JSON has no NaN literal: Kafka's JsonConverter
// (Jackson) writes non-finite doubles as the strings "NaN", "Infinity", "-Infinity".
TEST_F(DebeziumValues, EncodesFloatsAndQuotesNonFiniteOnes) {
  EXPECT_DOUBLE_EQ(encode_one(enc_, pgtype::kFloat8, -1, "1.5e-07").v().GetDouble(), 1.5e-07);
  EXPECT_FLOAT_EQ(encode_one(enc_, pgtype::kFloat4, -1, "3.14").v().GetFloat(), 3.14f);
  EXPECT_EQ(str(pgtype::kFloat8, -1, "NaN"), "NaN");
  EXPECT_EQ(str(pgtype::kFloat4, -1, "-Infinity"), "-Infinity");
}

constexpr std::int32_t numeric_typmod(int precision, int scale) {
  return ((precision << 16) | scale) + 4;
}

// "Decimal types", decimal.handling.mode=precise: NUMERIC(M,D) -> org.apache.kafka.connect.data.Decimal
// (BYTES, the unscaled value; `scale` schema parameter).
TEST_F(DebeziumValues, EncodesFixedScaleNumericAsDecimalBytes) {
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(12, 2), "1234.56"), "AeJA");  // 123456 = 0x01E240
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(12, 2), "-1.00"), "nA==");    // -100 = 0x9C
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(12, 2), "0.00"), "AA==");
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(5, 0), "128"), "AIA=");  // sign byte kept
  // Beyond 64 bits: 1234567890123456789012 (numeric(30,2) "12345678901234567890.12").
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(30, 2), "12345678901234567890.12"), "Qu0SOwvYIDoU");
  EXPECT_EQ(str(pgtype::kNumeric, numeric_typmod(30, 2), "-12345678901234567890.12"), "vRLtxPQn38Xs");
}

// "Decimal types": NUMERIC without scale constraints -> io.debezium.data.VariableScaleDecimal {scale, value}.
TEST_F(DebeziumValues, EncodesUnconstrainedNumericAsVariableScaleDecimal) {
  const auto r = encode_one(enc_, pgtype::kNumeric, -1, "1.500");
  ASSERT_TRUE(r.v().IsObject());
  EXPECT_EQ(r.v()["scale"].GetInt(), 1);  // trailing zeros stripped: 1.5
  EXPECT_STREQ(r.v()["value"].GetString(), "Dw==");
  const auto whole = encode_one(enc_, pgtype::kNumeric, -1, "100");
  EXPECT_EQ(whole.v()["scale"].GetInt(), 0);
}

// "Decimal types": NaN is representable only with decimal.handling.mode string ("NAN") or double (NaN).
// In precise mode the connector fails; the encoder sends null and counts it.
TEST_F(DebeziumValues, EncodesNumericNaNPerMode) {
  EXPECT_TRUE(encode_one(enc_, pgtype::kNumeric, -1, "NaN").v().IsNull());
  EXPECT_EQ(enc_.special_numeric_values(), 1u);

  DebeziumOptions o = test_options();
  o.decimal = DecimalHandling::String;
  DebeziumEncoder as_string{o, catalog_};
  EXPECT_STREQ(encode_one(as_string, pgtype::kNumeric, -1, "NaN").v().GetString(), "NAN");
  EXPECT_STREQ(encode_one(as_string, pgtype::kNumeric, numeric_typmod(12, 2), "12.30").v().GetString(),
               "12.30");

  o.decimal = DecimalHandling::Double;
  DebeziumEncoder as_double{o, catalog_};
  EXPECT_STREQ(encode_one(as_double, pgtype::kNumeric, -1, "NaN").v().GetString(), "NaN");
  EXPECT_DOUBLE_EQ(encode_one(as_double, pgtype::kNumeric, -1, "12.5").v().GetDouble(), 12.5);
}

// "Decimal types": MONEY -> Decimal with scale from money.fraction.digits (default 2).
TEST_F(DebeziumValues, EncodesMoneyAsDecimalWithFractionDigits) {
  EXPECT_EQ(str(pgtype::kMoney, -1, "$1,234.56"), "AeJA");
  EXPECT_EQ(str(pgtype::kMoney, -1, "-$1.00"), "nA==");
}

// "Basic types": CHAR/VARCHAR/TEXT -> STRING; CITEXT -> STRING; UUID -> io.debezium.data.Uuid; JSON(B) ->
// io.debezium.data.Json; XML -> io.debezium.data.Xml; INET/CIDR/MACADDR -> STRING; ranges -> STRING;
// LTREE -> io.debezium.data.Ltree.
TEST_F(DebeziumValues, EncodesStringLikeTypesAsTheirText) {
  EXPECT_EQ(str(pgtype::kVarchar, 259, "Anne \"Kretchmar\"\n"), "Anne \"Kretchmar\"\n");
  EXPECT_EQ(str(pgtype::kBpchar, 9, "ab   "), "ab   ");
  EXPECT_EQ(str(pgtype::kUuid, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(str(pgtype::kJsonb, -1, R"({"a": [1, 2]})"), R"({"a": [1, 2]})");
  EXPECT_EQ(str(pgtype::kXml, -1, "<a>1</a>"), "<a>1</a>");
  EXPECT_EQ(str(pgtype::kInet, -1, "192.168.0.1/24"), "192.168.0.1/24");
  EXPECT_EQ(str(pgtype::kMacaddr, -1, "08:00:2b:01:02:03"), "08:00:2b:01:02:03");
  EXPECT_EQ(str(pgtype::kInt4Range, -1, "[1,10)"), "[1,10)");
  TypeCatalog cat;
  cat.add_extension_type(17001, "public", "citext");
  cat.add_extension_type(17002, "public", "ltree");
  DebeziumEncoder enc{test_options(), cat};
  EXPECT_STREQ(encode_one(enc, 17001, -1, "MiXeD").v().GetString(), "MiXeD");
  EXPECT_STREQ(encode_one(enc, 17002, -1, "Top.Science").v().GetString(), "Top.Science");
  EXPECT_EQ(enc.unknown_type_values(), 0u);
}

// "Temporal types", adaptive: DATE -> io.debezium.time.Date, days since the epoch (BC dates before it).
TEST_F(DebeziumValues, EncodesDatesAsEpochDays) {
  EXPECT_EQ(num(pgtype::kDate, -1, "1970-01-01"), 0);
  EXPECT_EQ(num(pgtype::kDate, -1, "2018-06-20"), 17702);
  EXPECT_EQ(num(pgtype::kDate, -1, "0044-03-15 BC"), -735160);
  // The connector parses "infinity"/"-infinity" to the LocalDates -5877611-06-21 / -5877611-06-22.
  EXPECT_EQ(num(pgtype::kDate, -1, "infinity"), -2147472692);
  EXPECT_EQ(num(pgtype::kDate, -1, "-infinity"), -2147472691);
}

// "Temporal types": adaptive TIME(1..3) -> io.debezium.time.Time (ms), TIME(4..6) and TIME ->
// io.debezium.time.MicroTime (µs); adaptive_time_microseconds -> always MicroTime; connect -> ms.
TEST_F(DebeziumValues, EncodesTimeByPrecisionMode) {
  EXPECT_EQ(num(pgtype::kTime, 3, "10:15:30.123"), 36930123);
  EXPECT_EQ(num(pgtype::kTime, -1, "10:15:30.123456"), 36930123456);
  EXPECT_EQ(num(pgtype::kTime, 6, "24:00:00"), 86400000000);
  DebeziumOptions o = test_options();
  o.time = TimePrecision::AdaptiveTimeMicroseconds;
  DebeziumEncoder micro{o, catalog_};
  EXPECT_EQ(encode_one(micro, pgtype::kTime, 3, "10:15:30.123").v().GetInt64(), 36930123000);
  o.time = TimePrecision::Connect;
  DebeziumEncoder connect{o, catalog_};
  EXPECT_EQ(encode_one(connect, pgtype::kTime, -1, "10:15:30.123456").v().GetInt64(), 36930123);
}

// "TIMESTAMP type": "2018-06-20 15:13:16.945104" is the MicroTimestamp 1529507596945104; TIMESTAMP(1..3) is
// io.debezium.time.Timestamp (ms); +/-infinity become 9223372036825200000 / -9223372036832400000.
TEST_F(DebeziumValues, EncodesTimestampsAsEpochMicrosOrMillis) {
  EXPECT_EQ(num(pgtype::kTimestamp, -1, "2018-06-20 15:13:16.945104"), 1529507596945104);
  EXPECT_EQ(num(pgtype::kTimestamp, 3, "2018-06-20 15:13:16.945"), 1529507596945);
  EXPECT_EQ(num(pgtype::kTimestamp, -1, "1969-12-31 23:59:59.5"), -500000);
  EXPECT_EQ(num(pgtype::kTimestamp, -1, "infinity"), 9223372036825200000);
  EXPECT_EQ(num(pgtype::kTimestamp, -1, "-infinity"), -9223372036832400000);
}

// "Basic types": TIMESTAMPTZ -> io.debezium.time.ZonedTimestamp, an ISO-8601 string in GMT; TIMETZ ->
// io.debezium.time.ZonedTime, likewise. Infinity passes through as "infinity".
TEST_F(DebeziumValues, EncodesZonedValuesInUtc) {
  EXPECT_EQ(str(pgtype::kTimestampTz, -1, "2018-06-20 17:13:16.945104+02"), "2018-06-20T15:13:16.945104Z");
  EXPECT_EQ(str(pgtype::kTimestampTz, -1, "2018-06-20 17:13:16+05:30"), "2018-06-20T11:43:16.000000Z");
  EXPECT_EQ(str(pgtype::kTimestampTz, 0, "2018-06-20 00:13:16+01"), "2018-06-19T23:13:16Z");
  EXPECT_EQ(str(pgtype::kTimestampTz, 3, "2018-06-20 17:13:16.5+00"), "2018-06-20T17:13:16.500Z");
  EXPECT_EQ(str(pgtype::kTimestampTz, -1, "infinity"), "infinity");
  EXPECT_EQ(str(pgtype::kTimeTz, -1, "10:15:30.25+02"), "08:15:30.25Z");
  EXPECT_EQ(str(pgtype::kTimeTz, -1, "01:00:00-03:30"), "04:30:00Z");
}

// "Basic types": INTERVAL -> io.debezium.time.MicroDuration, approximate microseconds with 365.25 / 12 days
// per month.
TEST_F(DebeziumValues, EncodesIntervalsAsApproximateMicros) {
  EXPECT_EQ(num(pgtype::kInterval, -1, "1 year 2 mons 3 days 04:05:06.78"), 37091106780000);
  EXPECT_EQ(num(pgtype::kInterval, -1, "-1 days +02:03:00"), -86400000000 + 7380000000);
  EXPECT_EQ(num(pgtype::kInterval, -1, "-00:00:01.5"), -1500000);
  EXPECT_EQ(num(pgtype::kInterval, -1, "00:00:00"), 0);
}

// "Basic types": BYTEA -> BYTES (base64 in JSON) by default, or hex/base64 strings per binary.handling.mode.
TEST_F(DebeziumValues, EncodesByteaPerBinaryHandlingMode) {
  EXPECT_EQ(str(pgtype::kBytea, -1, "\\x0102ff"), "AQL/");
  DebeziumOptions o = test_options();
  o.binary = BinaryHandling::Hex;
  DebeziumEncoder hex{o, catalog_};
  EXPECT_STREQ(encode_one(hex, pgtype::kBytea, -1, "\\x0102ff").v().GetString(), "0102ff");
}

// "Basic types": POINT -> io.debezium.data.geometry.Point {x, y} (plus the WKB and SRID of the struct).
TEST_F(DebeziumValues, EncodesPointAsStructWithWkb) {
  const auto r = encode_one(enc_, pgtype::kPoint, -1, "(1,2)");
  EXPECT_DOUBLE_EQ(r.v()["x"].GetDouble(), 1.0);
  EXPECT_DOUBLE_EQ(r.v()["y"].GetDouble(), 2.0);
  EXPECT_STREQ(r.v()["wkb"].GetString(), "AQEAAAAAAAAAAADwPwAAAAAAAABA");
  EXPECT_TRUE(r.v()["srid"].IsNull());
}

// PostgreSQL prints non-finite coordinates as Infinity/NaN; like other doubles they become Jackson's strings
// (RapidJSON cannot write them as numbers), and the event stays valid JSON.
TEST_F(DebeziumValues, EncodesNonFinitePointCoordinatesAsStrings) {
  const auto r = encode_one(enc_, pgtype::kPoint, -1, "(Infinity,NaN)");
  ASSERT_TRUE(r.v().IsObject());
  EXPECT_STREQ(r.v()["x"].GetString(), "Infinity");
  EXPECT_STREQ(r.v()["y"].GetString(), "NaN");
}

// "HSTORE type": json mode -> io.debezium.data.Json, e.g. {"key" : "val"}.
TEST_F(DebeziumValues, EncodesHstoreAsJsonString) {
  TypeCatalog cat;
  cat.add_extension_type(17003, "public", "hstore");
  DebeziumEncoder enc{test_options(), cat};
  // java.util.HashMap's order: "b\"q" hashes to bucket 0, "key" to bucket 14.
  EXPECT_STREQ(encode_one(enc, 17003, -1, R"("key"=>"val", "b\"q"=>NULL)").v().GetString(),
               R"({"b\"q":null,"key":"val"})");
}

// Elements of money[] and hstore[] are encoded like their scalars: an element's text is not overwritten
// while it is being read.
TEST_F(DebeziumValues, EncodesMoneyAndHstoreArrayElementsLikeScalars) {
  const auto money = encode_one(enc_, 791, -1, R"x({"$1.00","($2.50)","-$3.00"})x");
  ASSERT_TRUE(money.v().IsArray());
  ASSERT_EQ(money.v().Size(), 3u);
  EXPECT_STREQ(money.v()[0].GetString(), "ZA==");  // 100
  EXPECT_STREQ(money.v()[1].GetString(), "/wY=");  // -250
  EXPECT_STREQ(money.v()[2].GetString(), "/tQ=");  // -300
  TypeCatalog cat;
  cat.add_extension_type(17003, "public", "hstore");
  cat.add_array(17004, "public", "_hstore", 17003);
  DebeziumEncoder enc{test_options(), cat};
  const auto hstores = encode_one(enc, 17004, -1, R"({"\"a\"=>\"1\", \"b\"=>NULL"})");
  ASSERT_TRUE(hstores.v().IsArray());
  ASSERT_EQ(hstores.v().Size(), 1u);
  EXPECT_STREQ(hstores.v()[0].GetString(), R"({"a":"1","b":null})");
  EXPECT_EQ(enc.malformed_values(), 0u);
}

// "Basic types": ENUM -> io.debezium.data.Enum string; "Domain types": a domain is encoded as its base type.
TEST_F(DebeziumValues, EncodesEnumsAndDomainsThroughTheCatalog) {
  TypeCatalog cat;
  cat.add_enum(17010, "public", "tier", {"bronze", "silver", "gold"});
  cat.add_domain(17011, "public", "amount", pgtype::kNumeric, numeric_typmod(12, 2));
  DebeziumEncoder enc{test_options(), cat};
  EXPECT_STREQ(encode_one(enc, 17010, -1, "gold").v().GetString(), "gold");
  EXPECT_STREQ(encode_one(enc, 17011, -1, "1234.56").v().GetString(), "AeJA");
}

// Arrays are Kafka Connect ARRAYs of the element encoding (PostgresValueConverter's array schemas).
TEST_F(DebeziumValues, EncodesArraysOfElementEncodings) {
  const auto ints = encode_one(enc_, pgtype::kInt4Array, -1, "{1,2,NULL}");
  ASSERT_TRUE(ints.v().IsArray());
  EXPECT_EQ(ints.v()[1].GetInt(), 2);
  EXPECT_TRUE(ints.v()[2].IsNull());
  const auto texts = encode_one(enc_, pgtype::kTextArray, -1, R"({"a,b","say \"hi\"",NULL,"NULL",plain})");
  ASSERT_EQ(texts.v().Size(), 5u);
  EXPECT_STREQ(texts.v()[0].GetString(), "a,b");
  EXPECT_STREQ(texts.v()[1].GetString(), "say \"hi\"");
  EXPECT_TRUE(texts.v()[2].IsNull());
  EXPECT_STREQ(texts.v()[3].GetString(), "NULL");
  const auto nested = encode_one(enc_, pgtype::kInt8Array, -1, "{{1,2},{3,4}}");
  EXPECT_EQ(nested.v()[1][0].GetInt(), 3);
  const auto decimals = encode_one(enc_, pgtype::kNumericArray, numeric_typmod(12, 2), "{1234.56,-1.00}");
  EXPECT_STREQ(decimals.v()[0].GetString(), "AeJA");
  const auto dates = encode_one(enc_, pgtype::kDateArray, -1, "{2018-06-20}");
  EXPECT_EQ(dates.v()[0].GetInt(), 17702);
  const auto bad = encode_one(enc_, pgtype::kInt4Array, -1, "{1,2");
  EXPECT_STREQ(bad.v().GetString(), "{1,2");
  EXPECT_EQ(enc_.malformed_values(), 1u);
}

// Unknown (extension) types are never dropped: their text form, counted.
TEST_F(DebeziumValues, SendsUnknownTypesAsTextAndCountsThem) {
  EXPECT_EQ(str(90001, -1, "0101000020E6100000"), "0101000020E6100000");
  EXPECT_EQ(enc_.unknown_type_values(), 1u);
}

// "Toasted values": unchanged TOAST values become unavailable.value.placeholder
// (__debezium_unavailable_value); for bytea the placeholder's bytes.
TEST_F(DebeziumValues, SendsThePlaceholderForUnchangedToast) {
  auto rel = testing::make_relation("public", "t",
                                    {{"id", pgtype::kInt4, -1, true},
                                     {"doc", pgtype::kText},
                                     {"blob", pgtype::kBytea},
                                     {"tags", pgtype::kTextArray}});
  Change c;
  c.op = ChangeOp::Update;
  c.relation = rel;
  c.after.add_text("1");
  c.after.add_unchanged_toast();
  c.after.add_unchanged_toast();
  c.after.add_unchanged_toast();
  const auto d = testing::parse(enc_.encode_change({}, c, {}).value);
  EXPECT_STREQ(d["after"]["doc"].GetString(), "__debezium_unavailable_value");
  EXPECT_STREQ(d["after"]["blob"].GetString(), "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==");
  EXPECT_STREQ(d["after"]["tags"][0].GetString(), "__debezium_unavailable_value");
  EXPECT_EQ(enc_.unavailable_values(), 3u);
}

// Binary-mode values: decoded for the common fixed-size types, base64 of the raw bytes otherwise (counted).
TEST_F(DebeziumValues, DecodesBinaryModeValuesOrFallsBackToBase64) {
  auto rel =
      testing::make_relation("public", "t", {{"a", pgtype::kInt4}, {"b", pgtype::kDate}, {"c", 90002}});
  Change c;
  c.relation = rel;
  c.after.add_binary(std::string_view{"\x00\x00\x01\x00", 4});
  c.after.add_binary(std::string_view{"\x00\x00\x00\x00", 4});  // 2000-01-01
  c.after.add_binary(std::string_view{"\x01\x02\xff", 3});
  const auto d = testing::parse(enc_.encode_change({}, c, {}).value);
  EXPECT_EQ(d["after"]["a"].GetInt(), 256);
  EXPECT_EQ(d["after"]["b"].GetInt(), 10957);
  EXPECT_STREQ(d["after"]["c"].GetString(), "AQL/");
  EXPECT_EQ(enc_.unknown_type_values(), 1u);
}

}  // namespace
}  // namespace cdcsync
