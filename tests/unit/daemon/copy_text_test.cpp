#include <gtest/gtest.h>

#include "daemon/snapshot.h"

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

}  // namespace
}  // namespace cdcsync
