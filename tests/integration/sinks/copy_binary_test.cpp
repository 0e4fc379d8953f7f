// COPY's binary encoders against the order server: each value's text, as the server's output function
// writes it (what pgoutput sends), is loaded once as text and once through cdcsync's binary encoder, and
// both columns must hold the same value. Values the encoder refuses (the sink copies those tables as text)
// must be among the expected refusals.
#include "sinks/copy_binary.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <set>
#include <string>
#include <vector>

#include "decoders/pg.h"
#include "sinks/copy_text.h"
#include "sinks/postgres_sink.h"
#include "tests/harness/servers.h"

namespace cdcsync {
namespace {

using test::Server;
using test::TestServers;

struct Corpus {
  std::string type;                 // the column's type, with its typmod
  std::string source_type;          // the type whose output is loaded (the source column's)
  std::vector<std::string> inputs;  // literals, cast to source_type to get the texts
  std::set<std::string> refusals;   // texts the encoder may refuse
};

class CopyBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string conninfo = TestServers::get().fresh_database(Server::Order, "copy_binary", {});
    conn_.reset(PQconnectdb(conninfo.c_str()));
    ASSERT_EQ(PQstatus(conn_.get()), CONNECTION_OK) << PQerrorMessage(conn_.get());
  }

  PgResult exec(const std::string& sql) {
    PgResult r{PQexec(conn_.get(), sql.c_str())};
    const auto st = PQresultStatus(r.get());
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        << sql << ": " << PQerrorMessage(conn_.get());
    return r;
  }

  void copy(const std::string& sql, const std::string& data) {
    PgResult r{PQexec(conn_.get(), sql.c_str())};
    ASSERT_EQ(PQresultStatus(r.get()), PGRES_COPY_IN) << PQerrorMessage(conn_.get());
    ASSERT_EQ(PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())), 1);
    ASSERT_EQ(PQputCopyEnd(conn_.get(), nullptr), 1);
    PgResult done{PQgetResult(conn_.get())};
    ASSERT_EQ(PQresultStatus(done.get()), PGRES_COMMAND_OK) << sql << ": " << PQerrorMessage(conn_.get());
    while (PgResult extra{PQgetResult(conn_.get())}) {
    }
  }

  // Loads the corpus both ways into one table and checks every row; returns how many texts were encoded.
  std::size_t check(const Corpus& c) {
    SCOPED_TRACE(c.type);
    exec("DROP TABLE IF EXISTS t; CREATE TABLE t (n int, as_text " + c.type + ", as_binary " + c.type + ")");
    // The encoder as the sink chooses it, from the catalog.
    const char* params[] = {"t"};
    PgResult types_res{
        PQexecParams(conn_.get(), kTargetColumnTypesQuery, 1, nullptr, params, nullptr, nullptr, 0)};
    EXPECT_EQ(PQresultStatus(types_res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn_.get());
    const TargetColumnTypes types = read_target_column_types(types_res.get());
    EXPECT_EQ(types.size(), 3u);
    const BinaryEncoder bt = binary_encoder_of(types.at("as_binary"));
    EXPECT_TRUE(bt.supported());

    std::vector<std::string> texts;
    for (const auto& in : c.inputs) {
      PgResult r = exec("SELECT (" + in + ")::" + c.source_type);  // in text: the output function's
      texts.emplace_back(PQgetvalue(r.get(), 0, 0));
    }
    std::string text_rows, binary_rows;
    append_copy_binary_header(binary_rows);
    std::size_t encoded = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      text_rows += std::to_string(i) + "\t";
      append_copy_text(text_rows, texts[i]);
      text_rows += "\n";
      append_copy_binary_row(binary_rows, 2);
      append_copy_binary_int4(binary_rows, static_cast<std::int32_t>(i));
      if (append_copy_binary(binary_rows, bt, texts[i])) {
        ++encoded;
      } else {
        EXPECT_TRUE(c.refusals.count(texts[i])) << "refused: " << texts[i];
        append_copy_binary_null(binary_rows);
      }
    }
    append_copy_binary_trailer(binary_rows);
    copy("COPY t (n, as_text) FROM STDIN", text_rows);
    copy("CREATE TEMP TABLE b (n int, v " + c.type + "); COPY b FROM STDIN (FORMAT binary)", binary_rows);
    exec("UPDATE t SET as_binary = b.v FROM b WHERE b.n = t.n; DROP TABLE b");
    // json has no equality operator: its text is the value.
    const std::string same = c.type == "json" ? "as_text::text = as_binary::text" : "as_text = as_binary";
    PgResult rows = exec("SELECT n, as_text::text, as_binary::text, " + same +
                         " FROM t WHERE as_binary IS NOT NULL ORDER BY n");
    EXPECT_EQ(static_cast<std::size_t>(PQntuples(rows.get())), encoded);
    for (int r = 0; r < PQntuples(rows.get()); ++r) {
      const std::string text = PQgetvalue(rows.get(), r, 1), binary = PQgetvalue(rows.get(), r, 2);
      EXPECT_EQ(text, binary) << "from " << texts[std::stoul(PQgetvalue(rows.get(), r, 0))];
      EXPECT_STREQ(PQgetvalue(rows.get(), r, 3), "t") << text;
    }
    return encoded;
  }

  // Every corpus: how many texts were encoded, of how many.
  std::pair<std::size_t, std::size_t> check_all(const std::vector<Corpus>& corpus) {
    std::size_t encoded = 0, total = 0;
    for (const auto& c : corpus) {
      encoded += check(c);
      total += c.inputs.size();
    }
    return {encoded, total};
  }

  PgConn conn_;
};

