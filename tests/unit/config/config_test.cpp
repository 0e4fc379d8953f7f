#include "daemon/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace cdcsync::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// The file the brief promises to load, byte for byte.
constexpr std::string_view kExample = R"(pipeline = "customers-to-orders"

[source]
conninfo    = "host=127.0.0.1 port=5432 dbname=customers user=cdcsync_source"
publication = "cdcsync_customers"
slot        = "cdcsync_customers_orders"
create_slot = true

[target]
conninfo = "host=127.0.0.1 port=5433 dbname=orders user=cdcsync_target"

[checkpoint]
redis = "redis://127.0.0.1:6379/0"

[metrics]
listen = "127.0.0.1:10187"

[[tables]]
source  = "public.customers"
target  = "ref.customer"
key     = ["id"]
columns = { id = "customer_id", full_name = "display_name", status = "status", tier = "tier" }
deletes = "soft"
)";

constexpr std::string_view kFile = "cdcsync.toml";

std::string replaced(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  const auto pos = out.find(from);
  EXPECT_NE(pos, std::string::npos) << "test bug: \"" << from << "\" not in the example";
  if (pos != std::string::npos) out.replace(pos, from.size(), to);
  return out;
}

std::vector<ConfigIssue> issues_of(std::string_view text) {
  try {
    load_config_from_string(text, kFile);
  } catch (const ConfigError& e) {
    return e.issues();
  }
  ADD_FAILURE() << "expected the config to be refused:\n" << text;
  return {};
}

std::string all_messages(const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (const auto& i : issues) out += i.str() + "\n";
  return out;
}

// A private temporary directory, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cdcsync-config-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path write(const std::string& name, std::string_view content, mode_t mode) const {
    const fs::path p = path_ / name;
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Config, LoadsTheExampleFileWithTheExpectedValues) {
  const Config c = load_config_from_string(kExample, kFile);
  EXPECT_EQ(c.pipeline, "customers-to-orders");
  EXPECT_EQ(c.source.conninfo, "host=127.0.0.1 port=5432 dbname=customers user=cdcsync_source");
  EXPECT_EQ(c.source.publication, "cdcsync_customers");
  EXPECT_EQ(c.source.slot, "cdcsync_customers_orders");
  EXPECT_TRUE(c.source.create_slot);
  EXPECT_FALSE(c.source.temporary_slot);
  EXPECT_FALSE(c.source.password_file.configured());
  EXPECT_EQ(c.source.proto_version, 1);
  EXPECT_EQ(c.source.streaming, StreamingMode::Off);
  EXPECT_EQ(c.source.status_interval, 1000ms);
  EXPECT_EQ(c.target.conninfo, "host=127.0.0.1 port=5433 dbname=orders user=cdcsync_target");
  EXPECT_EQ(c.target.progress_table, (QualifiedName{"ref", "cdc_progress"}));
  EXPECT_EQ(c.target.toast_compression, ToastCompression::Auto);
  EXPECT_EQ(c.checkpoint.redis, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.checkpoint.endpoint.host, "127.0.0.1");
  EXPECT_EQ(c.checkpoint.endpoint.port, 6379);
  EXPECT_EQ(c.checkpoint.endpoint.db, 0);
  EXPECT_EQ(c.checkpoint.lease_ttl, 10000ms);
  EXPECT_EQ(c.checkpoint.renew, 3000ms);
  EXPECT_FALSE(c.checkpoint.required);
  EXPECT_EQ(c.metrics.host, "127.0.0.1");
  EXPECT_EQ(c.metrics.port, 10187);
  EXPECT_EQ(c.batch.max_rows, 5000);
  EXPECT_EQ(c.batch.max_wait, 50ms);
  EXPECT_EQ(c.batch.max_txn_chunk_rows, 10000);
  EXPECT_EQ(c.snapshot.mode, SnapshotMode::Initial);
  EXPECT_FALSE(c.archive.enabled);
  EXPECT_FALSE(c.dead_letter.enabled);
  EXPECT_EQ(c.log.level, LogLevel::Info);
  EXPECT_EQ(c.log.format, LogFormat::Text);

  ASSERT_EQ(c.tables.size(), 1u);
  const TableMapping& t = c.tables[0];
  EXPECT_EQ(t.source, (QualifiedName{"public", "customers"}));
  EXPECT_EQ(t.target, (QualifiedName{"ref", "customer"}));
  EXPECT_EQ(t.key, std::vector<std::string>{"id"});
  EXPECT_EQ(t.deletes, DeletePolicy::Soft);
  EXPECT_EQ(t.truncate, TruncatePolicy::Fail);
  EXPECT_EQ(t.lsn_column, "_cdc_lsn");
  EXPECT_EQ(t.tombstone_column, "_cdc_deleted");
  EXPECT_EQ(t.line, 18);
}

