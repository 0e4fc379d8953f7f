// Debezium conformance: the expectations of Debezium's own PostgreSQL connector tests, ported as data
// (cases/*.json, one file per Debezium test class or area), run against `cdcsync tail --format debezium-json
// --schemas --keys` on the real customer server. The case format and the matchers are in README.md beside
// this file.
//
// Per case file: one fresh database, one publication FOR ALL TABLES, one temporary slot and one tail (a new
// one only when a case needs other tail flags). Per case: every schema but `ext` (the extensions) is dropped
// and `public` made anew, the setup runs, then the statements between two non-transactional marker
// messages; the events between the markers are the case's events.
#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/servers.h"

namespace cdcsync::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Json = rapidjson::Value;

constexpr const char* kMarkerPrefix = "cdcsync-conformance";
constexpr const char* kTopicPrefix = "test_server";  // Debezium's TestHelper.TEST_SERVER

std::string conformance_dir() {
  return CONFORMANCE_DIR;
}

std::string binary() {
  const char* path = std::getenv("CDCSYNC_BINARY");
  if (path != nullptr && *path != '\0') return path;
  return CDCSYNC_BUILT_BINARY;
}

std::string to_json(const Json& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

rapidjson::Document parse_json(const std::string& text, const std::string& what) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError()) {
    throw std::runtime_error(what + ": not JSON at offset " + std::to_string(doc.GetErrorOffset()) + " (" +
                             rapidjson::GetParseError_En(doc.GetParseError()) + ")");
  }
  return doc;
}

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) | static_cast<unsigned char>(in[i + 2]);
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

std::string replace_vars(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [name, value] : vars) {
    const std::string token = "${" + name + "}";
    for (std::size_t at = s.find(token); at != std::string::npos; at = s.find(token, at + value.size())) {
      s.replace(at, token.size(), value);
    }
  }
  return s;
}

std::vector<std::string> string_list(const Json& obj, const char* member) {
  std::vector<std::string> out;
  if (!obj.HasMember(member)) return out;
  const Json& v = obj[member];
  if (v.IsString()) {
    out.emplace_back(v.GetString(), v.GetStringLength());
    return out;
  }
  for (const auto& s : v.GetArray()) out.emplace_back(s.GetString(), s.GetStringLength());
  return out;
}

// ---- the tail under test ------------------------------------------------------------------------------

// `cdcsync tail` as a child process; stdout is split into lines that the test takes one by one.
class TailProcess {
 public:
  explicit TailProcess(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    int out[2];
    int err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    reader_ = std::thread([this, fd_out = out[0], fd_err = err[0]] { drain(fd_out, fd_err); });
  }
  ~TailProcess() { stop(); }
  TailProcess(const TailProcess&) = delete;
  TailProcess& operator=(const TailProcess&) = delete;

  // The next stdout line, or nullopt at the deadline or when stdout closed.
  std::optional<std::string> next_line(Clock::time_point deadline) {
    std::unique_lock lock{mu_};
    cv_.wait_until(lock, deadline, [&] { return !lines_.empty() || closed_; });
    if (lines_.empty()) return std::nullopt;
    std::string line = std::move(lines_.front());
    lines_.pop_front();
    return line;
  }
  bool closed() {
    std::lock_guard lock{mu_};
    return closed_ && lines_.empty();
  }
  std::string stderr_text() {
    std::lock_guard lock{mu_};
    return err_;
  }
  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const auto deadline = Clock::now() + 10s;
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() >= deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(20ms);
      }
      pid_ = -1;
    }
    if (reader_.joinable()) reader_.join();
  }

 private:
  void drain(int fd_out, int fd_err) {
    pollfd fds[2] = {{fd_out, POLLIN, 0}, {fd_err, POLLIN, 0}};
    int open = 2;
    std::string partial;
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
        if (i == 1) {
          err_.append(buf, static_cast<std::size_t>(n));
          continue;
        }
        partial.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl = partial.find('\n'); nl != std::string::npos; nl = partial.find('\n')) {
          if (nl > 0) lines_.push_back(partial.substr(0, nl));
          partial.erase(0, nl + 1);
        }
        cv_.notify_all();
      }
    }
    std::lock_guard lock{mu_};
    closed_ = true;
    cv_.notify_all();
  }

  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  std::string err_;
  bool closed_ = false;
};

