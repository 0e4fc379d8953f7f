#include "decoders/pg_text.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace cdcsync {
namespace {

TEST(PgText, CountsDaysFromTheUnixEpoch) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(2000, 1, 1), kPgEpochUnixDays);
  EXPECT_EQ(days_from_civil(2018, 6, 20), 17702);
  EXPECT_EQ(days_from_civil(2024, 2, 29), 19782);
  EXPECT_EQ(days_from_civil(-43, 3, 15), -735160);  // 0044-03-15 BC
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
}

// std::chrono::year stops at 32767; PostgreSQL's dates go on to 5874897 AD and back to 4714 BC.
TEST(PgText, CountsDaysBeyondTheRangeOfChronoYears) {
  EXPECT_EQ(days_from_civil(5'874'897, 12, 31), 2'145'042'905);  // PostgreSQL's last date
  EXPECT_EQ(days_from_civil(-4713, 11, 24), -2'440'588);         // 4714-11-24 BC, the Julian day epoch
  EXPECT_EQ(days_from_civil(32'768, 1, 1) - days_from_civil(32'767, 1, 1), 365);
  EXPECT_EQ(days_from_civil(400'000, 3, 1) - days_from_civil(0, 3, 1), 1000 * 146'097);
}

// Linear in the day: a day past the month's end counts on into the next month.
TEST(PgText, CountsADayPastTheMonthsEndIntoTheNext) {
  EXPECT_EQ(days_from_civil(2023, 2, 31), days_from_civil(2023, 3, 3));
}

TEST(PgText, TurnsDaysBackIntoDatesAcrossTheWholeRange) {
  for (std::int64_t y : {-4713LL, -400LL, -1LL, 0LL, 1LL, 1969LL, 1970LL, 2000LL, 9999LL, 10000LL, 32767LL,
                         32768LL, 294276LL, 5874897LL}) {
    for (unsigned m = 1; m <= 12; ++m) {
      const CivilDate date = civil_from_days(days_from_civil(y, m, 28));
      EXPECT_EQ(date.year, y);
      EXPECT_EQ(date.month, m);
      EXPECT_EQ(date.day, 28u);
    }
  }
  const CivilDate leap = civil_from_days(days_from_civil(2024, 2, 29));
  EXPECT_EQ(leap.month, 2u);
  EXPECT_EQ(leap.day, 29u);
}

TEST(PgText, DividesTowardNegativeInfinity) {
  EXPECT_EQ(floor_div(7, 2), 3);
  EXPECT_EQ(floor_div(-7, 2), -4);
  EXPECT_EQ(floor_div(-8, 2), -4);
  EXPECT_EQ(floor_div(-1, 1000), -1);
}

TEST(PgText, ReadsHexDigitsOfEitherCase) {
  EXPECT_EQ(hex_value('0'), 0);
  EXPECT_EQ(hex_value('a'), 10);
  EXPECT_EQ(hex_value('F'), 15);
  EXPECT_EQ(hex_value('g'), -1);
}

}  // namespace
}  // namespace cdcsync