TEST(Config, KeepsMappedColumnsInFileOrderNotAlphabeticalOrder) {
  const Config c = load_config_from_string(kExample, kFile);
  std::vector<std::pair<std::string, std::string>> columns;
  for (const auto& col : c.tables[0].columns) columns.emplace_back(col.source, col.target);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"id", "customer_id"}, {"full_name", "display_name"}, {"status", "status"}, {"tier", "tier"}};
  EXPECT_EQ(columns, expected);
}

TEST(Config, AcceptsCrlfLineEndingsAndAUtf8ByteOrderMark) {
  std::string crlf = "\xEF\xBB\xBF";
  for (char ch : kExample) {
    if (ch == '\n') crlf += '\r';
    crlf += ch;
  }
  const Config c = load_config_from_string(crlf, kFile);
  EXPECT_EQ(c.pipeline, "customers-to-orders");
  EXPECT_EQ(c.tables.at(0).columns.size(), 4u);
}

struct BadFile {
  std::string name;
  std::string text;
  std::string key;  // the issue that must be there
  int line;
  std::string says;
};

std::vector<BadFile> bad_files() {
  const std::string ex(kExample);
  return {
      {"syntax error", replaced(ex, "create_slot = true", "create_slot = tru"), "", 7, "TOML syntax error"},
      {"duplicate key", replaced(ex, "create_slot = true", "create_slot = true\nslot = \"again\""), "", 8,
       "TOML syntax error"},
      {"unknown key in a table mapping", replaced(ex, "columns = {", "colums = {"), "tables[0].colums", 22,
       "did you mean \"columns\""},
      {"unknown section", ex + "\n[bacth]\nmax_rows = 10\n", "bacth", 25, "did you mean \"batch\""},
      {"key in the wrong section", replaced(ex, "create_slot = true", "create_slot = true\nmax_rows = 10"),
       "source.max_rows", 8, "belongs in [batch]"},
      {"wrong type", ex + "\n[batch]\nmax_rows = \"5000\"\n", "batch.max_rows", 26,
       "expected an integer, got a string"},
      {"out of range", ex + "\n[batch]\nmax_rows = 0\n", "batch.max_rows", 26,
       "0 is below the minimum 1 rows"},
      {"port 70000", replaced(ex, "127.0.0.1:10187", "127.0.0.1:70000"), "metrics.listen", 16,
       "not in 1..65535"},
      {"remote metrics", replaced(ex, "127.0.0.1:10187", "0.0.0.0:10187"), "metrics.listen", 16,
       "allow_remote"},
      {"invalid enum", replaced(ex, "deletes = \"soft\"", "deletes = \"sof\""), "tables[0].deletes", 23,
       "\"sof\" is not one of \"hard\", \"soft\", \"ignore\""},
      {"missing required key", replaced(ex, "slot        = \"cdcsync_customers_orders\"\n", ""),
       "source.slot", 3, "required key is missing"},
      {"missing section", replaced(ex, "[checkpoint]\nredis = \"redis://127.0.0.1:6379/0\"\n", ""),
       "checkpoint.redis", 1, "section [checkpoint] is missing"},
      {"missing table section", ex.substr(0, ex.find("[[tables]]")), "tables", 1,
       "at least one table mapping"},
      {"bad conninfo", replaced(ex, "user=cdcsync_source", "user=cdcsync_source bogus=1"), "source.conninfo",
       4, "invalid connection option \"bogus\""},
      {"password in conninfo", replaced(ex, "user=cdcsync_target", "user=cdcsync_target password=hunter2"),
       "target.conninfo", 10, "contains a password"},
      {"password in a conninfo URI",
       replaced(ex, "\"host=127.0.0.1 port=5433 dbname=orders user=cdcsync_target\"",
                "\"postgresql://cdcsync_target:hunter2@127.0.0.1:5433/orders\""),
       "target.conninfo", 10, "contains a password"},
      {"insecure sslmode to a remote host",
       replaced(ex, "host=127.0.0.1 port=5433", "host=orders.db.example port=5433"), "target.conninfo", 10,
       "sslmode=prefer (libpq's default) does not verify the non-loopback host orders.db.example"},
      {"sslmode require to a remote host",
       replaced(ex, "host=127.0.0.1 port=5432", "host=10.1.2.3 sslmode=require port=5432"), "source.conninfo",
       4, "sslmode=require does not verify"},
      {"bad slot name", replaced(ex, "cdcsync_customers_orders", "Cdcsync-Orders"), "source.slot", 6,
       "must match [a-z0-9_]{1,63}"},
      {"publication name with a quote", replaced(ex, "\"cdcsync_customers\"", "'cdc\"pub'"),
       "source.publication", 5, "must not contain quotes"},
      {"unmapped key column", replaced(ex, "[\"id\"]", "[\"id\", \"email\"]"), "tables[0].key", 21,
       "key column \"email\" is not mapped"},
      {"duplicate target column", replaced(ex, "status = \"status\"", "status = \"display_name\""),
       "tables[0].columns.status", 22,
       "duplicate target column \"display_name\" (already mapped from \"full_name\")"},
      {"table name with an empty part", replaced(ex, "\"public.customers\"", "\"public.\""),
       "tables[0].source", 19, "empty part"},
      {"unquoted uppercase table name", replaced(ex, "\"ref.customer\"", "\"ref.Customer\""),
       "tables[0].target", 20, "uppercase"},
      {"redis URL with a password", replaced(ex, "redis://127.0.0.1", "redis://:s3cret@127.0.0.1"),
       "checkpoint.redis", 13, "contains a password"},
      {"unknown transform parameter",
       replaced(ex, "deletes = \"soft\"",
                "deletes = \"soft\"\ntransforms = { full_name = { mask = { keep_lst = 2 } } }"),
       "tables[0].transforms.full_name.mask.keep_lst", 24, "did you mean \"keep_last\""},
      {"unknown transform kind",
       replaced(ex, "deletes = \"soft\"",
                "deletes = \"soft\"\ntransforms = { full_name = { hmac_sha265 = {} } }"),
       "tables[0].transforms.full_name.hmac_sha265", 24, "did you mean \"hmac_sha256\""},
      {"transform of an unmapped column",
       replaced(ex, "deletes = \"soft\"",
                "deletes = \"soft\"\ntransforms = { email = { constant = \"x\" } }"),
       "tables[0].transforms.email", 24, "not mapped"},
      {"mask on a key column",
       replaced(ex, "deletes = \"soft\"",
                "deletes = \"soft\"\ntransforms = { id = { mask = { keep_last = 2 } } }"),
       "tables[0].key", 24, "would merge distinct keys"},
      {"unknown TOAST compression method",
       replaced(ex, "[target]\n", "[target]\ntoast_compression = \"zstd\"\n"), "target.toast_compression", 10,
       "\"zstd\" is not one of \"auto\", \"server\", \"lz4\", \"pglz\""},
      {"streaming on protocol 1",
       replaced(ex, "create_slot = true", "create_slot = true\nstreaming = \"on\""), "source.streaming", 8,
       "needs source.proto_version >= 2"},
      {"renewal slower than half the lease",
       replaced(ex, "redis = \"redis://127.0.0.1:6379/0\"",
                "redis = \"redis://127.0.0.1:6379/0\"\nrenew_ms = 6000"),
       "checkpoint.renew_ms", 14, "more than half"},
      {"duplicate target table",
       ex + "\n[[tables]]\nsource = \"public.other\"\ntarget = \"ref.customer\"\n"
            "key = [\"id\"]\ncolumns = { id = \"id\" }\n",
       "tables[1].target", 27, "duplicate target table ref.customer (already the target of tables[0])"},
      {"dead-lettering with the archive", ex + "\n[archive]\nenabled = true\n[dead_letter]\nenabled = true\n",
       "dead_letter.enabled", 28, "cannot be combined with archive.enabled or kafka.enabled"},
      {"empty file", "", "pipeline", 1, "required key is missing"},
  };
}