// ---- comparing one event ------------------------------------------------------------------------------

using Diffs = std::vector<std::string>;

std::string shown(const Json* v) {
  return v == nullptr ? "(absent)" : to_json(*v);
}

bool is_matcher(const Json& e) {
  return e.IsObject() && e.MemberCount() == 1 && e.MemberBegin()->name.GetStringLength() > 1 &&
         e.MemberBegin()->name.GetString()[0] == '$';
}

bool same_number(const Json& e, const Json& a) {
  if (!a.IsNumber()) return false;
  // 4 and 4.0 are different JSON texts (Jackson writes a double as 4.0): the kind must match too.
  if (e.IsDouble() != a.IsDouble()) return false;
  if (e.IsDouble()) return e.GetDouble() == a.GetDouble();
  if (e.IsInt64() && a.IsInt64()) return e.GetInt64() == a.GetInt64();
  if (e.IsUint64() && a.IsUint64()) return e.GetUint64() == a.GetUint64();
  return false;
}

void match(const Json& e, const Json* a, const std::string& path,
           const std::map<std::string, std::string>& vars, Diffs& diffs);

void match_matcher(const Json& e, const Json* a, const std::string& path,
                   const std::map<std::string, std::string>& vars, Diffs& diffs) {
  const std::string op = e.MemberBegin()->name.GetString();
  const Json& arg = e.MemberBegin()->value;
  if (op == "$not_null") {
    if (a == nullptr || a->IsNull()) diffs.push_back(path + ": expected a value, actual " + shown(a));
  } else if (op == "$any_of") {
    for (const auto& option : arg.GetArray()) {
      Diffs tried;
      match(option, a, path, vars, tried);
      if (tried.empty()) return;
    }
    diffs.push_back(path + ": expected one of " + to_json(arg) + ", actual " + shown(a));
  } else if (op == "$range") {
    const bool ok = a != nullptr && a->IsNumber() && a->GetDouble() >= arg[0].GetDouble() &&
                    a->GetDouble() <= arg[1].GetDouble();
    if (!ok) diffs.push_back(path + ": expected a number in " + to_json(arg) + ", actual " + shown(a));
  } else if (op == "$repeat" || op == "$seq") {
    // [value, count]: `count` elements each matching `value`; [first, last]: the integers first..last.
    const bool repeat = op == "$repeat";
    const std::int64_t count = repeat ? arg[1].GetInt64() : arg[1].GetInt64() - arg[0].GetInt64() + 1;
    if (a == nullptr || !a->IsArray() || static_cast<std::int64_t>(a->Size()) != count) {
      diffs.push_back(path + ": expected an array of " + std::to_string(count) + " elements (" + op + " " +
                      to_json(arg) + "), actual " + (a == nullptr ? "(absent)" : to_json(*a).substr(0, 300)));
      return;
    }
    for (rapidjson::SizeType i = 0; i < a->Size(); ++i) {
      Diffs d;
      if (repeat) {
        match(arg[0], &(*a)[i], path + "[" + std::to_string(i) + "]", vars, d);
      } else {
        rapidjson::Value want(arg[0].GetInt64() + static_cast<std::int64_t>(i));
        match(want, &(*a)[i], path + "[" + std::to_string(i) + "]", vars, d);
      }
      if (!d.empty()) {
        diffs.push_back(d.front());
        return;
      }
    }
  } else if (op == "$fields") {
    // The object has exactly these members (in any order).
    std::set<std::string> want;
    for (const auto& f : arg.GetArray()) want.insert(f.GetString());
    std::set<std::string> have;
    if (a != nullptr && a->IsObject()) {
      for (auto m = a->MemberBegin(); m != a->MemberEnd(); ++m) have.insert(m->name.GetString());
    }
    if (want != have)
      diffs.push_back(path + ": expected the fields " + to_json(arg) + ", actual " + shown(a));
  } else {
    diffs.push_back(path + ": unknown matcher " + op + " in the case");
  }
}

