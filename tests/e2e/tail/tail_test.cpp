// `cdcsync tail` end to end: the built binary against the real customer server, its stdout compared with
// golden Debezium JSON (expected/, written by make_expected.py from Debezium's documented mapping).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/istreamwrapper.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "decoders/lsn.h"
#include "tests/harness/servers.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;

std::string binary() {
  const char* path = std::getenv("CDCSYNC_BINARY");
  if (path != nullptr && *path != '\0') return path;
  return CDCSYNC_BUILT_BINARY;
}

// The built cdcsync as a child process, stdout and stderr drained by a thread into strings.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args, bool close_stdout_early = false) {
    std::vector<std::string> argv = {binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    int out[2];
    int err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      close(err[0]);
      close(err[1]);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    reader_ = std::thread([this, fd_out = out[0], fd_err = err[0], close_stdout_early] {
      pollfd fds[2] = {{fd_out, POLLIN, 0}, {fd_err, POLLIN, 0}};
      int open = 2;
      char buf[65536];
      while (open > 0) {
        if (poll(fds, 2, -1) < 0) break;
        for (int i = 0; i < 2; ++i) {
          if (fds[i].fd < 0 || fds[i].revents == 0) continue;
          const ssize_t n = read(fds[i].fd, buf, sizeof buf);
          if (n <= 0) {
            close(fds[i].fd);
            fds[i].fd = -1;
            --open;
            continue;
          }
          std::lock_guard lock{mu_};
          (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
          // Like `| head -1`: read the first line, then close the pipe.
          if (i == 0 && close_stdout_early && out_.find('\n') != std::string::npos) {
            close(fds[0].fd);
            fds[0].fd = -1;
            --open;
          }
        }
      }
    });
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
  }

  void signal(int sig) const { kill(pid_, sig); }

  // The exit code, or nullopt if it did not exit in time (then it is killed).
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        exited_ = true;
        reader_.join();
        return std::nullopt;
      }
      std::this_thread::sleep_for(20ms);
    }
    exited_ = true;
    reader_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string out() {
    std::lock_guard lock{mu_};
    return out_;
  }
  std::string err() {
    std::lock_guard lock{mu_};
    return err_;
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::string out_;
  std::string err_;
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    throw std::runtime_error(std::string("not JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
                             "): " + text.substr(0, 200));
  }
  return doc;
}

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

// Removes what differs from run to run: processing and commit times, LSNs, transaction ids.
void drop_volatile(rapidjson::Value& event) {
  for (const char* key : {"ts_ms", "ts_us", "ts_ns"}) event.EraseMember(key);
  if (event.HasMember("source")) {
    for (const char* key : {"ts_ms", "ts_us", "ts_ns", "lsn", "sequence", "txId"})
      event["source"].EraseMember(key);
  }
  if (event.HasMember("transaction") && event["transaction"].IsObject())
    event["transaction"].EraseMember("id");
}

rapidjson::Document golden(const std::string& name) {
  const std::string path = repo_root() + "/tests/e2e/tail/expected/" + name + ".json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  rapidjson::IStreamWrapper wrapped{in};
  rapidjson::Document doc;
  doc.ParseStream(wrapped);
  if (doc.HasParseError() || !doc.IsArray()) throw std::runtime_error(path + " is not a JSON array");
  return doc;
}

class TailTest : public ::testing::Test {
 protected:
  void SetUp() override { admin_ = TestServers::get().fresh_database(Server::Customer, "tail_types"); }

