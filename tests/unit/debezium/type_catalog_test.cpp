#include "decoders/type_catalog.h"

#include <gtest/gtest.h>

#include "decoders/pg_types.h"

namespace cdcsync {
namespace {

TEST(TypeCatalog, KnowsBuiltinTypesWithoutAServer) {
  const TypeCatalog cat;
  EXPECT_EQ(cat.resolve(pgtype::kNumeric, -1).kind(), TypeKind::Numeric);
  EXPECT_EQ(cat.resolve(pgtype::kTimestampTz, 6).kind(), TypeKind::TimestampTz);
  const ResolvedType arr = cat.resolve(pgtype::kTextArray, -1);
  EXPECT_EQ(arr.kind(), TypeKind::Array);
  EXPECT_EQ(arr.element_kind(), TypeKind::Text);
  EXPECT_EQ(cat.resolve(90000, -1).kind(), TypeKind::Unknown);
}

TEST(TypeCatalog, ResolvesDomainsToTheirBaseTypeAndTypmod) {
  TypeCatalog cat;
  cat.add_domain(17000, "public", "amount", pgtype::kNumeric, ((12 << 16) | 2) + 4);
  cat.add_domain(17001, "public", "positive_amount", 17000, -1);
  const ResolvedType r = cat.resolve(17001, -1);
  EXPECT_EQ(r.kind(), TypeKind::Numeric);
  EXPECT_EQ(r.typmod, ((12 << 16) | 2) + 4);
  // The column's own typmod wins.
  EXPECT_EQ(cat.resolve(17000, 42).typmod, 42);
}

TEST(TypeCatalog, SurvivesADomainCycle) {
  TypeCatalog cat;
  cat.add_domain(17000, "public", "a", 17001, -1);
  cat.add_domain(17001, "public", "b", 17000, -1);
  EXPECT_EQ(cat.resolve(17000, -1).kind(), TypeKind::Unknown);
}

TEST(TypeCatalog, ResolvesArraysOfEnumsAndExtensionTypes) {
  TypeCatalog cat;
  cat.add_enum(17010, "public", "tier", {"bronze", "gold"});
  cat.add_array(17011, "public", "_tier", 17010);
  cat.add_extension_type(17020, "public", "citext");
  cat.add_extension_type(17021, "public", "hstore");
  cat.add_extension_type(17022, "public", "geometry");
  const ResolvedType r = cat.resolve(17011, -1);
  EXPECT_EQ(r.element_kind(), TypeKind::Enum);
  EXPECT_EQ(r.element->labels.size(), 2u);
  EXPECT_EQ(cat.resolve(17020, -1).kind(), TypeKind::Text);
  EXPECT_EQ(cat.resolve(17021, -1).kind(), TypeKind::Hstore);
  EXPECT_EQ(cat.resolve(17022, -1).kind(), TypeKind::Unknown);
}

struct Collect : ArrayTextParser::Handler {
  std::string out;
  void open() override { out += '['; }
  void close() override { out += ']'; }
  void element(std::string_view text, bool is_null) override {
    out += is_null ? std::string{"<null>"} : "<" + std::string{text} + ">";
  }
};

std::string parse_array(std::string_view text) {
  Collect c;
  std::string scratch;
  if (!ArrayTextParser::parse(text, c, scratch)) return "error";
  return c.out;
}

TEST(ArrayTextParser, ParsesQuotingEscapesNullsAndNestedDimensions) {
  EXPECT_EQ(parse_array("{}"), "[]");
  EXPECT_EQ(parse_array("{1,2,NULL}"), "[<1><2><null>]");
  EXPECT_EQ(parse_array(R"({"a,b","q\"uote","back\\slash","NULL", spaced out ,null})"),
            R"([<a,b><q"uote><back\slash><NULL><spaced out><null>])");
  EXPECT_EQ(parse_array("{{1,2},{3,4}}"), "[[<1><2>][<3><4>]]");
  EXPECT_EQ(parse_array("[0:1]={7,8}"), "[<7><8>]");
  EXPECT_EQ(parse_array(R"({"",x})"), "[<><x>]");
}

TEST(ArrayTextParser, RejectsMalformedText) {
  for (const char* bad : {"", "{", "{1,2", "1,2}", "{1,,2}", "{\"open}", "{1}x", "{1}{2}"}) {
    EXPECT_EQ(parse_array(bad), "error") << bad;
  }
}

}  // namespace
}  // namespace cdcsync