TEST_F(CopyBinaryTest, EveryEncodedValueIsTheValueTheInputFunctionReads) {
  const std::vector<Corpus> corpus = {
      {"boolean", "boolean", {"true", "false"}, {}},
      {"smallint", "smallint", {"-32768", "32767", "0"}, {}},
      {"integer", "integer", {"-2147483648", "2147483647", "42"}, {}},
      {"bigint", "bigint", {"-9223372036854775808", "9223372036854775807", "0"}, {}},
      {"bigint", "integer", {"-2147483648", "7"}, {}},  // a wider target column
      {"numeric",
       "numeric",
       {"0", "'-0.00'", "123.45", "'1e-20'", "99999999999999999999.999999", "-1234567890.0987654321", "'NaN'",
        "'Infinity'", "'-Infinity'", "0.000001", "10000", "'1e100'", "100000000.00000001", "'-0.5'", "1.10"},
       {}},
      // The column's typmod rounds on the way in, binary or text.
      {"numeric(12,2)", "numeric", {"1.005", "-2.675", "1234567890.1", "0.001", "7"}, {}},
      {"real",
       "real",
       {"0.1", "'3.4028235e38'", "'1e-45'", "'NaN'", "'Infinity'", "'-Infinity'", "-0.0", "123456.7"},
       {"1e-45"}},
      {"double precision",
       "double precision",
       {"0.1", "'-0'", "1e300", "'5e-324'", "'NaN'", "'Infinity'", "'-Infinity'", "3.141592653589793",
        "'1.7976931348623157e308'", "'2.2250738585072014e-308'"},
       {"5e-324"}},
      {"text",
       "text",
       {"'plain'", "E'tab\\there'", "E'new\\nline\\r'", "E'back\\\\slash'", "'\\N'", "'üñíçødé'", "''",
        "repeat('x', 100000)"},
       {}},
      {"varchar(5)", "text", {"'abc'", "'abcde'", "'abc  '"}, {}},
      {"char(5)", "text", {"'ab'", "'abcde'"}, {}},
      {"json", "json", {"'{\"a\": [1, 2.5, \"x\"]}'", "'[]'"}, {}},
      {"jsonb", "jsonb", {"'{\"b\": 1, \"a\": [true, null]}'", "'\"s\"'", "'1.50'"}, {}},
      {"jsonb",
       "text",
       {"'{\"b\":1,  \"b\":2}'"},
       {}},  // jsonb keeps the last of a duplicated key, both ways
      {"bytea", "bytea", {"'\\x'", "'\\x00ff'", "'\\x5c78'", "decode(repeat('ab', 5000), 'hex')"}, {}},
      {"uuid",
       "uuid",
       {"'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12}'"},
       {}},
      {"pg_lsn", "pg_lsn", {"'0/0'", "'16/B374D848'", "'FFFFFFFF/FFFFFFFF'"}, {}},
      {"date",
       "date",
       {"'2000-01-01'", "'0001-01-01'", "'9999-12-31'", "'2024-02-29'", "'1900-03-01'", "'infinity'",
        "'-infinity'", "'0044-03-15 BC'", "'10000-01-01'"},
       {"0044-03-15 BC", "10000-01-01"}},
      {"timestamp",
       "timestamp",
       {"'2000-01-01 00:00:00'", "'1999-12-31 23:59:59.999999'", "'0001-01-01 00:00:00'",
        "'9999-12-31 23:59:59.999999'", "'infinity'", "'-infinity'", "'1900-01-01 12:34:56.5'",
        "'2024-02-29 01:02:03.04'", "'0100-01-01 00:00:00 BC'"},
       {"0100-01-01 00:00:00 BC"}},
      {"timestamp(2)", "timestamp", {"'2000-01-01 00:00:00.125'", "'2000-01-01 00:00:00.999'"}, {}},
  };
  const auto [encoded, total] = check_all(corpus);
  EXPECT_GE(encoded, total - 8);
}