  std::vector<std::string> tail_args(const std::string& slot, std::vector<std::string> extra) const {
    std::vector<std::string> args = {"tail", "--source", admin_, "--publication", "tail_pub", "--slot", slot};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Waits until tail's walsender is streaming on the slot, so changes made after this are printed.
  void await_streaming(const std::string& slot, Child& child) {
    const bool streaming = eventually(
        [&] {
          return query_value(admin_, "SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot +
                                         "'") == std::optional<std::string>("t");
        },
        20s);
    ASSERT_TRUE(streaming) << "tail did not start streaming; stderr: " << child.err();
  }

  std::string admin_;
};

const char* kTypesSchema = R"sql(
  CREATE EXTENSION citext; CREATE EXTENSION hstore; CREATE EXTENSION ltree;
  CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN price AS numeric(8,2) CHECK (VALUE >= 0);
  CREATE DOMAIN short_text AS varchar(5);
  CREATE TABLE num (id int PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
                    d numeric(10,2), v numeric, b boolean, m money);
  CREATE TABLE txt (id int PRIMARY KEY, c char(3), vc varchar(20), t text, ci citext, h hstore, l ltree);
  CREATE TABLE dt (id int PRIMARY KEY, d date, t time, t3 time(3), tz timetz, ts timestamp, ts3 timestamp(3),
                   tstz timestamptz, iv interval);
  CREATE TABLE bin (id int PRIMARY KEY, ba bytea, u uuid, j json, jb jsonb, x xml, bt bit(3), vb varbit(16),
                    b1 bit(1));
  CREATE TABLE net (id int PRIMARY KEY, i inet, c cidr, m macaddr, m8 macaddr8, p point, r int4range,
                    dr daterange, nr numrange);
  CREATE TABLE usr (id int PRIMARY KEY, e mood, p price, s short_text, ea mood[]);
  CREATE TABLE arr (id int PRIMARY KEY, ia int[], ta text[], md int[][], na numeric(5,1)[]);
  CREATE TABLE kc (id int PRIMARY KEY, v text);
  ALTER TABLE kc REPLICA IDENTITY FULL;
  CREATE TABLE big (id int PRIMARY KEY, body text, n int);
  ALTER TABLE big ALTER COLUMN body SET STORAGE EXTERNAL;
  INSERT INTO kc VALUES (1, 'a');
  INSERT INTO big SELECT 1, string_agg(md5(i::text), '') , 1 FROM generate_series(1, 200) i;
  CREATE PUBLICATION tail_pub FOR ALL TABLES;
)sql";

// One statement per transaction, in this order; 23 change events (tombstones and BEGIN/END aside).
const std::vector<std::string> kTypesChanges = {
    "INSERT INTO num VALUES (1, 1, 2147483647, 9223372036854775807, 1.5, -2.25, 12345.6, 1.50, true, 12.34)",
    "INSERT INTO num VALUES (2, -32768, -1, -9223372036854775808, 'NaN', 'Infinity', -0.01, 'NaN', false, "
    "-1.5)",
    "INSERT INTO num VALUES (3, 0, 0, 0, '-Infinity', 3.14159, 0, 123456789012345678901234567890.123, NULL, "
    "0)",
    R"(INSERT INTO txt VALUES (1, 'ab', 'héllo "quoted"', E'line1\nline2\ttab', 'MiXeD Case',
                               '"a"=>"1", "b"=>NULL', 'Top.Science.Astronomy'))",
    R"(INSERT INTO txt VALUES (2, NULL, '', '\', 'x', '', 'Top'))",
    "INSERT INTO dt VALUES (1, '2024-02-29', '13:45:30.123456', '13:45:30.123', '13:45:30+02', "
    "'2024-02-29 13:45:30.123456', '2024-02-29 13:45:30.123', '2024-02-29 13:45:30.5+02', "
    "'1 year 2 mons 3 days 04:05:06.5')",
    "INSERT INTO dt VALUES (2, '0044-03-15 BC', '00:00:00', '23:59:59.999', '00:00:00-05:30', 'infinity', "
    "'-infinity', 'infinity', '-1 days -00:00:01')",
    "INSERT INTO dt VALUES (3, 'infinity', NULL, NULL, NULL, NULL, NULL, '-infinity', '0')",
    R"(INSERT INTO bin VALUES (1, '\xdeadbeef', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
                               '{"b": 1, "a": [true, null]}', '{"b": 1, "a": [true, null]}', '<r a="1">x</r>',
                               B'101', B'1000000001', B'1'))",
    R"(INSERT INTO bin VALUES (2, '', '00000000-0000-0000-0000-000000000000', 'null', '"s"', '<e/>',
                               B'000', B'', B'0'))",
    "INSERT INTO net VALUES (1, '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', "
    "'08:00:2b:01:02:03:04:05', "
    "'(1.5,-2)', '[1,10)', '[2024-01-01,2024-02-01)', '(1.5,2.5]')",
    "INSERT INTO usr VALUES (1, 'happy', 12.5, 'abc', '{sad,ok}')",
    "INSERT INTO usr VALUES (2, NULL, 0, NULL, '{}')",
    R"(INSERT INTO arr VALUES (1, '{1,NULL,3}', '{"a b","c,d",NULL,"NULL"}', '{{1,2},{3,4}}', '{1.5,NULL}'))",
    "INSERT INTO arr VALUES (2, NULL, '{}', '{}', '{-0.5}')",
    "UPDATE num SET i4 = 7 WHERE id = 1",
    "DELETE FROM num WHERE id = 3",
    "UPDATE kc SET id = 2 WHERE id = 1",
    "TRUNCATE arr",
    "SELECT pg_logical_emit_message(true, 'tail-test', 'hello')",
    "SELECT pg_logical_emit_message(false, 'tail-nt', 'x')",
    "UPDATE big SET n = 2 WHERE id = 1",
};
constexpr int kTypesChangeEvents = 23;

