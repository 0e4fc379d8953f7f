// The audit report as text for people and as one JSON object for tools.
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <sstream>

#include "daemon/tools/audit.h"
#include "daemon/tools/audit_internal.h"

namespace cdcsync::audit {
namespace {

using namespace detail;

std::string mode_text(const SecretFacts& s) {
  std::string out;
  if (s.mode) out += fmt::format("mode {:04o}", *s.mode);
  if (s.uid) out += fmt::format("{}uid {}", out.empty() ? "" : ", ", *s.uid);
  return out;
}

}  // namespace

std::string render_text(const Report& r) {
  std::ostringstream o;
  o << "cdcsync audit: pipeline " << r.pipeline << " (" << r.config_file << ")\n\n";
  o << "Columns that cross to the order DB (source -> target, transform):\n";
  std::size_t width = 0;
  for (const auto& f : r.flows) width = std::max(width, f.source.size());
  for (const auto& f : r.flows) {
    o << "  " << f.source << std::string(width - f.source.size(), ' ') << "  ->  " << f.target << "  ("
      << f.transform << ")\n";
  }
  o << "\nColumns of the mapped source tables that stay at the source:\n  "
    << (r.kept_at_source.empty() ? std::string("(none)") : join(r.kept_at_source)) << "\n";
  o << "\nConnections:\n";
  for (const auto& c : r.connections) {
    o << "  " << c.name << ": " << c.endpoint << ", " << c.transport << ", " << c.tls << " -> "
      << (c.verified ? "ok" : "NOT VERIFIED") << "\n";
  }
  o << "\nSecrets:\n";
  for (const auto& s : r.secrets) {
    o << "  " << s.what << ": " << s.kind;
    if (!s.location.empty()) o << " " << s.location;
    if (const auto m = mode_text(s); !m.empty()) o << " (" << m << ")";
    o << "\n";
  }
  o << "\nRoles (what each role can actually do, read as that role):\n";
  for (const auto& role : r.roles) {
    o << "  " << role.server << ": " << role.role << " on database " << role.database << ": "
      << (role.attributes.empty() ? std::string("(no attributes)") : join(role.attributes, " ")) << "\n";
    if (!role.member_of.empty()) o << "    member of " << join(role.member_of) << "\n";
    for (const auto& g : role.grants) o << "    " << g << "\n";
  }
  o << "\nFindings:\n";
  if (r.findings.empty()) o << "  (none)\n";
  for (const auto& f : r.findings) {
    o << "  " << (f.severity == Severity::Violation ? "VIOLATION" : "WARNING") << " [" << f.area << "] "
      << f.object << ": " << f.problem << "\n      fix: " << f.fix << "\n";
  }
  const auto violations = r.count(Severity::Violation);
  const auto warnings = r.count(Severity::Warning);
  o << "\n"
    << violations << " violation(s), " << warnings
    << " warning(s): " << (violations == 0 ? "compliant" : "NOT compliant") << "\n";
  return o.str();
}

std::string render_json(const Report& r) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  const auto str = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  const auto strings = [&](const char* key, const std::vector<std::string>& values) {
    w.Key(key);
    w.StartArray();
    for (const auto& v : values) w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndArray();
  };
  w.StartObject();
  str("pipeline", r.pipeline);
  str("config", r.config_file);
  w.Key("compliant");
  w.Bool(r.clean());
  w.Key("violations");
  w.Uint64(r.count(Severity::Violation));
  w.Key("warnings");
  w.Uint64(r.count(Severity::Warning));
  w.Key("columns");
  w.StartArray();
  for (const auto& f : r.flows) {
    w.StartObject();
    str("source", f.source);
    str("target", f.target);
    str("transform", f.transform);
    w.EndObject();
  }
  w.EndArray();
  strings("kept_at_source", r.kept_at_source);
  w.Key("connections");
  w.StartArray();
  for (const auto& c : r.connections) {
    w.StartObject();
    str("name", c.name);
    str("endpoint", c.endpoint);
    str("transport", c.transport);
    str("tls", c.tls);
    w.Key("verified");
    w.Bool(c.verified);
    w.EndObject();
  }
  w.EndArray();
  w.Key("secrets");
  w.StartArray();
  for (const auto& s : r.secrets) {
    w.StartObject();
    str("what", s.what);
    str("kind", s.kind);
    str("location", s.location);
    if (s.mode) str("mode", fmt::format("{:04o}", *s.mode));
    if (s.uid) {
      w.Key("uid");
      w.Uint(*s.uid);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("roles");
  w.StartArray();
  for (const auto& role : r.roles) {
    w.StartObject();
    str("server", role.server);
    str("role", role.role);
    str("database", role.database);
    strings("attributes", role.attributes);
    strings("member_of", role.member_of);
    strings("grants", role.grants);
    w.EndObject();
  }
  w.EndArray();
  w.Key("findings");
  w.StartArray();
  for (const auto& f : r.findings) {
    w.StartObject();
    str("severity", std::string(name_of(f.severity)));
    str("area", f.area);
    str("object", f.object);
    str("problem", f.problem);
    str("fix", f.fix);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace cdcsync::audit