TEST_F(CopyBinaryTest, TimesIntervalsAddressesAndOids) {
  const std::vector<Corpus> corpus = {
      {"time", "time", {"'00:00:00'", "'24:00:00'", "'23:59:59.999999'", "'12:34:56.5'", "'allballs'"}, {}},
      {"time(1)", "time", {"'12:34:56.25'", "'23:59:59.99'"}, {}},
      {"timetz",
       "timetz",
       {"'00:00:00+00'", "'12:34:56.789-05:30'", "'23:59:59.999999+15:59'", "'01:02:03-15:59:59'",
        "'04:05:06+01:02:03'"},
       {}},
      {"interval",
       "interval",
       {"'0'", "'1 year 2 mons 3 days 04:05:06.5'", "'-1 years -2 mons +3 days -04:05:06'",
        "'1 day -1 second'", "'-2 days'", "'1 mon'", "'178956970 years 7 mons'", "'-178956970 years -8 mons'",
        "'2562047788 hours 54.775807 seconds'", "'-2562047788 hours -54.775807 seconds'",
        "'0.000001 seconds'", "'100 hours'", "'-1 day +1 second'", "'2147483647 days'", "'-2147483648 days'",
        "'1 year -1 day'"},
       {}},
      {"interval(0)", "interval", {"'1 day 01:02:03.6'"}, {}},
      {"interval day to second", "interval", {"'1 year 2 days 03:04:05'"}, {}},
      {"inet",
       "inet",
       {"'192.168.0.5'", "'192.168.0.5/24'", "'0.0.0.0/0'", "'::1'", "'2001:db8::1/64'", "'::ffff:1.2.3.4'",
        "'::ffff:1.2.3.4/120'", "'::'", "'fe80::1:2:3:4'", "'1:2:3:4:5:6:7:8'", "'::1.2.3.4'"},
       {}},
      {"cidr",
       "cidr",
       {"'10.0.0.0/8'", "'192.168.1'", "'192.168.100.128/25'", "'2001:db8::/32'", "'::/0'", "'1.2.3.4/32'",
        "'::ffff:0.0.0.0/96'"},
       {}},
      {"cidr", "inet", {"'10.0.0.0/8'", "'1.2.3.4'"}, {"1.2.3.4"}},  // inet's text into cidr: the mask
      {"inet", "cidr", {"'10.0.0.0/8'", "'1.2.3.4/32'"}, {}},
      {"macaddr", "macaddr", {"'08:00:2b:01:02:03'", "'08-00-2B-01-02-FF'", "'0800.2b01.0203'"}, {}},
      {"macaddr8", "macaddr8", {"'08:00:2b:01:02:03:04:05'", "'08:00:2b:01:02:03'"}, {}},
      {"oid", "oid", {"'0'", "'4294967295'", "'-1'", "'12345'"}, {}},
  };
  const auto [encoded, total] = check_all(corpus);
  EXPECT_EQ(encoded, total - 1);
}

