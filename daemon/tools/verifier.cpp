// Verifier: two passes over hash buckets at known source positions, repair, and the report.
#include "daemon/tools/verifier.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <iomanip>
#include <sstream>
#include <thread>

#include "daemon/core/runner.h"

namespace cdcsync::verify {
namespace {

using namespace std::chrono_literals;

void print_keys(std::ostream& out, std::string_view kind, const std::vector<KeyRef>& keys, long long max) {
  long long shown = 0;
  for (const auto& k : keys) {
    if (shown++ >= max) {
      out << "    ... and " << keys.size() - static_cast<std::size_t>(max) << " more " << kind << "\n";
      break;
    }
    out << "    " << kind << " " << k.shown << "\n";
  }
}

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void write_keys(JsonWriter& w, const std::vector<KeyRef>& keys, long long max) {
  w.StartArray();
  long long n = 0;
  for (const auto& k : keys) {
    if (n++ >= max) break;
    w.String(k.shown);
  }
  w.EndArray();
}

void write_table(JsonWriter& w, const TableResult& t, long long max) {
  w.StartObject();
  w.Key("source");
  w.String(t.table->source.str());
  w.Key("target");
  w.String(t.table->target.str());
  w.Key("source_rows");
  w.Uint64(t.source_rows);
  w.Key("target_rows");
  w.Uint64(t.target_rows);
  w.Key("buckets");
  w.Uint(t.buckets);
  w.Key("buckets_differing");
  w.Uint64(t.differing.size());
  w.Key("missing_count");
  w.Uint64(t.diff.missing.size());
  w.Key("extra_count");
  w.Uint64(t.diff.extra.size());
  w.Key("different_count");
  w.Uint64(t.diff.different.size());
  w.Key("missing");
  write_keys(w, t.diff.missing, max);
  w.Key("extra");
  write_keys(w, t.diff.extra, max);
  w.Key("different");
  write_keys(w, t.diff.different, max);
  w.EndObject();
}

void write_report(JsonWriter& w, const Report& r, long long max) {
  w.StartObject();
  w.Key("snapshot_lsn");
  w.String(r.snapshot_lsn.str());
  w.Key("target_lsn");
  w.String(r.target_lsn.str());
  w.Key("equal");
  w.Bool(r.mismatched() == 0);
  w.Key("mismatched_rows");
  w.Uint64(r.mismatched());
  w.Key("tables");
  w.StartArray();
  for (const auto& t : r.tables) write_table(w, t, max);
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::size_t Report::mismatched() const {
  std::size_t n = 0;
  for (const auto& t : tables) n += t.diff.size();
  return n;
}

Verifier::Verifier(const config::Config& config, CompareOptions options)
    : config_(config), options_(std::move(options)), mapping_(mapping_from_config(config)) {
  for (const auto& t : mapping_.tables()) {
    if (options_.table.empty() || options_.table == t.source.str() || options_.table == t.target.str()) {
      tables_.push_back(&t);
    }
  }
  if (tables_.empty()) {
    throw std::invalid_argument("--table " + options_.table + ": not a mapped source or target table of " +
                                config_.file.string());
  }
}

Report Verifier::run() {
  Report first = pass(nullptr);
  if (first.mismatched() == 0) return first;
  Report second = pass(&first);
  for (std::size_t i = 0; i < second.tables.size(); ++i) {
    second.tables[i].diff = second.tables[i].diff.intersect(first.tables[i].diff);
    second.tables[i].source_rows = first.tables[i].source_rows;
    second.tables[i].target_rows = first.tables[i].target_rows;
    second.tables[i].differing = first.tables[i].differing;
  }
  return second;
}

std::vector<RecopyResult> Verifier::repair(const Report& report, const LoadObserver& observer) {
  std::vector<RecopyResult> out;
  for (const auto& t : report.tables) {
    if (t.diff.size() == 0) {
      out.emplace_back();
      continue;
    }
    out.push_back(recopy_table(config_, *t.table, t.diff.keys(), observer));
  }
  return out;
}

Report Verifier::pass(const Report* earlier) {
  Report r;
  SourceSnapshot snap{source_conninfo(config_), "verify"};
  r.snapshot_lsn = snap.point();
  PgConn target = pg_connect(target_conninfo(config_), "the target");
  set_canonical_session(target.get());
  const QualifiedName progress{config_.target.progress_table.schema, config_.target.progress_table.name};
  const auto deadline = std::chrono::steady_clock::now() + options_.wait;
  for (;;) {
    const auto at = target_position(target.get(), progress, config_.pipeline);
    if (at && *at >= r.snapshot_lsn) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw TargetBehind("target is behind; is the daemon running? (the source snapshot is at " +
                         r.snapshot_lsn.str() + ", the target's progress for pipeline " + config_.pipeline +
                         " at " + (at ? at->str() : std::string("(no progress row)")) + " after " +
                         std::to_string(options_.wait.count()) + " ms)");
    }
    std::this_thread::sleep_for(100ms);
  }
  pg_exec(target.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the target snapshot");
  r.target_lsn = target_position(target.get(), progress, config_.pipeline).value_or(Lsn{});
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    const TableMapping& t = *tables_[i];
    TableReader reader{t};
    TableResult res;
    res.table = &t;
    std::set<std::uint32_t> check;
    if (earlier) {
      res.buckets = earlier->tables[i].buckets;
      check = earlier->tables[i].differing;
      if (earlier->tables[i].diff.size() == 0) check.clear();
    } else {
      res.buckets = reader.bucket_count(snap.conn(), options_.rows_per_bucket);
      const auto s = reader.source_sums(snap.conn(), res.buckets);
      const auto d = reader.target_sums(target.get(), res.buckets);
      for (const auto& [b, v] : s) res.source_rows += v.rows;
      for (const auto& [b, v] : d) res.target_rows += v.rows;
      for (auto b : differing_buckets(s, d)) check.insert(b);
      res.differing = check;
    }
    if (!check.empty()) {
      const auto src = reader.source_rows(snap.conn(), res.buckets, check);
      const auto dst = reader.target_rows(target.get(), res.buckets, check);
      res.diff = diff_rows(t, src, dst);
    }
    r.tables.push_back(std::move(res));
  }
  pg_exec(target.get(), "COMMIT", "ending the target snapshot");
  snap.finish();
  return r;
}

std::string render_text(const Report& r, double seconds) {
  std::ostringstream out;
  out << "verify: source snapshot at " << r.snapshot_lsn.str() << ", target read at " << r.target_lsn.str()
      << "\n";
  for (const auto& t : r.tables) {
    out << t.table->target.str() << " <- " << t.table->source.str() << ": " << t.source_rows
        << " source rows, " << t.target_rows << " target rows, " << t.buckets << " bucket(s), "
        << t.differing.size() << " differing at first, " << t.diff.size() << " mismatched row(s)\n";
  }
  out << "verify: " << r.mismatched() << " mismatched row(s) in " << r.tables.size() << " table(s), "
      << std::fixed << std::setprecision(2) << seconds
      << " s: " << (r.mismatched() == 0 ? "EQUAL" : "DIVERGED") << "\n";
  return out.str();
}

std::string render_details(const Report& r, long long max_keys) {
  std::ostringstream out;
  for (const auto& t : r.tables) {
    if (t.diff.size() == 0) continue;
    out << "  " << t.table->target.str() << ":\n";
    print_keys(out, "missing  ", t.diff.missing, max_keys);
    print_keys(out, "extra    ", t.diff.extra, max_keys);
    print_keys(out, "different", t.diff.different, max_keys);
  }
  return out.str();
}

std::string render_json(const Report& r, double seconds, const std::string& pipeline, long long max_keys,
                        const std::optional<Report>& before_repair) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("pipeline");
  w.String(pipeline);
  w.Key("seconds");
  w.Double(seconds);
  if (before_repair) {
    w.Key("before_repair");
    write_report(w, *before_repair, max_keys);
  }
  w.Key("result");
  write_report(w, r, max_keys);
  w.EndObject();
  return std::string(buf.GetString()) + "\n";
}

}  // namespace cdcsync::verify