// `e` is what the case states; only what it states is compared (members of objects it leaves out are not).
void match(const Json& e, const Json* a, const std::string& path,
           const std::map<std::string, std::string>& vars, Diffs& diffs) {
  if (is_matcher(e)) return match_matcher(e, a, path, vars, diffs);
  if (a == nullptr) {
    diffs.push_back(path + ": expected " + to_json(e) + ", actual (absent)");
    return;
  }
  if (e.IsObject()) {
    if (!a->IsObject()) {
      diffs.push_back(path + ": expected an object " + to_json(e) + ", actual " + to_json(*a));
      return;
    }
    for (auto m = e.MemberBegin(); m != e.MemberEnd(); ++m) {
      const std::string name = m->name.GetString();
      const auto found = a->FindMember(m->name);
      match(m->value, found == a->MemberEnd() ? nullptr : &found->value, path + "." + name, vars, diffs);
    }
    return;
  }
  if (e.IsArray()) {
    if (!a->IsArray() || a->Size() != e.Size()) {
      diffs.push_back(path + ": expected " + to_json(e) + ", actual " + to_json(*a));
      return;
    }
    for (rapidjson::SizeType i = 0; i < e.Size(); ++i) {
      match(e[i], &(*a)[i], path + "[" + std::to_string(i) + "]", vars, diffs);
    }
    return;
  }
  bool same = false;
  if (e.IsString()) {
    same = a->IsString() &&
           replace_vars(e.GetString(), vars) == std::string(a->GetString(), a->GetStringLength());
  } else if (e.IsNumber()) {
    same = same_number(e, *a);
  } else {
    same = e == *a;
  }
  if (!same) {
    std::string want = to_json(e);
    if (e.IsString() && want.find("${") != std::string::npos)
      want = "\"" + replace_vars(e.GetString(), vars) + "\"";
    if (want.size() > 300) want = want.substr(0, 300) + "...";
    std::string have = to_json(*a);
    if (have.size() > 300) have = have.substr(0, 300) + "...";
    diffs.push_back(path + ": expected " + want + ", actual " + have);
  }
}

// A Kafka Connect schema as JsonConverter writes it, compared like Debezium's
// VerifyRecord.assertConnectSchemasAreEqual: type, optional, name, version, doc, parameters, default, and
// the items/fields recursively. Only the top-level "field" (the name under which it sits) is left out.
void match_schema(const Json& e, const Json& a, const std::string& path,
                  const std::map<std::string, std::string>& vars, Diffs& diffs) {
  for (const char* prop :
       {"type", "optional", "name", "version", "doc", "parameters", "default", "items", "fields"}) {
    const bool in_e = e.HasMember(prop);
    const bool in_a = a.HasMember(prop);
    const std::string p = path + "." + prop;
    if (!in_e && !in_a) continue;
    if (in_e != in_a) {
      diffs.push_back(p + ": expected " + (in_e ? to_json(e[prop]) : "(absent)") + ", actual " +
                      (in_a ? to_json(a[prop]) : "(absent)"));
      continue;
    }
    if (std::string(prop) == "items") {
      match_schema(e[prop], a[prop], p, vars, diffs);
    } else if (std::string(prop) == "fields") {
      if (!a[prop].IsArray() || a[prop].Size() != e[prop].Size()) {
        diffs.push_back(p + ": expected " + to_json(e[prop]) + ", actual " + to_json(a[prop]));
        continue;
      }
      for (rapidjson::SizeType i = 0; i < e[prop].Size(); ++i) {
        const Json& ef = e[prop][i];
        const Json& af = a[prop][i];
        const std::string fp = p + "[" + std::to_string(i) + "]";
        if (!af.HasMember("field") || !(ef["field"] == af["field"])) {
          diffs.push_back(fp + ".field: expected " + to_json(ef["field"]) + ", actual " +
                          shown(af.HasMember("field") ? &af["field"] : nullptr));
        }
        match_schema(ef, af, fp, vars, diffs);
      }
    } else {
      Diffs d;
      match(e[prop], &a[prop], p, vars, d);
      // `default` and `parameters` compare whole: an extra parameter is a difference too.
      if (d.empty() && e[prop].IsObject() && a[prop].IsObject() &&
          e[prop].MemberCount() != a[prop].MemberCount()) {
        d.push_back(p + ": expected " + to_json(e[prop]) + ", actual " + to_json(a[prop]));
      }
      diffs.insert(diffs.end(), d.begin(), d.end());
    }
  }
}

