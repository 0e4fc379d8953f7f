#include <gtest/gtest.h>

#include "daemon/core/snapshot.h"
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

// The word-at-a-time scan against the byte-at-a-time definition: every special byte (and bytes next to the
// scan's thresholds: NUL, 0x01, 0x0d, 0x0e, '[', ']', high bytes) at every offset and alignment.
TEST(CopyTextField, TheWordAtATimeScanEscapesExactlyWhatTheByteAtATimeOneDoes) {
  const auto reference = [](std::string_view v) {
    std::string out;
    for (char c : v) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          out.push_back(c);
      }
    }
    return out;
  };
  const std::string probes = std::string("\\\t\n\r\x0e\x01[]\x80\xff\x5c\x0c", 12) + std::string(1, '\0');
  std::size_t checked = 0;
  for (std::size_t length = 0; length <= 40; ++length) {
    for (std::size_t at = 0; at < std::max<std::size_t>(length, 1); ++at) {
      for (char probe : probes) {
        std::string v(length, 'a');
        if (length > 0) v[at] = probe;
        if (length > 20) v[length - 1 - at / 2] = probes[(at + length) % probes.size()];
        for (std::size_t shift = 0; shift < 8; ++shift) {
          const std::string padded = std::string(shift, '-') + v;
          std::string out;
          append_copy_text(out, std::string_view{padded}.substr(shift));
          ASSERT_EQ(out, reference(v)) << "length " << length << " at " << at << " probe " << int(probe);
          ++checked;
        }
      }
    }
  }
  EXPECT_GT(checked, 10000u);
}

}  // namespace
}  // namespace cdcsync
