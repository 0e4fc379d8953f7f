// JSON log lines: one object per line, whatever the message holds.
#include "daemon/ops/logging.h"

#include "daemon/core/log_context.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

namespace cdcsync::logging {
namespace {

std::string escaped(std::string_view s) {
  spdlog::memory_buf_t buf;
  append_json_escaped(s, buf);
  return std::string(buf.data(), buf.size());
}

TEST(JsonLogEscaping, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(escaped("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(escaped("line1\nline2\r\t"), "line1\\nline2\\r\\t");
  EXPECT_EQ(escaped(std::string("\x01\x1f\x7f", 3)), "\\u0001\\u001f\\u007f");
  EXPECT_EQ(escaped(std::string("nul\0byte", 8)), "nul\\u0000byte");
}

TEST(JsonLogEscaping, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(escaped("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(escaped("\xE2\x80\xA8\xE2\x80\xA9"), "\\u2028\\u2029");
  EXPECT_EQ(escaped("bad \xFF end"), "bad \\ufffd end");
  EXPECT_EQ(escaped("trunc \xC3"), "trunc \\ufffd");
  EXPECT_EQ(escaped("overlong \xC0\xAF"), "overlong \\ufffd\\ufffd");
  EXPECT_EQ(escaped("surrogate \xED\xA0\x80"), "surrogate \\ufffd\\ufffd\\ufffd");
}

TEST(JsonLogFormat, WritesOneParsableObjectPerLine) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("cdcsync", sink);
  logger.set_formatter(std::make_unique<JsonFormatter>());
  logger.set_level(spdlog::level::trace);
  logger.warn("slot {} lost:\n\"quoted\" \\ {}", "s1", std::string("\xFF\x01", 2));
  logger.info("second");

  std::istringstream lines(out.str());
  std::string line;
  std::vector<std::string> all;
  while (std::getline(lines, line)) all.push_back(line);
  ASSERT_EQ(all.size(), 2u) << out.str();
  rapidjson::Document doc;
  doc.Parse(all[0].c_str());
  ASSERT_FALSE(doc.HasParseError()) << all[0];
  EXPECT_STREQ(doc["level"].GetString(), "warning");
  EXPECT_STREQ(doc["logger"].GetString(), "cdcsync");
  EXPECT_EQ(std::string(doc["msg"].GetString()), "slot s1 lost:\n\"quoted\" \\ \xEF\xBF\xBD\x01");
  const std::string ts = doc["ts"].GetString();
  EXPECT_EQ(ts.size(), 27u) << ts;  // 2024-05-01T12:00:00.123456Z
  EXPECT_EQ(ts.back(), 'Z');
  EXPECT_TRUE(doc["tid"].IsNumber());
}

TEST(JsonLogFormat, CarriesThePipelineAndTheTableAndLsnOfTheScope) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger("cdcsync", sink);
  logger.set_formatter(std::make_unique<JsonFormatter>());
  set_pipeline("orders \"eu\"");
  {
    const LogScope scope{"ref.customer", Lsn::parse("16/B374D848")};
    logger.info("in a scope");
    {
      const LogScope inner{"", Lsn::parse("16/B374D900")};
      logger.info("inner");
    }
  }
  logger.info("outside");
  set_pipeline("");

  std::istringstream lines(out.str());
  std::string line;
  std::vector<rapidjson::Document> docs;
  while (std::getline(lines, line)) {
    docs.emplace_back().Parse(line.c_str());
    ASSERT_FALSE(docs.back().HasParseError()) << line;
  }
  ASSERT_EQ(docs.size(), 3u) << out.str();
  EXPECT_STREQ(docs[0]["pipeline"].GetString(), "orders \"eu\"");
  EXPECT_STREQ(docs[0]["table"].GetString(), "ref.customer");
  EXPECT_STREQ(docs[0]["lsn"].GetString(), "16/B374D848");
  EXPECT_STREQ(docs[1]["table"].GetString(), "ref.customer") << "an inner scope keeps what it does not set";
  EXPECT_STREQ(docs[1]["lsn"].GetString(), "16/B374D900");
  EXPECT_STREQ(docs[2]["pipeline"].GetString(), "orders \"eu\"");
  EXPECT_FALSE(docs[2].HasMember("table")) << "a scope restores what was there before it";
  EXPECT_FALSE(docs[2].HasMember("lsn"));
}

}  // namespace
}  // namespace cdcsync::logging