TEST_F(TailTest, PrintsEveryTypeFamilyAsDebeziumDocumentsIt) {
  exec_sql(admin_, kTypesSchema);
  Child tail{tail_args("tail_types_slot",
                       {"--create-slot", "--temporary", "--topic-prefix", "tailtest", "--limit",
                        std::to_string(kTypesChangeEvents), "--timeout", "20",
                        // the TRUNCATE too (Debezium's default skipped.operations=t leaves it out)
                        "--skipped-operations", "none"})};
  await_streaming("tail_types_slot", tail);
  for (const std::string& sql : kTypesChanges) exec_sql(admin_, sql);
  ASSERT_EQ(tail.wait(60s), std::optional<int>(0)) << tail.err();

  // Group what was printed by table (messages under "message"), in order.
  std::map<std::string, std::vector<rapidjson::Document>> printed;
  int changes = 0;
  for (const std::string& line : lines_of(tail.out())) {
    rapidjson::Document ev = parse(line);
    ASSERT_TRUE(ev.IsObject() && ev.HasMember("op")) << line;
    ++changes;
    const std::string table = ev["source"]["table"].GetString();
    drop_volatile(ev);
    printed[table.empty() ? "message" : table].push_back(std::move(ev));
  }
  EXPECT_EQ(changes, kTypesChangeEvents) << tail.out();

  for (const char* name : {"num", "txt", "dt", "bin", "net", "usr", "arr", "kc", "big", "message"}) {
    SCOPED_TRACE(name);
    const rapidjson::Document expected = golden(name);
    const auto& got = printed[name];
    ASSERT_EQ(got.size(), expected.Size());
    for (rapidjson::SizeType i = 0; i < expected.Size(); ++i) {
      const rapidjson::Value& want = expected[i];
      const rapidjson::Value& have = got[i];
      // Field by field first, so a mismatch names the column.
      if (want.HasMember("after") && want["after"].IsObject() && have.HasMember("after") &&
          have["after"].IsObject()) {
        for (auto m = want["after"].MemberBegin(); m != want["after"].MemberEnd(); ++m) {
          const std::string col = m->name.GetString();
          ASSERT_TRUE(have["after"].HasMember(col.c_str())) << col;
          EXPECT_EQ(to_json(have["after"][col.c_str()]), to_json(m->value))
              << name << "[" << i << "]." << col;
        }
      }
      EXPECT_TRUE(have == want) << name << "[" << i << "]:\n  printed  " << to_json(have) << "\n  expected "
                                << to_json(want);
    }
  }
}

// A small table and publication for the behaviour tests.
void make_small(const std::string& admin) {
  exec_sql(admin,
           "CREATE TABLE t (id int PRIMARY KEY, v text); CREATE PUBLICATION tail_pub FOR TABLE t;"
           "INSERT INTO t VALUES (100, 'before the slot')");
}

TEST_F(TailTest, KeysPrintsKeyAndValuePerLineIncludingTheTombstone) {
  make_small(admin_);
  Child tail{
      tail_args("tail_keys", {"--create-slot", "--temporary", "--keys", "--limit", "2", "--timeout", "20"})};
  await_streaming("tail_keys", tail);
  exec_sql(admin_, "INSERT INTO t VALUES (1, 'one')");
  exec_sql(admin_, "DELETE FROM t WHERE id = 1");
  ASSERT_EQ(tail.wait(30s), std::optional<int>(0)) << tail.err();
  const auto lines = lines_of(tail.out());
  ASSERT_EQ(lines.size(), 3u) << tail.out();
  const auto created = parse(lines[0]);
  EXPECT_EQ(to_json(created["key"]), R"({"id":1})");
  EXPECT_EQ(std::string(created["value"]["op"].GetString()), "c");
  const auto deleted = parse(lines[1]);
  EXPECT_EQ(to_json(deleted["key"]), R"({"id":1})");
  EXPECT_EQ(std::string(deleted["value"]["op"].GetString()), "d");
  const auto tombstone = parse(lines[2]);
  EXPECT_EQ(to_json(tombstone), R"({"key":{"id":1},"value":null})");
}