// The schema of one column inside the Envelope's `before` or `after` struct.
const Json* column_schema(const Json& value_schema, const std::string& part, const std::string& column) {
  if (!value_schema.IsObject() || !value_schema.HasMember("fields")) return nullptr;
  for (const auto& f : value_schema["fields"].GetArray()) {
    if (!f.HasMember("field") || f["field"] != part.c_str() || !f.HasMember("fields")) continue;
    for (const auto& c : f["fields"].GetArray()) {
      if (c.HasMember("field") && c["field"] == column.c_str()) return &c;
    }
  }
  return nullptr;
}

const Json* member(const Json& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  const auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

void check_schemas(const Json& want, const Json& value_schema, const std::string& path, bool whole,
                   const std::map<std::string, std::string>& vars, Diffs& diffs) {
  for (auto part = want.MemberBegin(); part != want.MemberEnd(); ++part) {
    for (auto col = part->value.MemberBegin(); col != part->value.MemberEnd(); ++col) {
      const std::string p = path + "." + part->name.GetString() + "." + col->name.GetString();
      const Json* have = column_schema(value_schema, part->name.GetString(), col->name.GetString());
      if (have == nullptr) {
        diffs.push_back(p + ": no such field in the value schema");
      } else if (whole) {
        match_schema(col->value, *have, p, vars, diffs);
      } else {
        // Only the properties the case lists; a listed null means absent (or null).
        for (auto prop = col->value.MemberBegin(); prop != col->value.MemberEnd(); ++prop) {
          const Json* a = member(*have, prop->name.GetString());
          const std::string pp = p + "." + prop->name.GetString();
          if (prop->value.IsNull()) {
            if (a != nullptr && !a->IsNull())
              diffs.push_back(pp + ": expected (absent), actual " + to_json(*a));
          } else {
            match(prop->value, a, pp, vars, diffs);
          }
        }
      }
    }
  }
}

void check_key(const Json& want, const Json& line, const std::map<std::string, std::string>& vars,
               const std::string& path, Diffs& diffs) {
  const Json* key = member(line, "key");
  const Json* payload = key != nullptr && key->IsObject() ? member(*key, "payload") : nullptr;
  if (want.HasMember("key")) {
    if (want["key"].IsNull()) {
      if (key != nullptr && !key->IsNull())
        diffs.push_back(path + ".key: expected null, actual " + to_json(*payload));
    } else {
      match(want["key"], payload, path + ".key", vars, diffs);
    }
  }
  if (want.HasMember("key_fields")) {
    std::vector<std::string> have;
    const Json* schema = key != nullptr && key->IsObject() ? member(*key, "schema") : nullptr;
    if (schema != nullptr && schema->HasMember("fields")) {
      for (const auto& f : (*schema)["fields"].GetArray()) have.emplace_back(f["field"].GetString());
    }
    if (have != string_list(want, "key_fields")) {
      std::string h;
      for (const auto& s : have) h += (h.empty() ? "" : ",") + s;
      diffs.push_back(path + ".key_fields: expected " + to_json(want["key_fields"]) + ", actual [" + h + "]");
    }
  }
}

void check_topic(const std::string& topic, const Json& line, const std::string& path, Diffs& diffs) {
  const Json* value = member(line, "value");
  const Json* vschema = value != nullptr && value->IsObject() ? member(*value, "schema") : nullptr;
  const Json* key = member(line, "key");
  const Json* kschema = key != nullptr && key->IsObject() ? member(*key, "schema") : nullptr;
  auto expect_name = [&](const Json* schema, const std::string& want, const std::string& where) {
    const Json* name = schema == nullptr ? nullptr : member(*schema, "name");
    if (name == nullptr || !name->IsString() || want != name->GetString()) {
      diffs.push_back(path + "." + where + ": expected \"" + want + "\", actual " + shown(name));
    }
  };
  if (vschema != nullptr) {
    expect_name(vschema, topic + ".Envelope", "schema.name(Envelope)");
    for (const auto& f : (*vschema)["fields"].GetArray()) {
      if (f["field"] == "before" || f["field"] == "after") {
        expect_name(&f, topic + ".Value", std::string("schema.") + f["field"].GetString() + ".name(Value)");
      }
    }
  }
  if (kschema != nullptr) expect_name(kschema, topic + ".Key", "key.schema.name(Key)");
}

// One printed line against one expected event.
Diffs check_event(const Json& want, const Json& line, const std::map<std::string, std::string>& vars,
                  const std::string& path) {
  Diffs diffs;
  check_key(want, line, vars, path, diffs);
  const Json* value = member(line, "value");
  const bool tombstone = value == nullptr || value->IsNull();
  const bool want_tombstone = want.HasMember("tombstone") && want["tombstone"].GetBool();
  if (tombstone != want_tombstone) {
    diffs.push_back(path + ": expected " + (want_tombstone ? "a tombstone" : "a change event") + ", actual " +
                    (tombstone ? "a tombstone" : to_json((*value)["payload"]).substr(0, 400)));
    return diffs;
  }
  if (tombstone) return diffs;
  const Json* payload = member(*value, "payload");
  const Json* schema = member(*value, "schema");
  if (want.HasMember("value")) match(want["value"], payload, path + ".value", vars, diffs);
  if (want.HasMember("field_schemas") && schema != nullptr) {
    check_schemas(want["field_schemas"], *schema, path + ".schema", true, vars, diffs);
  }
  if (want.HasMember("field_schema_props") && schema != nullptr) {
    check_schemas(want["field_schema_props"], *schema, path + ".schema", false, vars, diffs);
  }
  if (want.HasMember("topic")) check_topic(want["topic"].GetString(), line, path, diffs);
  for (const char* part : {"before", "after"}) {
    // "after_fields": the struct has exactly these fields (Debezium's containsOnly on the field names).
    const std::string key = std::string(part) + "_fields";
    if (!want.HasMember(key.c_str()) || payload == nullptr) continue;
    rapidjson::Document m;
    m.SetObject();
    m.AddMember("$fields", rapidjson::Value(want[key.c_str()], m.GetAllocator()), m.GetAllocator());
    match(m, member(*payload, part), path + ".value." + part, vars, diffs);
  }
  return diffs;
}

// ---- one case file ------------------------------------------------------------------------------------

struct CaseResult {
  std::string id;
  bool passed = false;
  Diffs diffs;
};

std::string marker_content(const std::string& what, const std::string& id) {
  return what + ":" + id;
}

bool is_marker(const Json& line, const std::string& content) {
  const Json* value = member(line, "value");
  if (value == nullptr || !value->IsObject()) return false;
  const Json* payload = member(*value, "payload");
  const Json* message = payload == nullptr ? nullptr : member(*payload, "message");
  if (message == nullptr || !message->IsObject()) return false;
  const Json* prefix = member(*message, "prefix");
  const Json* body = member(*message, "content");
  return prefix != nullptr && prefix->IsString() && std::string(prefix->GetString()) == kMarkerPrefix &&
         body != nullptr && body->IsString() && std::string(body->GetString()) == base64(content);
}

// "BEGIN" or "END" for a transaction metadata event, "" otherwise.
std::string transaction_status(const Json& line) {
  const Json* value = member(line, "value");
  const Json* payload = value != nullptr && value->IsObject() ? member(*value, "payload") : nullptr;
  const Json* status = payload == nullptr ? nullptr : member(*payload, "status");
  return status != nullptr && status->IsString() ? status->GetString() : "";
}

bool is_any_marker(const Json& line) {
  const Json* value = member(line, "value");
  const Json* payload = value != nullptr && value->IsObject() ? member(*value, "payload") : nullptr;
  const Json* message = payload == nullptr ? nullptr : member(*payload, "message");
  const Json* prefix = message != nullptr && message->IsObject() ? member(*message, "prefix") : nullptr;
  return prefix != nullptr && prefix->IsString() && std::string(prefix->GetString()) == kMarkerPrefix;
}

class FileRun {
 public:
  explicit FileRun(std::string name) : name_(std::move(name)) {}

  std::vector<CaseResult> run(const Json& file) {
    admin_ = TestServers::get().fresh_database(Server::Customer, "dbz_conformance_" + name_);
    exec_sql(admin_, "ALTER DATABASE " + db() + " SET timezone = 'UTC'");
    exec_sql(admin_, "ALTER DATABASE " + db() + " SET search_path = public, ext");
    exec_sql(admin_, "CREATE SCHEMA ext");
    for (const auto& sql : string_list(file, "file_setup")) exec_sql(admin_, sql);
    exec_sql(admin_, "CREATE PUBLICATION conformance FOR ALL TABLES");
    conn_ = pg_connect(admin_, "the test database");
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);  // DROP ... CASCADE talks

    const std::regex filter{
        std::getenv("CDCSYNC_CONFORMANCE_FILTER") ? std::getenv("CDCSYNC_CONFORMANCE_FILTER") : ".*"};
    std::vector<CaseResult> results;
    for (const auto& c : file["cases"].GetArray()) {
      const std::string id = c["id"].GetString();
      if (!std::regex_search(id, filter)) continue;
      results.push_back(run_case(c));
    }
    if (tail_) tail_->stop();
    return results;
  }

 private:
  std::string db() const { return "dbz_conformance_" + name_; }

  void start_tail(const std::vector<std::string>& options) {
    if (tail_) tail_->stop();
    const std::string slot = "dbz_conf_" + std::to_string(++tails_);
    std::vector<std::string> args = {
        "tail",          "--source",  admin_,          "--publication",  "conformance",
        "--slot",        slot,        "--create-slot", "--temporary",    "--format",
        "debezium-json", "--schemas", "--keys",        "--topic-prefix", kTopicPrefix};
    args.insert(args.end(), options.begin(), options.end());
    tail_ = std::make_unique<TailProcess>(args);
    tail_options_ = options;
    last_status_.clear();
    skip_marker_end_ = false;
    const bool streaming = eventually(
        [&] {
          return query_value(admin_, "SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot +
                                         "'") == std::optional<std::string>("t");
        },
        30s);
    if (!streaming) throw std::runtime_error("tail did not start streaming: " + tail_->stderr_text());
  }

  void reset_schemas() {
    run_sql(
        "DO $$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE "
        "'pg\\_%' "
        "AND nspname NOT IN ('information_schema', 'ext') LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); "
        "END LOOP; END $$; CREATE SCHEMA public",
        "reset");
  }

  void run_sql(const std::string& sql, const std::string& what) {
    PgResult res{PQexec(conn_.get(), sql.c_str())};
    const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      const char* msg = res ? PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      throw std::runtime_error(what + " failed: " + (msg != nullptr ? msg : PQerrorMessage(conn_.get())) +
                               "\n    SQL: " + sql.substr(0, 300));
    }
  }

  void emit_marker(const std::string& content) {
    run_sql("SELECT pg_logical_emit_message(false, '" + std::string(kMarkerPrefix) + "', '" + content + "')",
            "marker");
  }

  // Lines up to and including the marker; the marker itself is not returned.
  std::vector<std::string> read_until(const std::string& content, Diffs& problems) {
    std::vector<std::string> lines;
    const auto deadline = Clock::now() + 30s;
    while (true) {
      auto line = tail_->next_line(deadline);
      if (!line) {
        problems.push_back(std::string(tail_->closed() ? "tail exited" : "timed out") + " before marker " +
                           content + "; stderr: " + tail_->stderr_text());
        return lines;
      }
      rapidjson::Document doc;
      doc.Parse(line->c_str(), line->size());
      // With --transaction-metadata the tail wraps a non-transactional message in a BEGIN and an END of its
      // own (transaction id 0): those of the markers are the runner's, not the case's.
      const std::string status = doc.HasParseError() ? "" : transaction_status(doc);
      if (skip_marker_end_ && status == "END") {
        skip_marker_end_ = false;
        continue;
      }
      skip_marker_end_ = false;
      if (!doc.HasParseError() && is_any_marker(doc)) {
        if (!lines.empty() && last_status_ == "BEGIN") lines.pop_back();
        skip_marker_end_ = last_status_ == "BEGIN";
        last_status_.clear();
        if (is_marker(doc, content)) return lines;
        continue;
      }
      last_status_ = status;
      lines.push_back(std::move(*line));
    }
  }

  CaseResult run_case(const Json& c) {
    CaseResult result{.id = c["id"].GetString()};
    const std::string& id = result.id;
    try {
      const auto options = string_list(c, "tail_options");
      reset_schemas();
      // What Debezium's test creates before the connector starts (types, mostly): made before a new tail.
      const auto before_tail = string_list(c, "before_tail");
      for (const auto& sql : before_tail) run_sql(sql, "before_tail");
      if (!tail_ || options != tail_options_ || tail_->closed() || !before_tail.empty()) start_tail(options);
      // Values too long for the case file (TOAST), computed by the server before the setup that uses them.
      std::map<std::string, std::string> vars;
      if (c.HasMember("vars")) {
        for (auto v = c["vars"].MemberBegin(); v != c["vars"].MemberEnd(); ++v) {
          vars[v->name.GetString()] = query_value(admin_, v->value.GetString()).value_or("");
        }
      }
      for (const auto& sql : string_list(c, "setup")) run_sql(replace_vars(sql, vars), "setup");
      emit_marker(marker_content("begin", id));
      Diffs problems;
      read_until(marker_content("begin", id), problems);  // setup's own events are not the case's
      for (const auto& sql : string_list(c, "statements")) run_sql(replace_vars(sql, vars), "statement");
      emit_marker(marker_content("end", id));
      const auto lines = read_until(marker_content("end", id), problems);
      result.diffs = problems;
      compare(c, lines, vars, result.diffs);
    } catch (const std::exception& e) {
      result.diffs.push_back(std::string("error: ") + e.what());
    }
    result.passed = result.diffs.empty();
    return result;
  }

  static void compare(const Json& c, const std::vector<std::string>& lines,
                      const std::map<std::string, std::string>& vars, Diffs& diffs) {
    const Json& expect = c["expect"];
    const bool ignore_trailing = c.HasMember("trailing_events") && c["trailing_events"] == "ignore";
    if (lines.size() < expect.Size() || (!ignore_trailing && lines.size() > expect.Size())) {
      std::string printed;
      for (const auto& l : lines) {
        rapidjson::Document d = parse_json(l, "tail output");
        const Json* v = member(d, "value");
        const Json* p = v != nullptr && v->IsObject() ? member(*v, "payload") : nullptr;
        std::string s = p != nullptr ? to_json(*p) : "tombstone " + to_json(d["key"]);
        printed += "\n      " + s.substr(0, 400);
      }
      diffs.push_back("expected " + std::to_string(expect.Size()) + " events, tail printed " +
                      std::to_string(lines.size()) + ":" + printed);
    }
    for (rapidjson::SizeType i = 0; i < expect.Size() && i < lines.size(); ++i) {
      rapidjson::Document doc = parse_json(lines[i], "tail output line");
      const Diffs d = check_event(expect[i], doc, vars, "event[" + std::to_string(i) + "]");
      diffs.insert(diffs.end(), d.begin(), d.end());
    }
  }

  std::string name_;
  std::string admin_;
  PgConn conn_;
  std::unique_ptr<TailProcess> tail_;
  std::vector<std::string> tail_options_;
  std::string last_status_;       // BEGIN/END of the last line kept, "" for a change event
  bool skip_marker_end_ = false;  // the next line is the END of a marker's own transaction
  int tails_ = 0;
};