TEST(Config, RefusesEachBadFileWithAMessageNamingFileLineAndKey) {
  for (const BadFile& bad : bad_files()) {
    SCOPED_TRACE(bad.name);
    const auto issues = issues_of(bad.text);
    const auto match = std::find_if(issues.begin(), issues.end(), [&](const ConfigIssue& i) {
      return i.key == bad.key && i.line == bad.line && i.message.find(bad.says) != std::string::npos;
    });
    EXPECT_NE(match, issues.end()) << "wanted " << bad.key << " at line " << bad.line << " saying \""
                                   << bad.says << "\"; got:\n"
                                   << all_messages(issues);
    if (match != issues.end()) {
      const std::string text = match->str();
      EXPECT_EQ(text.rfind(std::string(kFile) + ":" + std::to_string(bad.line) + ":", 0), 0u) << text;
      if (!bad.key.empty()) {
        EXPECT_NE(text.find(bad.key), std::string::npos) << text;
      }
    }
  }
}

TEST(Config, NeverPrintsAPasswordInAnError) {
  for (const std::string& text :
       {replaced(kExample, "user=cdcsync_target", "user=cdcsync_target password=hunter2"),
        replaced(kExample, "user=cdcsync_target", "user=cdcsync_target password hunter2"),
        replaced(kExample, "\"host=127.0.0.1 port=5433 dbname=orders user=cdcsync_target\"",
                 "\"postgresql://u:hunter2@[::1/orders\""),
        replaced(kExample, "redis://127.0.0.1", "redis://cdc:hunter2@127.0.0.1")}) {
    const auto issues = issues_of(text);
    ASSERT_FALSE(issues.empty());
    EXPECT_EQ(all_messages(issues).find("hunter2"), std::string::npos) << all_messages(issues);
  }
}

