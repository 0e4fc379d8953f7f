// The pieces of `cdcsync verify` that must agree with their SQL twins byte for byte, and the comparison.
#include "daemon/tools/verify.h"

#include <gtest/gtest.h>

namespace cdcsync::verify {
namespace {

TableMapping customers(DeletePolicy deletes = DeletePolicy::Soft) {
  TableMapping t;
  t.source = {"public", "customers"};
  t.target = {"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::copy()}, {"full_name", "display_name", Transform::copy()}};
  t.deletes = deletes;
  return t;
}

RowDigest row(std::int64_t hash, std::string key) {
  return RowDigest{hash, {std::move(key)}};
}

TEST(VerifyCanonicalText, TellsNullFromEmptyAndSeparatorsInsideValuesFromBoundaries) {
  std::string out;
  append_canonical(out, std::nullopt);
  append_canonical(out, std::string_view{});
  append_canonical(out, std::string_view{"a;b"});
  append_canonical(out, std::string_view{"é"});
  EXPECT_EQ(out, "N;0:;3:a;b;2:é;");
}

TEST(VerifyRowHash, IsTheFirstEightBytesOfMd5AsASignedBigint) {
  // md5("") = d41d8cd98f00b204...; PostgreSQL: ('x' || left(md5(''), 16))::bit(64)::bigint
  EXPECT_EQ(row_hash(""), -3162216497309240828LL);
}

TEST(VerifyBucket, IsTheFirstFourBytesOfMd5ModuloTheBucketCount) {
  EXPECT_EQ(bucket_of("", 7), 4u);
  EXPECT_EQ(bucket_of("2:42;", 1000), 560u);
  EXPECT_EQ(bucket_of("2:42;", 1), 0u);
}

TEST(VerifyHashSum, PrintsAndParsesBackSumsBeyondSixtyFourBits) {
  HashSum big = HashSum{INT64_MAX} * 1000 + 7;
  EXPECT_EQ(parse_sum(to_string(big)), big);
  EXPECT_EQ(parse_sum(to_string(-big)), -big);
  EXPECT_EQ(to_string(0), "0");
  EXPECT_EQ(parse_sum("-42"), HashSum{-42});
  EXPECT_FALSE(parse_sum("12a"));
  EXPECT_FALSE(parse_sum(""));
}

TEST(VerifySql, BuildsTheSameEncodingAsTheCppSide) {
  const auto sql = canonical_sql({"t.\"a\""});
  EXPECT_NE(sql.find("octet_length((t.\"a\")::text)"), std::string::npos);
  EXPECT_NE(sql.find("'N;'"), std::string::npos);
  EXPECT_NE(bucket_sql({"t.\"a\""}, 16).find("% 16"), std::string::npos);
}

TEST(VerifyDiff, SortsKeysIntoMissingExtraAndDifferentAndPrintsTargetKeyNames) {
  const auto t = customers();
  RowDigests source{{"1:1;", row(10, "1")}, {"1:2;", row(20, "2")}, {"1:3;", row(30, "3")}};
  RowDigests target{{"1:1;", row(10, "1")}, {"1:3;", row(31, "3")}, {"1:4;", row(40, "4")}};
  const auto d = diff_rows(t, source, target);
  ASSERT_EQ(d.missing.size(), 1u);
  EXPECT_EQ(d.missing[0].shown, "customer_id=2");
  ASSERT_EQ(d.extra.size(), 1u);
  EXPECT_EQ(d.extra[0].shown, "customer_id=4");
  ASSERT_EQ(d.different.size(), 1u);
  EXPECT_EQ(d.different[0].shown, "customer_id=3");
  EXPECT_EQ(d.size(), 3u);
}

TEST(VerifyDiff, DoesNotCountRowsKeptOnPurposeByDeletesIgnore) {
  const auto t = customers(DeletePolicy::Ignore);
  RowDigests source{};
  RowDigests target{{"1:4;", row(40, "4")}};
  EXPECT_EQ(diff_rows(t, source, target).size(), 0u);
}

TEST(VerifyDiff, KeepsOnlyKeysThatMismatchInBothPasses) {
  RowDiff first;
  first.missing = {{"1:1;", "customer_id=1"}};
  first.different = {{"1:2;", "customer_id=2"}};
  RowDiff second;
  second.different = {{"1:2;", "customer_id=2"}, {"1:9;", "customer_id=9"}};
  const auto both = second.intersect(first);
  ASSERT_EQ(both.different.size(), 1u);
  EXPECT_EQ(both.different[0].shown, "customer_id=2");
  EXPECT_TRUE(both.missing.empty());
}

TEST(VerifyBuckets, ReportsBucketsPresentOnOneSideOnlyOrWithOtherSums) {
  BucketSums source{{0, {2, 5}}, {1, {1, 7}}, {3, {1, 1}}};
  BucketSums target{{0, {2, 5}}, {1, {1, 8}}, {2, {1, 1}}};
  EXPECT_EQ(differing_buckets(source, target), (std::vector<std::uint32_t>{1, 2, 3}));
}

TEST(VerifyDescribeKey, NamesEveryColumnOfACompositeKey) {
  TableMapping t;
  t.source = {"public", "lines"};
  t.target = {"ref", "line"};
  t.key = {"order_id", "line_no"};
  t.columns = {{"order_id", "order_id", Transform::copy()},
               {"line_no", "line", Transform::copy()},
               {"sku", "sku", Transform::copy()}};
  EXPECT_EQ(describe_key(t, RowDigest{0, {"7", "2"}}), "(order_id=7, line=2)");
}

}  // namespace
}  // namespace cdcsync::verify
