// `cdcsync status`'s two renderings: one screen of text, and the same facts as one JSON object.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "daemon/tools/status.h"

namespace cdcsync::status {
namespace {

std::string text_of(const std::optional<Lsn>& lsn) {
  return lsn ? lsn->str() : std::string("-");
}

template <class T>
std::string text_of(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : std::string("-");
}

std::string position_line(const Report& r, std::string_view name, const std::optional<Lsn>& at,
                          const std::optional<double>& seconds) {
  const auto bytes = r.lag_bytes(at);
  return fmt::format("  {:<18}{:<16} lag {} bytes{}\n", name, text_of(at), text_of(bytes),
                     seconds ? fmt::format(", {:.1f} s", *seconds) : std::string());
}

using Writer = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

void put(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}
void put(Writer& w, const char* key, const std::optional<Lsn>& v) {
  w.Key(key);
  if (v) {
    const std::string s = v->str();
    w.String(s.c_str());
  } else {
    w.Null();
  }
}
template <class T>
void put(Writer& w, const char* key, const std::optional<T>& v) {
  w.Key(key);
  if (!v) {
    w.Null();
  } else if constexpr (std::is_floating_point_v<T>) {
    w.Double(*v);
  } else if constexpr (std::is_signed_v<T>) {
    w.Int64(*v);
  } else {
    w.Uint64(*v);
  }
}

void put_position(Writer& w, const Report& r, const char* key, const std::optional<Lsn>& at,
                  const std::optional<double>& seconds) {
  w.Key(key);
  w.StartObject();
  put(w, "lsn", at);
  put(w, "lag_bytes", r.lag_bytes(at));
  put(w, "lag_seconds", seconds);
  w.EndObject();
}

}  // namespace

std::string render_text(const Report& r) {
  std::string out = fmt::format("pipeline {}\n", r.pipeline);
  if (r.daemon.answers) {
    out += fmt::format("  state             {}{}\n", r.daemon.state.empty() ? "unknown" : r.daemon.state,
                       r.daemon.fatal.empty()
                           ? ""
                           : " (stopped: " + fmt::format("{}", fmt::join(r.daemon.fatal, ", ")) + ")");
  } else {
    out += "  state             not running (nothing answers on metrics.listen)\n";
  }
  out += fmt::format("  last error        {}\n", r.daemon.last_error.empty() ? "none" : r.daemon.last_error);
  out += fmt::format("positions (source WAL {})\n", text_of(r.source_wal));
  out += position_line(r, "slot confirmed", r.slot.confirmed_flush, std::nullopt);
  out += position_line(r, "target progress", r.target_progress,
                       r.daemon.lag_seconds ? r.daemon.lag_seconds : r.target_lag_seconds);
  out += position_line(r, "redis checkpoint", r.redis_checkpoint, std::nullopt);
  if (r.slot.exists) {
    out += fmt::format(
        "slot\n  active            {}{}\n  wal_status        {}\n  WAL retained      {} bytes "
        "(restart_lsn {})\n  safe_wal_size     {}\n",
        r.slot.active ? "yes" : "no", r.slot.active ? " (pid " + r.slot.active_pid + ")" : "",
        r.slot.wal_status, text_of(r.lag_bytes(r.slot.restart)), text_of(r.slot.restart),
        r.slot.safe_wal_size ? std::to_string(*r.slot.safe_wal_size) + " bytes" : "unlimited");
  } else if (r.source_wal) {
    out += "slot\n  missing on the source\n";
  }
  out += "tables\n";
  for (const auto& t : r.tables) {
    out += fmt::format(
        "  {:<28}{:<11} at {:<14} rows: target {}, source {}{}\n", t.target, t.state, text_of(t.snapshot_lsn),
        text_of(t.target_rows), text_of(t.source_rows),
        t.state == "removed" ? " (no longer mapped: not applied, target rows left as they are)" : "");
  }
  for (const auto& u : r.unreadable) out += fmt::format("unreadable: {}\n", u);
  return out;
}

std::string render_json(const Report& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  put(w, "pipeline", r.pipeline);
  w.Key("daemon");
  w.StartObject();
  w.Key("running");
  w.Bool(r.daemon.answers);
  put(w, "state", r.daemon.state);
  put(w, "last_error", r.daemon.last_error);
  w.Key("fatal");
  w.StartArray();
  for (const auto& f : r.daemon.fatal) w.String(f.c_str());
  w.EndArray();
  w.EndObject();
  put(w, "source_wal_lsn", r.source_wal);
  w.Key("positions");
  w.StartObject();
  put_position(w, r, "slot", r.slot.confirmed_flush, std::nullopt);
  put_position(w, r, "target", r.target_progress,
               r.daemon.lag_seconds ? r.daemon.lag_seconds : r.target_lag_seconds);
  put_position(w, r, "redis", r.redis_checkpoint, std::nullopt);
  w.EndObject();
  w.Key("slot");
  w.StartObject();
  w.Key("exists");
  w.Bool(r.slot.exists);
  w.Key("active");
  w.Bool(r.slot.active);
  put(w, "wal_status", r.slot.wal_status);
  put(w, "restart_lsn", r.slot.restart);
  put(w, "retained_wal_bytes", r.lag_bytes(r.slot.restart));
  put(w, "safe_wal_size", r.slot.safe_wal_size);
  w.EndObject();
  w.Key("tables");
  w.StartArray();
  for (const auto& t : r.tables) {
    w.StartObject();
    put(w, "target", t.target);
    put(w, "source", t.source);
    put(w, "state", t.state);
    put(w, "snapshot_lsn", t.snapshot_lsn);
    put(w, "rows_copied", t.rows_copied);
    put(w, "target_rows", t.target_rows);
    put(w, "source_rows", t.source_rows);
    w.EndObject();
  }
  w.EndArray();
  w.Key("unreadable");
  w.StartArray();
  for (const auto& u : r.unreadable) w.String(u.c_str());
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

}  // namespace cdcsync::status
