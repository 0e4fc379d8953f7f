// Mapping: names, transforms, policies, validation and fail-closed binding of source relations.
#include "sinks/mapping.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "sinks/sink.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync {
namespace {

TableMapping customers() {
  TableMapping t;
  t.source = {"public", "customers"};
  t.target = {"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::copy()},
               {"full_name", "display_name", Transform::copy()},
               {"status", "status", Transform::copy()}};
  return t;
}

std::string run(const Transform& t, std::optional<std::string_view> in) {
  std::string out;
  return t.apply(in, out) ? out : "<null>";
}

TEST(MappingTransform, HmacSha256MatchesTheRfc4231TestVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(run(Transform::hmac_sha256("Jefe"), "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(run(Transform::hmac_sha256("Jefe"), std::nullopt), "<null>");
}

TEST(MappingTransform, HmacKeyFileLosesItsTrailingNewlineAndEmptyFilesAreRefused) {
  const std::string path = ::testing::TempDir() + "/hmac.key";
  std::ofstream(path) << "Jefe\n";
  EXPECT_EQ(run(Transform::hmac_sha256_from_file(path), "what do ya want for nothing?"),
            run(Transform::hmac_sha256("Jefe"), "what do ya want for nothing?"));
  std::ofstream(path, std::ios::trunc) << "\n";
  EXPECT_THROW(Transform::hmac_sha256_from_file(path), std::invalid_argument);
  EXPECT_THROW(Transform::hmac_sha256_from_file(path + ".missing"), std::invalid_argument);
  std::remove(path.c_str());
}

TEST(MappingTransform, MaskKeepsTheLastCharactersCountingCodePoints) {
  EXPECT_EQ(run(Transform::mask(4), "4111111111111111"), "************1111");
  EXPECT_EQ(run(Transform::mask(2), "äöüß"), "**üß");
  EXPECT_EQ(run(Transform::mask(10), "abc"), "abc");
  EXPECT_EQ(run(Transform::mask(0), "abc"), "***");
  EXPECT_EQ(run(Transform::mask(2), std::nullopt), "<null>");
}

TEST(MappingTransform, ConstantAndNullIgnoreTheValue) {
  EXPECT_EQ(run(Transform::constant("redacted"), "secret"), "redacted");
  EXPECT_EQ(run(Transform::constant("redacted"), std::nullopt), "redacted");
  EXPECT_EQ(run(Transform::null(), "secret"), "<null>");
  EXPECT_EQ(run(Transform::copy(), "x"), "x");
}

TEST(MappingPolicies, ParseTheirNamesAndRefuseOthers) {
  EXPECT_EQ(parse_delete_policy("soft"), DeletePolicy::Soft);
  EXPECT_EQ(parse_truncate_policy("fail"), TruncatePolicy::Fail);
  EXPECT_THROW(parse_delete_policy("Soft"), std::invalid_argument);
  EXPECT_THROW(parse_truncate_policy("truncate"), std::invalid_argument);
  EXPECT_EQ(to_string(DeletePolicy::Ignore), "ignore");
}

TEST(TableMapping, RequiresMappedDeterministicKeyColumns) {
  auto t = customers();
  EXPECT_NO_THROW(t.validate());
  t.key = {"email"};
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t = customers();
  t.columns[0].transform = Transform::mask(2);
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t.columns[0].transform = Transform::hmac_sha256("k");
  EXPECT_NO_THROW(t.validate());
  t.key.clear();
  EXPECT_THROW(t.validate(), std::invalid_argument);
}

TEST(TableMapping, RejectsDuplicateColumnsAndCollisionsWithTheGuard) {
  auto t = customers();
  t.columns.push_back({"status", "status2", Transform::copy()});
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t = customers();
  t.columns.push_back({"tier", "status", Transform::copy()});
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t = customers();
  t.columns.push_back({"tier", "_cdc_lsn", Transform::copy()});
  EXPECT_THROW(t.validate(), std::invalid_argument);
  t = customers();
  t.deletes = DeletePolicy::Soft;
  t.tombstone_column = "_cdc_lsn";
  EXPECT_THROW(t.validate(), std::invalid_argument);
}

TEST(Mapping, FindsTablesBySourceNameAndRefusesDuplicates) {
  Mapping m({customers()});
  EXPECT_NE(m.find({"public", "customers"}), nullptr);
  EXPECT_EQ(m.find({"public", "payment_methods"}), nullptr);
  EXPECT_THROW(Mapping({customers(), customers()}), std::invalid_argument);
  auto other = customers();
  other.source = {"public", "other"};
  EXPECT_THROW(Mapping({customers(), other}), std::invalid_argument);
}

TEST(MappingBinder, ResolvesMappedColumnsByNameNotPosition) {
  Mapping m({customers()});
  RelationBinder binder(m);
  const auto rel = test::relation("public", "customers", {"email", "status", "id", "full_name"});
  const BoundTable* b = binder.bind(rel, Lsn{1});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->source_index, (std::vector<std::size_t>{2, 3, 1}));
  EXPECT_EQ(b->key, (std::vector<std::size_t>{0}));
  EXPECT_EQ(binder.bind(rel, Lsn{1}), b);
}

TEST(MappingBinder, CountsUnmappedColumnsOnceAndNeverBindsThem) {
  Mapping m({customers()});
  RelationBinder binder(m);
  binder.bind(test::relation("public", "customers", {"id", "full_name", "status", "email"}), Lsn{1});
  auto drift = binder.take_new_drift();
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_EQ(drift[0].table, "public.customers");
  EXPECT_EQ(drift[0].column, "email");
  // A schema change adds another column: only that one is new.
  binder.bind(test::relation("public", "customers", {"id", "full_name", "status", "email", "ssn"}), Lsn{2});
  drift = binder.take_new_drift();
  ASSERT_EQ(drift.size(), 1u);
  EXPECT_EQ(drift[0].column, "ssn");
  EXPECT_EQ(binder.drift_counts().at("public.customers"), 2u);
}

TEST(MappingBinder, NamesTableAndColumnWhenAMappedColumnDisappears) {
  Mapping m({customers()});
  RelationBinder binder(m);
  try {
    binder.bind(test::relation("public", "customers", {"id", "status"}), Lsn{0x42});
    FAIL() << "expected PermanentError";
  } catch (const PermanentError& e) {
    EXPECT_EQ(e.table(), "public.customers");
    EXPECT_EQ(e.lsn(), Lsn{0x42});
    EXPECT_NE(std::string(e.what()).find("full_name"), std::string::npos);
  }
}

TEST(MappingBinder, LeavesUnmappedTablesOutAndRemembersThem) {
  Mapping m({customers()});
  RelationBinder binder(m);
  EXPECT_EQ(binder.bind(test::relation("public", "payment_methods", {"id", "card"}), Lsn{1}), nullptr);
  EXPECT_TRUE(binder.unmapped_tables().contains("public.payment_methods"));
  // Told once: the first binding makes news, a later version of the same table does not.
  ASSERT_TRUE(binder.has_news());
  EXPECT_EQ(binder.take_new_unmapped(), (std::vector<std::string>{"public.payment_methods"}));
  EXPECT_FALSE(binder.has_news());
  binder.bind(test::relation("public", "payment_methods", {"id", "card", "brand"}), Lsn{2});
  EXPECT_FALSE(binder.has_news());
}

// A mapped table renamed on the source arrives under its new name with the same OID: the session learnt the
// OID under the configured name, so it is bound to its entry (and said once); another table with a new name
// and another OID stays out.
TEST(MappingBinder, BindsAMappedTableRenamedOnTheSourceByItsOidAndSaysSoOnce) {
  Mapping m({customers()});
  m.set_source_oid(0, RelationId{16384});
  RelationBinder binder(m);
  const auto renamed = test::relation("public", "clients", {"id", "full_name", "status"}, 16384);
  const BoundTable* b = binder.bind(renamed, Lsn{1});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->mapping->target, (QualifiedName{"ref", "customer"}));
  const auto renames = binder.take_new_renames();
  ASSERT_EQ(renames.size(), 1u);
  EXPECT_EQ(renames[0], (std::pair<std::string, std::string>{"public.customers", "public.clients"}));
  binder.bind(test::relation("public", "clients", {"id", "full_name", "status", "email"}, 16384), Lsn{2});
  EXPECT_TRUE(binder.take_new_renames().empty()) << "said once per name";
  EXPECT_EQ(binder.bind(test::relation("public", "clients_old", {"id"}, 16999), Lsn{3}), nullptr);
  // Without the OID learnt, a renamed table is an unmapped one.
  Mapping unresolved({customers()});
  RelationBinder plain(unresolved);
  EXPECT_EQ(plain.bind(renamed, Lsn{1}), nullptr);
}

}  // namespace
}  // namespace cdcsync
