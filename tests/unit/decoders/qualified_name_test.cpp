// QualifiedName: one parser of schema.table (the config's rules) and its two spellings.
#include "decoders/qualified_name.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace cdcsync {
namespace {

std::string refusal(std::string_view text) {
  std::string error;
  EXPECT_FALSE(QualifiedName::parse(text, error).has_value()) << text;
  return error;
}

TEST(QualifiedName, ParsesPlainAndQuotedParts) {
  EXPECT_EQ(QualifiedName::parse("ref.customer"), (QualifiedName{"ref", "customer"}));
  EXPECT_EQ(QualifiedName::parse("\"odd.schema\".\"My \"\"T\"\"\""), (QualifiedName{"odd.schema", "My \"T\""}));
  EXPECT_EQ(QualifiedName::parse("\"Sales\".\"Customer\""), (QualifiedName{"Sales", "Customer"}));
  EXPECT_EQ(QualifiedName::parse("s_1.t$2"), (QualifiedName{"s_1", "t$2"}));
}

TEST(QualifiedName, RefusesWhatPostgresWouldFoldOrCannotNameAndSaysWhy) {
  EXPECT_NE(refusal("Ref.Customer").find("uppercase letter in an unquoted name"), std::string::npos);
  EXPECT_NE(refusal("customer").find("exactly one dot"), std::string::npos);
  EXPECT_NE(refusal("a.b.c").find("exactly one dot"), std::string::npos);
  EXPECT_NE(refusal(".b").find("empty part"), std::string::npos);
  EXPECT_NE(refusal("a.").find("empty part"), std::string::npos);
  EXPECT_NE(refusal("\"a.b").find("unterminated"), std::string::npos);
  EXPECT_NE(refusal("\"\".b").find("empty quoted identifier"), std::string::npos);
  EXPECT_NE(refusal("\"a\"x.b").find("text after a quoted identifier"), std::string::npos);
  EXPECT_NE(refusal("my-schema.b").find("'-' in an unquoted name"), std::string::npos);
  EXPECT_NE(refusal(std::string(64, 'a') + ".b").find("longer than 63 bytes"), std::string::npos);
  EXPECT_THROW(QualifiedName::parse("Ref.Customer"), std::invalid_argument);
}

TEST(QualifiedName, SpellsItselfAsPostgresPrintsARegclassAndQuotesBothPartsForSql) {
  EXPECT_EQ((QualifiedName{"public", "customers"}).str(), "public.customers");
  EXPECT_EQ((QualifiedName{"Sales", "my table"}).str(), "\"Sales\".\"my table\"");
  EXPECT_EQ((QualifiedName{"public", "Ta\"ble"}).str(), "public.\"Ta\"\"ble\"");
  EXPECT_EQ((QualifiedName{"my schema", "Ta\"ble"}).quoted(), "\"my schema\".\"Ta\"\"ble\"");
  EXPECT_EQ(sql_name("_x1$"), "_x1$");
  EXPECT_EQ(sql_name("1x"), "\"1x\"");
}

}  // namespace
}  // namespace cdcsync