// ---- the case files ---------------------------------------------------------------------------------

std::vector<std::string> case_files() {
  std::vector<std::string> names;
  const std::string dir = conformance_dir() + "/cases";
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 5 && n.ends_with(".json")) names.push_back(n.substr(0, n.size() - 5));
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

rapidjson::Document load_case_file(const std::string& name) {
  const std::string path = conformance_dir() + "/cases/" + name + ".json";
  return parse_json(read_file(path), path);
}

void write_report(const std::string& file, const std::vector<CaseResult>& results) {
  const char* path = std::getenv("CDCSYNC_CONFORMANCE_REPORT");
  if (path == nullptr || *path == '\0') return;
  std::ofstream out(path, std::ios::app);
  for (const auto& r : results) {
    out << file << '\t' << r.id << '\t' << (r.passed ? "pass" : "fail");
    for (const auto& d : r.diffs) {
      std::string one = d;
      std::replace(one.begin(), one.end(), '\n', ' ');
      out << '\t' << one;
    }
    out << '\n';
  }
}

class DebeziumConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(DebeziumConformance, MatchesDebeziumsTestExpectations) {
  const std::string file = GetParam();
  const rapidjson::Document doc = load_case_file(file);

  FileRun run{file};
  const std::vector<CaseResult> results = run.run(doc);
  write_report(file, results);