TEST(Config, ReportsEveryProblemAtOnceInLineOrder) {
  std::string text = replaced(kExample, "cdcsync_customers_orders", "Bad-Slot");
  text = replaced(text, "columns = {", "colums = {");
  text += "\n[batch]\nmax_wait_ms = -1\n";
  const auto issues = issues_of(text);
  ASSERT_GE(issues.size(), 3u) << all_messages(issues);
  for (std::size_t i = 1; i < issues.size(); ++i) EXPECT_LE(issues[i - 1].line, issues[i].line);
  const std::string messages = all_messages(issues);
  EXPECT_NE(messages.find("source.slot"), std::string::npos);
  EXPECT_NE(messages.find("tables[0].colums"), std::string::npos);
  EXPECT_NE(messages.find("batch.max_wait_ms"), std::string::npos);
}

TEST(Config, RefusesAPasswordFileReadableByOthers) {
  TempDir dir;
  const fs::path secret = dir.write("pg_source", "hunter2\n", 0644);
  const auto issues = issues_of(replaced(kExample, "create_slot = true",
                                         "create_slot = true\npassword_file = \"" + secret.string() + "\""));
  ASSERT_EQ(issues.size(), 1u) << all_messages(issues);
  EXPECT_EQ(issues[0].key, "source.password_file");
  EXPECT_EQ(issues[0].line, 8);
  EXPECT_NE(issues[0].message.find("mode 0644, wider than 0640"), std::string::npos) << issues[0].message;
  EXPECT_EQ(all_messages(issues).find("hunter2"), std::string::npos);
}

TEST(Config, RefusesAPasswordFileThatIsNotARegularFile) {
  TempDir dir;
  const auto issues = issues_of(replaced(
      kExample, "create_slot = true", "create_slot = true\npassword_file = \"" + dir.path().string() + "\""));
  ASSERT_EQ(issues.size(), 1u) << all_messages(issues);
  EXPECT_NE(issues[0].message.find("not a regular file"), std::string::npos) << issues[0].message;
}

