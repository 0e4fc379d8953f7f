#include "daemon/ops/logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "daemon/core/log_context.h"

namespace cdcsync::logging {
namespace {

constexpr std::string_view kTextPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v";

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  std::size_t n = 0;
  std::uint32_t min = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// The pipeline's name, set once after the config is read (and read by every log line after).
std::string& pipeline_name() {
  static std::string name;
  return name;
}

}  // namespace

void set_pipeline(std::string_view name) {
  pipeline_name() = name;
}

void append_json_escaped(std::string_view text, spdlog::memory_buf_t& dest) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          append(dest, "\\\"");
          break;
        case '\\':
          append(dest, "\\\\");
          break;
        case '\n':
          append(dest, "\\n");
          break;
        case '\r':
          append(dest, "\\r");
          break;
        case '\t':
          append(dest, "\\t");
          break;
        case '\b':
          append(dest, "\\b");
          break;
        case '\f':
          append(dest, "\\f");
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
            dest.append(esc, esc + sizeof esc);
          } else {
            dest.push_back(static_cast<char>(c));
          }
      }
      ++i;
      continue;
    }
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) {
      append(dest, "\\ufffd");  // invalid byte: replaced, never copied raw
      ++i;
      continue;
    }
    const std::string_view seq = text.substr(i, n);
    if (seq == "\xE2\x80\xA8") {
      append(dest, "\\u2028");
    } else if (seq == "\xE2\x80\xA9") {
      append(dest, "\\u2029");
    } else {
      append(dest, seq);
    }
    i += n;
  }
}

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  using namespace std::chrono;
  const auto since_epoch = msg.time.time_since_epoch();
  const auto secs = duration_cast<seconds>(since_epoch);
  const auto micros = duration_cast<microseconds>(since_epoch - secs).count();
  const std::time_t t = secs.count();
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[40];
  const std::size_t len = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  append(dest, "{\"ts\":\"");
  append(dest, std::string_view(ts, len));
  fmt::format_to(std::back_inserter(dest), ".{:06d}Z\",\"level\":\"", micros);
  const auto level = spdlog::level::to_string_view(msg.level);
  append(dest, std::string_view(level.data(), level.size()));
  append(dest, "\",\"logger\":\"");
  append_json_escaped(std::string_view(msg.logger_name.data(), msg.logger_name.size()), dest);
  append(dest, "\",\"msg\":\"");
  append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  append(dest, "\"");
  if (const std::string& name = pipeline_name(); !name.empty()) {
    append(dest, ",\"pipeline\":\"");
    append_json_escaped(name, dest);
    append(dest, "\"");
  }
  const LogFields& fields = log_fields();
  if (!fields.table.empty()) {
    append(dest, ",\"table\":\"");
    append_json_escaped(fields.table, dest);
    append(dest, "\"");
  }
  if (fields.lsn) fmt::format_to(std::back_inserter(dest), ",\"lsn\":\"{}\"", fields.lsn->str());
  fmt::format_to(std::back_inserter(dest), ",\"tid\":{}}}\n", msg.thread_id);
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
  return std::make_unique<JsonFormatter>();
}

namespace {

// stderr, with an optional status line kept below the log: cleared before each log line and drawn again after
// it (a progress bar on a terminal). Without a status line, exactly the plain stderr sink.
class StatusLineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_status(std::string_view line) {
    std::lock_guard lock(mutex_);
    status_ = line;
    draw();
  }
  void end_status(bool keep) {
    std::lock_guard lock(mutex_);
    if (status_.empty()) return;
    std::fputs(keep ? "\n" : "\r\033[K", stderr);
    std::fflush(stderr);
    status_.clear();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!status_.empty()) std::fputs("\r\033[K", stderr);
    inner_.log(msg);
    inner_.flush();
    draw();
  }
  void flush_() override { inner_.flush(); }
  void set_pattern_(const std::string& pattern) override { inner_.set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override { inner_.set_formatter(std::move(f)); }

 private:
  void draw() {
    if (status_.empty()) return;
    std::fputs("\r\033[K", stderr);
    std::fputs(status_.c_str(), stderr);
    std::fflush(stderr);
  }
  spdlog::sinks::stderr_color_sink_st inner_;
  std::string status_;
};

std::shared_ptr<StatusLineSink> status_sink() {
  static const auto sink = std::make_shared<StatusLineSink>();
  return sink;
}

}  // namespace

void set_status_line(std::string_view line) {
  status_sink()->set_status(line);
}

void end_status_line(bool keep) {
  status_sink()->end_status(keep);
}

void setup(std::string_view level) {
  auto logger = spdlog::get("cdcsync");
  if (!logger) {
    logger = std::make_shared<spdlog::logger>("cdcsync", status_sink());
    spdlog::register_logger(logger);
  }
  spdlog::set_default_logger(logger);
  spdlog::set_pattern(std::string(kTextPattern));
  set_level(level);
}

void set_format(config::LogFormat format) {
  if (format == config::LogFormat::Json) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern(std::string(kTextPattern));
  }
}

void set_level(std::string_view level) {
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace cdcsync::logging