  int passed = 0;
  for (const auto& r : results) {
    std::string detail;
    for (const auto& d : r.diffs) detail += "\n    " + d;
    if (r.passed) {
      ++passed;
    } else {
      ADD_FAILURE() << "case " << r.id << " (" << file << ".json) differs from Debezium:" << detail;
    }
  }
  std::cout << "[ summary  ] " << file << ": " << results.size() << " cases, " << passed << " pass\n";
}

INSTANTIATE_TEST_SUITE_P(Cases, DebeziumConformance, ::testing::ValuesIn(case_files()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// Case ids are unique across the files, every case says where it comes from, and a case that states one of
// the encoder's deliberate differences names it and keeps what Debezium asserts beside what cdcsync prints.
TEST(DebeziumConformanceList, CasesAreWellFormed) {
  std::set<std::string> ids;
  for (const auto& file : case_files()) {
    const rapidjson::Document doc = load_case_file(file);
    for (const auto& c : doc["cases"].GetArray()) {
      for (const char* required : {"id", "from", "expect"}) {
        ASSERT_TRUE(c.HasMember(required))
            << file << ": a case without \"" << required << "\": " << to_json(c);
      }
      const std::string id = c["id"].GetString();
      EXPECT_TRUE(ids.insert(id).second) << "duplicate case id " << id;
      if (c.HasMember("differs")) {
        EXPECT_TRUE(c["differs"].IsString() && c["differs"].GetStringLength() > 0) << id;
        EXPECT_TRUE(c.HasMember("debezium_expect"))
            << id << ": a deliberate difference keeps Debezium's expectation";
      }
    }
  }
  EXPECT_GE(ids.size(), 150u);
}

}  // namespace
}  // namespace cdcsync::test