TEST(Config, ReadsAPrivatePasswordFileAndASystemdCredential) {
  TempDir dir;
  const fs::path secret = dir.write("pg_source", "hunter2\n", 0600);
  dir.write("redis", "r3dis\r\n", 0400);
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  std::string text = replaced(kExample, "create_slot = true",
                              "create_slot = true\npassword_file = \"" + secret.string() + "\"");
  text = replaced(text, "redis = \"redis://127.0.0.1:6379/0\"",
                  "redis = \"redis://cdc@127.0.0.1:6379/2\"\npassword_file = \"credential:redis\"");
  const Config c = load_config_from_string(text, kFile);
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_EQ(read_secret(c.source.password_file), "hunter2");
  EXPECT_EQ(c.checkpoint.password_file.path, dir.path() / "redis");
  EXPECT_EQ(read_secret(c.checkpoint.password_file), "r3dis");
  EXPECT_EQ(c.checkpoint.endpoint.user, "cdc");
  EXPECT_EQ(c.checkpoint.endpoint.db, 2);
}

TEST(Config, OutsideSystemdACredentialIsLookedForInTheCredentialStoreAndAMissNamesWhereAndWhatToDo) {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  const std::string name = "cdcsync.unit-test-absent." + std::to_string(::getpid());
  const auto issues =
      issues_of(replaced(kExample, "[target]\n", "[target]\npassword_file = \"credential:" + name + "\"\n"));
  ASSERT_EQ(issues.size(), 1u) << all_messages(issues);
  EXPECT_EQ(issues[0].key, "target.password_file");
  for (const std::string& where : {"/etc/credstore/" + name, "/run/credstore/" + name,
                                   "/usr/lib/credstore/" + name, std::string("--credentials-dir")}) {
    EXPECT_NE(issues[0].message.find(where), std::string::npos) << where << " in: " << issues[0].message;
  }
}

TEST(Config, CredentialsDirWinsOverTheEnvironmentAndTheStore) {
  TempDir unit_dir;
  TempDir override_dir;
  unit_dir.write("pg_target", "from-the-unit\n", 0600);
  override_dir.write("pg_target", "from-the-flag\n", 0600);
  ::setenv("CREDENTIALS_DIRECTORY", unit_dir.path().c_str(), 1);
  const std::string text =
      replaced(kExample, "[target]\n", "[target]\npassword_file = \"credential:pg_target\"\n");
  EXPECT_EQ(read_secret(load_config_from_string(text, kFile).target.password_file), "from-the-unit");
  config::set_credentials_directory(override_dir.path());
  const Config c = load_config_from_string(text, kFile);
  config::set_credentials_directory({});
  ::unsetenv("CREDENTIALS_DIRECTORY");
  EXPECT_EQ(c.target.password_file.path, override_dir.path() / "pg_target");
  EXPECT_EQ(read_secret(c.target.password_file), "from-the-flag");
}

TEST(Config, ParsesEveryTransformKind) {
  TempDir dir;
  const fs::path key = dir.write("hmac.key", "k", 0600);
  const std::string text = replaced(
      kExample, "deletes = \"soft\"",
      "deletes = \"soft\"\ntransforms = { full_name = { hmac_sha256 = { key_file = \"" + key.string() +
          "\" } }, status = { mask = { keep_last = 2 } }, tier = { constant = \"EU\" } }\ntruncate = "
          "\"ignore\"");
  const Config c = load_config_from_string(text, kFile);
  const auto& cols = c.tables.at(0).columns;
  ASSERT_EQ(cols.size(), 4u);
  EXPECT_FALSE(cols[0].transform);
  ASSERT_TRUE(cols[1].transform && std::holds_alternative<HmacSha256>(*cols[1].transform));
  EXPECT_EQ(std::get<HmacSha256>(*cols[1].transform).key_file.path, key);
  ASSERT_TRUE(cols[2].transform && std::holds_alternative<Mask>(*cols[2].transform));
  EXPECT_EQ(std::get<Mask>(*cols[2].transform).keep_last, 2);
  EXPECT_EQ(std::get<Mask>(*cols[2].transform).mask_char, "*");
  ASSERT_TRUE(cols[3].transform && std::holds_alternative<Constant>(*cols[3].transform));
  EXPECT_EQ(std::get<Constant>(*cols[3].transform).value, "EU");
  EXPECT_EQ(c.tables[0].truncate, TruncatePolicy::Ignore);
}