TEST_F(TailTest, SchemasWrapsEveryEventInSchemaAndPayload) {
  make_small(admin_);
  Child tail{tail_args("tail_schemas", {"--create-slot", "--temporary", "--schemas", "--transaction-metadata",
                                        "--limit", "1"})};
  await_streaming("tail_schemas", tail);
  exec_sql(admin_, "INSERT INTO t VALUES (1, 'one')");
  ASSERT_EQ(tail.wait(30s), std::optional<int>(0)) << tail.err();
  const auto lines = lines_of(tail.out());
  ASSERT_EQ(lines.size(), 3u) << tail.out();  // BEGIN, the insert, END
  for (const auto& line : lines) {
    const auto ev = parse(line);
    ASSERT_TRUE(ev.HasMember("schema") && ev.HasMember("payload")) << line;
  }
  EXPECT_EQ(std::string(parse(lines[0])["payload"]["status"].GetString()), "BEGIN");
  const auto change = parse(lines[1]);
  EXPECT_EQ(std::string(change["schema"]["name"].GetString()), "cdcsync.public.t.Envelope");
  EXPECT_EQ(std::string(change["payload"]["op"].GetString()), "c");
  EXPECT_EQ(change["payload"]["transaction"]["total_order"].GetInt(), 1);
  const auto end = parse(lines[2]);
  EXPECT_EQ(std::string(end["payload"]["status"].GetString()), "END");
  EXPECT_EQ(end["payload"]["event_count"].GetInt(), 1);
}

TEST_F(TailTest, TimeoutStopsWithExitZeroWhenNothingChanges) {
  make_small(admin_);
  const auto started = std::chrono::steady_clock::now();
  Child tail{tail_args("tail_timeout", {"--create-slot", "--temporary", "--timeout", "2"})};
  ASSERT_EQ(tail.wait(30s), std::optional<int>(0)) << tail.err();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 2s);
  EXPECT_EQ(tail.out(), "");
}

