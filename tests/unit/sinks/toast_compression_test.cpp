// What the order-DB session's default_toast_compression becomes for each target.toast_compression, given
// what the server says (pg_settings: the setting, where it came from, whether lz4 is built in).
#include <gtest/gtest.h>

#include "sinks/postgres_sink.h"

namespace cdcsync {
namespace {

TEST(ToastCompression, AutoTakesLz4OnlyWhereNobodyChoseAMethod) {
  EXPECT_EQ(choose_toast_compression(ToastCompression::Auto, "pglz", "default", true).method, "lz4");
  // Chosen in postgresql.conf / ALTER SYSTEM, for the database, for the role: kept.
  for (const char* source : {"configuration file", "database", "user", "database user"}) {
    EXPECT_EQ(choose_toast_compression(ToastCompression::Auto, "pglz", source, true).method, "pglz") << source;
  }
  // A server built without lz4 keeps pglz, quietly.
  const auto no_lz4 = choose_toast_compression(ToastCompression::Auto, "pglz", "default", false);
  EXPECT_EQ(no_lz4.method, "pglz");
  EXPECT_FALSE(no_lz4.lz4_missing);
}

TEST(ToastCompression, ServerKeepsWhateverTheServerSays) {
  EXPECT_EQ(choose_toast_compression(ToastCompression::Server, "pglz", "default", true).method, "pglz");
  EXPECT_EQ(choose_toast_compression(ToastCompression::Server, "lz4", "configuration file", true).method, "lz4");
}

TEST(ToastCompression, AnExplicitMethodOverridesTheServerUnlessItIsMissing) {
  EXPECT_EQ(choose_toast_compression(ToastCompression::Lz4, "pglz", "database", true).method, "lz4");
  EXPECT_EQ(choose_toast_compression(ToastCompression::Pglz, "lz4", "configuration file", true).method, "pglz");
  const auto missing = choose_toast_compression(ToastCompression::Lz4, "pglz", "default", false);
  EXPECT_EQ(missing.method, "pglz");
  EXPECT_TRUE(missing.lz4_missing);
}

}  // namespace
}  // namespace cdcsync