TEST(Config, AcceptsQuotedIdentifiersInTableNames) {
  const Config c = load_config_from_string(
      replaced(kExample, "\"public.customers\"", "'\"Mixed Case\".\"Tbl\"\"x\"'"), kFile);
  EXPECT_EQ(c.tables[0].source, (QualifiedName{"Mixed Case", "Tbl\"x"}));
  EXPECT_EQ(c.tables[0].source.str(), "\"Mixed Case\".\"Tbl\"\"x\"");
}

TEST(Config, AllowsAnInsecureRemoteSourceOnlyWhenAskedTo) {
  const std::string remote =
      replaced(kExample, "host=127.0.0.1 port=5432", "host=customers.db.example port=5432");
  EXPECT_FALSE(issues_of(remote).empty());
  EXPECT_NO_THROW(load_config_from_string(
      replaced(remote, "create_slot = true", "create_slot = true\nallow_insecure_tls = true"), kFile));
  EXPECT_NO_THROW(load_config_from_string(replaced(kExample, "host=127.0.0.1 port=5432",
                                                   "host=customers.db.example sslmode=verify-full port=5432"),
                                          kFile));
  EXPECT_NO_THROW(load_config_from_string(
      replaced(kExample, "host=127.0.0.1 port=5432", "host=/run/postgresql port=5432"), kFile));
}

TEST(Config, ReadsARedisUnixSocketUrl) {
  const Config c = load_config_from_string(
      replaced(kExample, "redis://127.0.0.1:6379/0", "unix:///run/redis/redis.sock?db=3"), kFile);
  EXPECT_EQ(c.checkpoint.endpoint.unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(c.checkpoint.endpoint.db, 3);
}

TEST(ConfigFile, RefusesAMissingFileNamingThePathAndReason) {
  try {
    load_config("/nonexistent/cdcsync.toml");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/cdcsync.toml: cannot open /nonexistent/cdcsync.toml: No such file or directory");
  }
}

TEST(ConfigFile, RefusesADeviceBehindASymlinkAndAFifo) {
  TempDir dir;
  fs::create_symlink("/dev/zero", dir.path() / "zero.toml");
  EXPECT_THROW(
      {
        try {
          load_config(dir.path() / "zero.toml");
        } catch (const ConfigError& e) {
          EXPECT_NE(std::string(e.what()).find("is not a regular file"), std::string::npos) << e.what();
          throw;
        }
      },
      ConfigError);
  const fs::path fifo = dir.path() / "fifo.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(load_config(fifo), ConfigError);  // and does not block waiting for a writer
}

TEST(ConfigFile, RefusesAFileLargerThanOneMebibyte) {
  TempDir dir;
  const fs::path big =
      dir.write("big.toml", std::string(kExample) + "#" + std::string(kMaxConfigBytes, 'x'), 0600);
  try {
    load_config(big);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("more than the 1048576 byte limit"), std::string::npos) << e.what();
  }
}

TEST(ConfigFile, LoadsARegularFileAndRemembersItsPath) {
  TempDir dir;
  const fs::path file = dir.write("cdcsync.toml", kExample, 0600);
  const Config c = load_config(file);
  EXPECT_EQ(c.file, file);
  EXPECT_EQ(c.tables.size(), 1u);
}

