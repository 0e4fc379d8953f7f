#include "decoders/lsn.h"

#include <gtest/gtest.h>

namespace cdcsync {
namespace {

TEST(Lsn, ParsesPostgresTextForm) {
  const auto lsn = Lsn::parse("16/B374D848");
  ASSERT_TRUE(lsn);
  EXPECT_EQ(lsn->value(), 0x16B374D848ULL);
  EXPECT_EQ(lsn->str(), "16/B374D848");
}

TEST(Lsn, RoundTripsExtremes) {
  EXPECT_EQ(Lsn::parse("0/0")->value(), 0u);
  EXPECT_FALSE(Lsn::parse("0/0")->valid());
  EXPECT_EQ(Lsn::parse("FFFFFFFF/FFFFFFFF")->value(), ~0ULL);
  EXPECT_EQ(Lsn{~0ULL}.str(), "FFFFFFFF/FFFFFFFF");
  EXPECT_EQ(Lsn::parse("a/b")->str(), "A/B");
}

TEST(Lsn, RejectsMalformedText) {
  for (const char* bad : {"", "/", "1/", "/1", "x/y", "+1/1", "1/-1", "123456789/0", "1/2/3", "1 /2", "12"}) {
    EXPECT_FALSE(Lsn::parse(bad)) << bad;
  }
}

TEST(Lsn, OrdersByPosition) {
  EXPECT_LT(*Lsn::parse("0/FFFFFFFF"), *Lsn::parse("1/0"));
  EXPECT_EQ(bytes_between(*Lsn::parse("0/10"), *Lsn::parse("0/30")), 0x20u);
  EXPECT_EQ(bytes_between(*Lsn::parse("0/30"), *Lsn::parse("0/10")), 0u);
}

}  // namespace
}  // namespace cdcsync