TEST_F(TailTest, SigtermStopsItCleanlyWithExitZero) {
  make_small(admin_);
  Child tail{tail_args("tail_sigterm", {"--create-slot", "--temporary"})};
  await_streaming("tail_sigterm", tail);
  tail.signal(SIGTERM);
  ASSERT_EQ(tail.wait(20s), std::optional<int>(0)) << tail.err();
  EXPECT_EQ(tail.err().find("signal"), std::string::npos) << tail.err();
  // The temporary slot went with the connection.
  EXPECT_TRUE(eventually(
      [&] {
        return !query_value(admin_, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tail_sigterm'");
      },
      10s));
}

TEST_F(TailTest, AMalformedFromLsnIsAUsageErrorNamingTheValue) {
  Child tail{tail_args("tail_lsn", {"--create-slot", "--from-lsn", "garbage"})};
  ASSERT_EQ(tail.wait(20s), std::optional<int>(2));
  EXPECT_NE(tail.err().find("garbage"), std::string::npos) << tail.err();
  EXPECT_EQ(tail.out(), "");
}

TEST_F(TailTest, AnUnsupportedFormatIsAUsageError) {
  Child tail{tail_args("tail_fmt", {"--format", "avro"})};
  ASSERT_EQ(tail.wait(20s), std::optional<int>(2));
  EXPECT_NE(tail.err().find("avro"), std::string::npos) << tail.err();
}

TEST_F(TailTest, AMissingPublicationExitsOneNamingIt) {
  exec_sql(admin_, "CREATE TABLE t (id int PRIMARY KEY)");
  Child tail{{"tail", "--source", admin_, "--publication", "no_such_pub", "--slot", "tail_nopub",
              "--create-slot", "--temporary"}};
  ASSERT_EQ(tail.wait(20s), std::optional<int>(1));
  EXPECT_NE(tail.err().find("no_such_pub"), std::string::npos) << tail.err();
  // The error is the last line, whole.
  const auto err_lines = lines_of(tail.err());
  ASSERT_FALSE(err_lines.empty());
  EXPECT_NE(err_lines.back().find("publication \"no_such_pub\" does not exist"), std::string::npos)
      << tail.err();
}

// Exit 7, "could not check", as for every command that cannot reach its server (daemon/core/exit_codes.h).
TEST_F(TailTest, AnUnreachableSourceExitsSevenWithOneLine) {
  Child tail{{"tail", "--source", "host=127.0.0.1 port=1 dbname=x connect_timeout=2", "--publication", "p",
              "--slot", "s", "--create-slot"}};
  ASSERT_EQ(tail.wait(20s), std::optional<int>(7));
  EXPECT_NE(tail.err().find("cannot connect"), std::string::npos) << tail.err();
}

TEST_F(TailTest, AClosedStdoutEndsItQuietlyWithExitZero) {
  make_small(admin_);
  Child tail{tail_args("tail_pipe", {"--create-slot", "--temporary", "--timeout", "20"}),
             /*close_stdout_early=*/true};
  await_streaming("tail_pipe", tail);
  // Keep writing until tail notices the closed pipe.
  int i = 1;
  const bool ended = eventually(
      [&] {
        exec_sql(admin_, "INSERT INTO t VALUES (" + std::to_string(i++) + ", 'x')");
        return !query_value(admin_, "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tail_pipe'");
      },
      20s, 100ms);
  ASSERT_TRUE(ended) << tail.err();
  ASSERT_EQ(tail.wait(20s), std::optional<int>(0)) << tail.err();
  EXPECT_EQ(tail.err().find("error"), std::string::npos) << tail.err();
  EXPECT_EQ(tail.err().find("Broken pipe"), std::string::npos) << tail.err();
}

// Never confirms past what it printed: --limit stops inside the second transaction, so the slot stays before
// that transaction's commit, and the next tail prints the second transaction again.
TEST_F(TailTest, ConfirmsTheSlotNoFurtherThanWhatItPrinted) {
  make_small(admin_);
  {
    Child tail{tail_args("tail_confirm", {"--create-slot", "--limit", "2", "--timeout", "20"})};
    await_streaming("tail_confirm", tail);
    const auto before_first = Lsn::parse(query_value(admin_, "SELECT pg_current_wal_insert_lsn()").value());
    exec_sql(admin_, "INSERT INTO t VALUES (1, 'one')");
    // The second transaction's commit record starts at or after `before_second_commit`.
    PgConn conn = pg_connect(admin_, "test");
    pg_exec(conn.get(), "BEGIN", "begin");
    pg_exec(conn.get(), "INSERT INTO t VALUES (2, 'two'), (3, 'three')", "insert");
    const PgResult at = pg_exec(conn.get(), "SELECT pg_current_wal_insert_lsn()", "lsn", PGRES_TUPLES_OK);
    const auto before_second_commit = Lsn::parse(PQgetvalue(at.get(), 0, 0));
    pg_exec(conn.get(), "COMMIT", "commit");
    ASSERT_EQ(tail.wait(30s), std::optional<int>(0)) << tail.err();
    ASSERT_EQ(lines_of(tail.out()).size(), 2u) << tail.out();

    const auto confirmed = Lsn::parse(
        query_value(admin_,
                    "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'tail_confirm'")
            .value());
    ASSERT_TRUE(confirmed && before_first && before_second_commit);
    // The first transaction was printed whole and confirmed; the second, cut by --limit, was not.
    EXPECT_GT(*confirmed, *before_first);
    EXPECT_LE(*confirmed, *before_second_commit)
        << "confirmed " << confirmed->str() << ", second commit at or after " << before_second_commit->str();
  }
  Child again{tail_args("tail_confirm", {"--limit", "2", "--timeout", "20"})};
  ASSERT_EQ(again.wait(30s), std::optional<int>(0)) << again.err();
  const auto lines = lines_of(again.out());
  ASSERT_EQ(lines.size(), 2u) << again.out();
  EXPECT_EQ(parse(lines[0])["after"]["id"].GetInt(), 2);
  EXPECT_EQ(parse(lines[1])["after"]["id"].GetInt(), 3);
  exec_sql(admin_, "SELECT pg_drop_replication_slot('tail_confirm')");
}

}  // namespace
}  // namespace cdcsync::test