TEST(ConfigFile, ShipsAProductionStyleExampleThatLoadsWithItsCredentials) {
  TempDir store;
  for (const char* name : {"pg_source", "pg_target", "redis"}) store.write(name, "secret\n", 0600);
  config::set_credentials_directory(store.path());
  const Config c = load_config(fs::path(CDCSYNC_SOURCE_ROOT) / "deploy/cdcsync.example.toml");
  config::set_credentials_directory({});
  EXPECT_EQ(c.pipeline, "customers-to-orders");
  EXPECT_EQ(c.source.password_file.path, store.path() / "pg_source");
  EXPECT_EQ(c.target.password_file.path, store.path() / "pg_target");
  EXPECT_EQ(c.checkpoint.password_file.path, store.path() / "redis");
}

TEST(ConfigShow, RendersTomlThatLoadsBackToTheSameConfig) {
  const std::string text = replaced(kExample, "deletes = \"soft\"",
                                    "deletes = \"soft\"\ntransforms = { status = { mask = { keep_last = 2 } "
                                    "}, tier = { constant = \"EU\" } }");
  const Config c = load_config_from_string(text, kFile);
  const std::string rendered = render_effective_config(c);
  const Config again = load_config_from_string(rendered, "rendered.toml");
  EXPECT_EQ(render_effective_config(again), rendered);
  EXPECT_NE(rendered.find("max_rows = 5000"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("# password_file is unset"), std::string::npos) << rendered;
}

TEST(ConfigShow, RedactsAPasswordInAConninfoBuiltInCode) {
  Config c = load_config_from_string(kExample, kFile);
  c.target.conninfo = "host=127.0.0.1 password=hunter2 dbname=orders";
  const std::string rendered = render_effective_config(c);
  EXPECT_EQ(rendered.find("hunter2"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("dbname='orders'"), std::string::npos) << rendered;
}

TEST(ConfigShow, DefaultsInTheStructMatchTheSettingsTable) {
  const Config loaded = load_config_from_string(kExample, kFile);
  Config built;  // member initializers only
  built.pipeline = loaded.pipeline;
  built.source.conninfo = loaded.source.conninfo;
  built.source.publication = loaded.source.publication;
  built.source.slot = loaded.source.slot;
  built.source.create_slot = loaded.source.create_slot;
  built.target.conninfo = loaded.target.conninfo;
  built.checkpoint.redis = loaded.checkpoint.redis;
  built.tables = loaded.tables;
  built.tables[0].truncate = TableMapping{}.truncate;
  built.tables[0].lsn_column = TableMapping{}.lsn_column;
  built.tables[0].tombstone_column = TableMapping{}.tombstone_column;
  EXPECT_EQ(render_effective_config(built), render_effective_config(loaded));
}

TEST(ConfigReference, DocsConfigurationMdMatchesTheGeneratedReference) {
  const fs::path doc = fs::path(CDCSYNC_SOURCE_ROOT) / "docs/configuration.md";
  std::ifstream in(doc, std::ios::binary);
  ASSERT_TRUE(in) << doc;
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  const auto begin = text.find(kReferenceBegin);
  const auto end = text.find(kReferenceEnd);
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  const std::size_t body = begin + kReferenceBegin.size() + 1;  // after the marker's newline
  const std::string generated = render_config_reference_markdown() + "\n";
  if (const char* update = std::getenv("CDCSYNC_UPDATE_DOCS");
      update != nullptr && std::string(update) == "1") {
    text.replace(body, end - body, generated);
    std::ofstream(doc, std::ios::binary) << text;
    GTEST_SKIP() << "rewrote " << doc;
  }
  EXPECT_EQ(text.substr(body, end - body), generated)
      << "docs/configuration.md is stale; regenerate with CDCSYNC_UPDATE_DOCS=1 ctest -R "
         "unit.ConfigReference";
}

TEST(ConfigReference, HelpNamesEveryKeyWithItsDefaultAndBounds) {
  const std::string help = render_config_help();
  for (const char* expected :
       {"batch.max_rows : integer, rows; default 5000; 1 .. 1000000", "source.slot : string; required",
        "source.streaming : \"off\" | \"on\"; default \"off\"", "tables[].key : array of strings; required",
        "tables[].transforms.<column>.mask.keep_last",
        "checkpoint.password_file : string (path or credential:NAME); unset"}) {
    EXPECT_NE(help.find(expected), std::string::npos) << expected << "\n" << help;
  }
}

}  // namespace
}  // namespace cdcsync::config
