// The bulk loader's pure parts: which way each column travels, the rewriting of COPY data from the source's
// format to the target's, the cutting of a table into block ranges, and how progress reads.
#include <gtest/gtest.h>

#include "daemon/core/bulk_parts.h"
#include "daemon/core/bulk_rows.h"
#include "daemon/ops/load_progress.h"
#include "decoders/pg_types.h"
#include "sinks/copy_binary.h"

namespace cdcsync {
namespace {

using namespace std::chrono_literals;

ColumnType type(std::uint32_t oid, std::string shown, char kind = 'b') {
  return {.oid = oid, .shown = std::move(shown), .base = oid, .base_kind = kind};
}

// public.customers (id, full_name, email) -> ref.customer (customer_id, display_name, email_hash), email
// through hmac_sha256, soft deletes.
TableMapping customers() {
  TableMapping m;
  m.source = {"public", "customers"};
  m.target = {"ref", "customer"};
  m.key = {"id"};
  m.columns = {{"id", "customer_id", Transform::copy()},
               {"full_name", "display_name", Transform::copy()},
               {"email", "email_hash", Transform::hmac_sha256("k")}};
  m.deletes = DeletePolicy::Soft;
  return m;
}

TargetColumnTypes source_types(std::uint32_t id_oid = pgtype::kInt8) {
  return {{"id", type(id_oid, "bigint")},
          {"full_name", type(pgtype::kText, "text")},
          {"email", type(pgtype::kText, "text")}};
}

TargetColumnTypes target_types(std::uint32_t name_oid = pgtype::kText) {
  return {{"customer_id", type(pgtype::kInt8, "bigint")},
          {"display_name", type(name_oid, "text")},
          {"email_hash", type(pgtype::kText, "text")},
          {"_cdc_lsn", type(pgtype::kPgLsn, "pg_lsn")},
          {"_cdc_deleted", type(pgtype::kBool, "boolean")}};
}

void field(std::string& out, std::string_view bytes) {
  append_be32(out, static_cast<std::uint32_t>(bytes.size()));
  out.append(bytes);
}

std::string int8(std::int64_t v) {
  std::string s;
  append_be64(s, static_cast<std::uint64_t>(v));
  return s;
}

// A source row as COPY TO (FORMAT binary) sends it: id, full_name, email.
void source_row(std::string& out, std::int64_t id, std::optional<std::string> name, std::string email) {
  append_copy_binary_row(out, 3);
  field(out, int8(id));
  if (name) {
    field(out, *name);
  } else {
    append_copy_binary_null(out);
  }
  field(out, email);
}

TEST(BinaryCompatible, TheSameBuiltInTypeEnumsAndTextLikeTypesPassThrough) {
  EXPECT_TRUE(binary_compatible(type(pgtype::kInt8, "bigint"), type(pgtype::kInt8, "bigint")));
  EXPECT_TRUE(binary_compatible(type(pgtype::kVarchar, "varchar"), type(pgtype::kText, "text")));
  EXPECT_TRUE(binary_compatible(type(70000, "mood", 'e'), type(80000, "mood", 'e')));
  EXPECT_FALSE(binary_compatible(type(pgtype::kInt4, "integer"), type(pgtype::kInt8, "bigint")));
  EXPECT_FALSE(binary_compatible(type(70000, "a composite", 'c'), type(70000, "a composite", 'c')))
      << "a user type's binary form may name OIDs of its own server";
  ColumnType ints{
      .oid = pgtype::kInt4Array, .shown = "integer[]", .base = pgtype::kInt4Array, .element = pgtype::kInt4};
  ColumnType domains = ints;
  domains.element = 90000;  // an array of a domain names the domain's OID in every value
  EXPECT_TRUE(binary_compatible(ints, ints));
  EXPECT_FALSE(binary_compatible(domains, domains));
}

TEST(PlanRows, SameTypesPassThroughTransformedColumnsAreReadAsTextAndEncoded) {
  const TableMapping m = customers();
  const RowFormat f = plan_rows(m, source_types(), target_types(), CopyFormat::Binary, false, false);
  ASSERT_TRUE(f.binary) << f.text_because;
  EXPECT_EQ(f.columns[0].way, ColumnWay::Verbatim);
  EXPECT_EQ(f.columns[1].way, ColumnWay::Verbatim);
  EXPECT_EQ(f.columns[2].way, ColumnWay::Encode);
  EXPECT_EQ(f.select, (std::vector<std::string>{"t.\"id\"", "t.\"full_name\"", "t.\"email\""}));
  EXPECT_EQ(f.target_fields(), 5u) << "three columns, the version, the tombstone";
}

TEST(PlanRows, ADifferentTypeIsReadAsItsOutputTextAndEncodedByTheTargetsEncoder) {
  const RowFormat f =
      plan_rows(customers(), source_types(pgtype::kInt4), target_types(), CopyFormat::Binary, false, false);
  ASSERT_TRUE(f.binary);
  EXPECT_EQ(f.columns[0].way, ColumnWay::Encode);
  EXPECT_EQ(f.select[0],
            "CASE WHEN t.\"id\" IS NOT DISTINCT FROM NULL THEN NULL ELSE pg_catalog.concat(t.\"id\") END");
}

TEST(PlanRows, AColumnNoEncoderWritesMakesTheTableText) {
  TargetColumnTypes t = target_types();
  t["customer_id"] = type(pgtype::kMoney, "money");  // bigint -> money: neither the same type nor an encoder
  const RowFormat f = plan_rows(customers(), source_types(), t, CopyFormat::Binary, false, false);
  EXPECT_FALSE(f.binary);
  EXPECT_NE(f.text_because.find("customer_id"), std::string::npos) << f.text_because;
  EXPECT_TRUE(f.parse_text) << "the email's transform needs its field";
  EXPECT_FALSE(plan_rows(customers(), source_types(), target_types(), CopyFormat::Text, false, false).binary);
}

TEST(PlanRows, ARowFilterReadsTextAndCarriedKeysFollowTheColumns) {
  const RowFormat f = plan_rows(customers(), source_types(), target_types(), CopyFormat::Binary, true, true);
  EXPECT_FALSE(f.binary);
  EXPECT_TRUE(f.parse_text);
  EXPECT_EQ(f.carried, 1u);
  EXPECT_EQ(f.select.back(), "t.\"id\"::text");
  EXPECT_EQ(f.select.front(), "t.\"id\"::text") << "copied columns as verify reads them";
  EXPECT_EQ(f.target_fields(), 6u);
}

TEST(RowRewriter, PassesSameTypedFieldsThroughAndAppendsTheVersionAndTombstone) {
  const TableMapping m = customers();
  const RowFormat f = plan_rows(m, source_types(), target_types(), CopyFormat::Binary, false, false);
  RowRewriter rw{m, f, Lsn{0x10}};
  std::string in;
  append_copy_binary_header(in);
  source_row(in, 1, "Ada", "ada@example.com");
  std::string second;
  source_row(second, 2, std::nullopt, "bob@example.com");
  append_copy_binary_trailer(second);

  std::string out;
  rw.begin(out);
  EXPECT_EQ(rw.add(in, out), 1u);
  EXPECT_EQ(rw.add(second, out), 1u);
  rw.end(out);
  EXPECT_EQ(rw.rows_kept(), 2u);

  std::string hashed;
  m.columns[2].transform.apply("ada@example.com", hashed);
  std::string want;
  append_copy_binary_header(want);
  append_copy_binary_row(want, 5);
  field(want, int8(1));
  field(want, "Ada");
  field(want, hashed);
  append_copy_binary_lsn(want, 0x10);
  append_copy_binary_bool(want, false);
  EXPECT_EQ(out.substr(0, want.size()), want);
  EXPECT_EQ(out.substr(out.size() - 2), std::string("\xff\xff", 2)) << "the trailer";
}

TEST(RowRewriter, AValueTheEncoderRefusesStopsThePart) {
  const TableMapping m = customers();
  const RowFormat f =
      plan_rows(m, source_types(pgtype::kInt4), target_types(), CopyFormat::Binary, false, false);
  RowRewriter rw{m, f, Lsn{0x10}};
  std::string in;
  append_copy_binary_header(in);
  append_copy_binary_row(in, 3);
  field(in, "forty-two");  // the int4's output text the source sent: no integer
  field(in, "Ada");
  field(in, "a@b");
  std::string out;
  try {
    rw.add(in, out);
    FAIL() << "no refusal";
  } catch (const ValueRefused& r) {
    EXPECT_EQ(r.column, 0u);
  }
}

TEST(RowRewriter, RefusesARowCutShortOrWithTheWrongFieldCount) {
  const TableMapping m = customers();
  const RowFormat f = plan_rows(m, source_types(), target_types(), CopyFormat::Binary, false, false);
  std::string in;
  append_copy_binary_header(in);
  source_row(in, 1, "Ada", "a@b");
  std::string out;
  RowRewriter cut{m, f, Lsn{1}};
  EXPECT_THROW(cut.add(std::string_view(in).substr(0, in.size() - 2), out), CopyDataError);
  std::string two;
  append_copy_binary_header(two);
  append_copy_binary_row(two, 2);
  field(two, int8(1));
  field(two, "Ada");
  RowRewriter fields{m, f, Lsn{1}};
  EXPECT_THROW(fields.add(two, out), CopyDataError);
  RowRewriter header{m, f, Lsn{1}};
  EXPECT_THROW(header.add("not a header at all", out), CopyDataError);
}

TEST(RowRewriter, TextLinesGetTheirFieldsAppendedAndAreParsedOnlyToTransformOrFilter) {
  TableMapping m = customers();
  m.columns[2].transform = Transform::copy();
  const RowFormat plain = plan_rows(m, source_types(), target_types(), CopyFormat::Text, false, false);
  EXPECT_FALSE(plain.parse_text);
  RowRewriter rw{m, plain, Lsn{0x1A}};
  std::string out;
  rw.add("1\tAda\\tLovelace\t\\N\n", out);
  EXPECT_EQ(out, "1\tAda\\tLovelace\t\\N\t0/1A\tf\n");

  const RowFormat filtered = plan_rows(m, source_types(), target_types(), CopyFormat::Text, false, true);
  RowRewriter keep_two{m, filtered, Lsn{0x1A},
                       [](const std::vector<std::optional<std::string>>& key) { return key[0] == "2"; }};
  out.clear();
  keep_two.add("1\tAda\ta@b\n", out);
  keep_two.add("2\tBob\\\\\tb@c\n", out);
  EXPECT_EQ(out, "2\tBob\\\\\tb@c\t0/1A\tf\n");
  EXPECT_EQ(keep_two.rows_kept(), 1u);
}

TEST(SplitByCtid, ASmallTableOrOneWithoutCtidIsOnePart) {
  EXPECT_EQ(split_by_ctid({.pages = 100}, 4, 16384), std::vector<std::string>{""});
  EXPECT_EQ(split_by_ctid({.has_ctid = false, .pages = 100000}, 4, 16384), std::vector<std::string>{""});
}

TEST(SplitByCtid, ALargeTableIsCutIntoAboutFourRangesPerSessionTheLastOneOpen) {
  const auto parts = split_by_ctid({.pages = 10000}, 2, 16384);
  ASSERT_EQ(parts.size(), 8u);
  EXPECT_EQ(parts[0], " WHERE ctid < '(1250,0)'::pg_catalog.tid");
  EXPECT_EQ(parts[1], " WHERE ctid >= '(1250,0)'::pg_catalog.tid AND ctid < '(2500,0)'::pg_catalog.tid");
  EXPECT_EQ(parts[7], " WHERE ctid >= '(8750,0)'::pg_catalog.tid")
      << "rows in blocks added since are not lost";
  EXPECT_EQ(split_by_ctid({.pages = 100000}, 1, 5000).size(), 20u) << "no part above max_part_pages";
}

TEST(SplitByKey, CutPointsAreTakenEvenlyFromTheHistogramWithoutRepeats) {
  std::vector<std::string> bounds;
  for (int i = 0; i <= 100; ++i) bounds.push_back(std::to_string(i * 10));
  EXPECT_EQ(pick_bounds(bounds, 4), (std::vector<std::string>{"250", "500", "750"}));
  EXPECT_EQ(pick_bounds({"1", "1", "1", "1", "9"}, 4), (std::vector<std::string>{"1"}));
  EXPECT_TRUE(pick_bounds({"1", "2"}, 4).empty()) << "too few bounds to cut";
  EXPECT_TRUE(pick_bounds(bounds, 1).empty());
}

LoadProgressView view(std::uint64_t rows, std::optional<std::uint64_t> estimate, double seconds) {
  LoadProgressView v;
  v.elapsed =
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
  v.tables = {{.table = "ref.customer", .rows = rows, .estimate = estimate, .parts = 8, .parts_done = 2}};
  return v;
}

TEST(LoadProgress, TheBarShowsRowsRateAndTheTimeLeftFromTheEstimate) {
  const std::string bar = render_progress_bar(view(2'000'000, 5'000'000, 4), 120);
  EXPECT_EQ(bar.rfind("snapshot [#########...............]  40%", 0), 0u) << bar;
  EXPECT_NE(bar.find(" 40%  2,000,000/5,000,000 rows  500,000 rows/s  ETA 6s  0/1 tables"), std::string::npos)
      << bar;
  EXPECT_LE(render_progress_bar(view(1, 10, 1), 60).size(), 60u);
  const std::string unknown = render_progress_bar(view(300, std::nullopt, 1), 120);
  EXPECT_NE(unknown.find("?%  300 rows  300 rows/s  ETA ?"), std::string::npos) << unknown;
}

TEST(LoadProgress, TheLogLineSaysTheSameAndADoneTableCountsWhatItCopied) {
  EXPECT_EQ(render_progress_line(view(2'000'000, 5'000'000, 4)),
            "snapshot: 2000000 rows of ~5000000 (40%), 500000 rows/s, ETA 6s; 0 of 1 tables done");
  LoadProgressView done = view(4'990'000, 5'000'000, 10);
  done.tables[0].done = true;
  done.finished = true;
  EXPECT_EQ(render_progress_line(done),
            "snapshot: 4990000 rows of ~4990000 (100%), 499000 rows/s; 1 of 1 tables done");
}

}  // namespace
}  // namespace cdcsync
