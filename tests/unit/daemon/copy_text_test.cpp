#include <gtest/gtest.h>

#include "daemon/snapshot.h"
#include "sinks/copy_text.h"

namespace cdcsync {
namespace {

TEST(CopyTextRow, SplitsOnTabsAndReadsNulls) {
  Tuple t;
  std::string scratch;
  ASSERT_TRUE(parse_copy_text_row("1\tAda\t\\N\n", 3, t, scratch));
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.value(0), "1");
  EXPECT_EQ(t.value(1), "Ada");
  EXPECT_TRUE(t.is_null(2));
}

TEST(CopyTextRow, UnescapesBackslashSequences) {
  Tuple t;
  std::string scratch;
  ASSERT_TRUE(parse_copy_text_row("a\\tb\\nc\\\\d\\x41\\101\\N", 1, t, scratch));
  EXPECT_EQ(t.value(0), std::string("a\tb\nc\\dAAN"));
}

TEST(CopyTextRow, KeepsEmptyStringsApartFromNull) {
  Tuple t;
  std::string scratch;
  ASSERT_TRUE(parse_copy_text_row("\t\\N", 2, t, scratch));
  EXPECT_FALSE(t.is_null(0));
  EXPECT_EQ(t.value(0), "");
  EXPECT_TRUE(t.is_null(1));
}

TEST(CopyTextRow, RejectsWrongColumnCountsAndDanglingEscapes) {
  Tuple t;
  std::string scratch;
  EXPECT_FALSE(parse_copy_text_row("1\t2", 3, t, scratch));
  EXPECT_FALSE(parse_copy_text_row("1\t2\t3\t4", 3, t, scratch));
  EXPECT_FALSE(parse_copy_text_row("abc\\", 1, t, scratch));
  EXPECT_FALSE(parse_copy_text_row("\\x", 1, t, scratch));
}

TEST(CopyTextField, EscapesOnlyTheFourSpecialBytesAndRoundTrips) {
  std::string out;
  append_copy_text(out, "plain");
  EXPECT_EQ(out, "plain");
  out.clear();
  append_copy_text(out, "\\a\tb\nc\rd\\");
  EXPECT_EQ(out, "\\\\a\\tb\\nc\\rd\\\\");
  // Every byte value, long runs between escapes, and an escape at each end.
  std::vector<std::string> fields;
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  fields.push_back(all);
  fields.push_back(std::string(5000, 'x') + "\t" + std::string(3000, 'y') + "\\");
  fields.push_back("\n" + std::string(70000, 'z'));
  fields.push_back("");
  std::string row;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) row.push_back('\t');
    append_copy_text(row, fields[i]);
  }
  Tuple t;
  std::string scratch;
  ASSERT_TRUE(parse_copy_text_row(row, fields.size(), t, scratch));
  for (std::size_t i = 0; i < fields.size(); ++i) EXPECT_EQ(t.value(i), fields[i]) << "field " << i;
}

}  // namespace
}  // namespace cdcsync