// Enums and domains as the sink finds them in the catalog, and one-dimensional arrays of every kind.
TEST_F(CopyBinaryTest, EnumsDomainsAndArrays) {
  exec("DROP TYPE IF EXISTS mood CASCADE; CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'a b', 'NULL')");
  exec("DROP DOMAIN IF EXISTS email CASCADE; CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%')");
  exec("DROP DOMAIN IF EXISTS work_email CASCADE; CREATE DOMAIN work_email AS email");
  exec("DROP DOMAIN IF EXISTS price CASCADE; CREATE DOMAIN price AS numeric(10,2) CHECK (VALUE >= 0)");
  exec("DROP DOMAIN IF EXISTS scores CASCADE; CREATE DOMAIN scores AS int[] CHECK (cardinality(VALUE) < 5)");
  const std::vector<Corpus> corpus = {
      {"mood", "mood", {"'sad'", "'happy'", "'a b'", "'NULL'"}, {}},
      {"email", "text", {"'a@example.com'"}, {}},
      {"work_email", "text", {"'b@example.com'"}, {}},
      {"price", "numeric", {"1.005", "0", "12345678.9"}, {}},
      {"integer[]",
       "integer[]",
       {"'{}'", "'{1,-2,3}'", "'{NULL,1}'", "ARRAY[NULL]::int[]", "'[0:1]={1,2}'", "'{{1,2},{3,4}}'"},
       {"[0:1]={1,2}", "{{1,2},{3,4}}"}},
      {"text[]",
       "text[]",
       {"'{a,\"b c\",\"\",NULL,\"NULL\",\"null\"}'", "ARRAY[E'q\"\\\\', E'tab\\there', '{}', ',', ' x ']",
        "ARRAY['üñí', 'NuLl']"},
       {}},
      {"varchar(3)[]", "text[]", {"'{ab,abc}'"}, {}},
      {"numeric(5,1)[]", "numeric[]", {"'{1.25,NaN,-0.05}'"}, {}},
      {"timestamptz[]", "timestamptz[]", {"ARRAY['2026-11-25 15:21:47.5+00'::timestamptz, 'infinity']"}, {}},
      {"bytea[]", "bytea[]", {"ARRAY['\\x00ff'::bytea, '\\x']"}, {}},
      {"jsonb[]", "jsonb[]", {"ARRAY['{\"a\": [1, \"x,y\"]}'::jsonb, 'null']"}, {}},
      {"uuid[]", "uuid[]", {"'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'"}, {}},
      {"interval[]", "interval[]", {"ARRAY['1 day -00:00:01'::interval, '3 mons']"}, {}},
      {"inet[]", "inet[]", {"'{10.0.0.1/8,::1}'"}, {}},
      {"mood[]", "mood[]", {"'{sad,\"a b\",\"NULL\",NULL}'"}, {}},
      {"email[]", "text[]", {"'{a@example.com,b@example.com}'"}, {}},
      {"scores", "int[]", {"'{1,2,3}'"}, {}},
  };
  const auto [encoded, total] = check_all(corpus);
  EXPECT_EQ(encoded, total - 2);
}

// The text of a timestamptz carries the walsender's TimeZone as an offset: hours, half hours, and the
// seconds of local mean time before time zones.
TEST_F(CopyBinaryTest, TimestampsWithTimeZoneAreTheSameInstantFromAnyTimeZone) {
  for (const char* zone :
       {"UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam", "Pacific/Kiritimati"}) {
    SCOPED_TRACE(zone);
    exec(std::string("SET TimeZone = '") + zone + "'");
    const std::size_t encoded =
        check({"timestamptz",
               "timestamptz",
               {"'2026-11-25 15:21:47.123456+00'", "'2000-01-01 00:00:00+00'", "'1900-01-01 00:00:00+00'",
                "'1850-06-01 12:00:00+00'", "'2026-03-29 01:30:00+00'", "'infinity'", "'-infinity'",
                "'0001-01-02 00:00:00+00'", "'9999-12-30 23:59:59.999999+00'"},
               {}});
    EXPECT_EQ(encoded, 9u);
  }
  exec("SET TimeZone = 'UTC'; SET DateStyle = 'SQL, DMY'");
  EXPECT_EQ(check({"timestamptz", "timestamptz", {"'2026-11-25 15:21:47+00'"}, {"25/11/2026 15:21:47 UTC"}}),
            0u);
  exec("RESET DateStyle");
}

}  // namespace
}  // namespace cdcsync
