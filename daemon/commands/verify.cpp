// cdcsync verify --config FILE [--table T] [--repair] [--json]: compares the order DB's reference tables
// with the mapped (and transformed) projection of the customer DB at a known source position; see
// daemon/tools/verify.h for the buckets, the hashes and the snapshot point.
#include <chrono>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "checkpoints/redis_client.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/verify.h"

namespace cdcsync::commands {
namespace {

using namespace std::chrono_literals;
using verify::RowDiff;

struct VerifyOptions {
  std::string config;
  std::string table;
  bool repair = false;
  bool json = false;
  long long wait_ms = 60000;
  long long rows_per_bucket = 1000;
  long long max_keys = 1000;
};

// The target did not reach the snapshot's position in time: exit 2.
struct TargetBehind : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TableResult {
  const TableMapping* table = nullptr;
  std::uint64_t source_rows = 0;
  std::uint64_t target_rows = 0;
  std::uint32_t buckets = 0;
  std::set<std::uint32_t> differing;  // buckets whose sums differed in the first pass
  RowDiff diff;
};

struct Report {
  Lsn snapshot_lsn;
  Lsn target_lsn;
  std::vector<TableResult> tables;
  std::size_t mismatched() const {
    std::size_t n = 0;
    for (const auto& t : tables) n += t.diff.size();
    return n;
  }
};

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

class Verifier {
 public:
  Verifier(const config::Config& cfg, const VerifyOptions& o)
      : cfg_(cfg), o_(o), mapping_(mapping_from_config(cfg)) {
    for (const auto& t : mapping_.tables()) {
      if (o_.table.empty() || o_.table == t.source.str() || o_.table == t.target.str()) tables_.push_back(&t);
    }
    if (tables_.empty()) {
      throw std::invalid_argument("--table " + o_.table + ": not a mapped source or target table of " +
                                  o_.config);
    }
  }

  // First pass over all buckets, then a second pass over the differing buckets at a later point: only keys
  // mismatched in both are reported (the first can include changes streamed after the snapshot).
  Report run() {
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

  std::vector<verify::RecopyResult> repair(const Report& report) {
    std::vector<verify::RecopyResult> out;
    PgConn target = pg_connect(target_conninfo(cfg_), "the target");
    verify::set_canonical_session(target.get());
    for (const auto& t : report.tables) {
      if (t.diff.size() == 0) {
        out.emplace_back();
        continue;
      }
      verify::SourceSnapshot snap{source_conninfo(cfg_), "repair"};
      out.push_back(verify::recopy_table(*t.table, snap, source_conninfo(cfg_), target.get(), t.diff.keys()));
    }
    return out;
  }

  const config::Config& cfg() const { return cfg_; }

 private:
  Report pass(const Report* earlier) {
    Report r;
    verify::SourceSnapshot snap{source_conninfo(cfg_), "verify"};
    r.snapshot_lsn = snap.point();
    PgConn target = pg_connect(target_conninfo(cfg_), "the target");
    verify::set_canonical_session(target.get());
    const QualifiedName progress{cfg_.target.progress_table.schema, cfg_.target.progress_table.name};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.wait_ms);
    for (;;) {
      const auto at = verify::target_position(target.get(), progress, cfg_.pipeline);
      if (at && *at >= r.snapshot_lsn) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        throw TargetBehind("target is behind; is the daemon running? (the source snapshot is at " +
                           r.snapshot_lsn.str() + ", the target's progress for pipeline " + cfg_.pipeline +
                           " at " + (at ? at->str() : std::string("(no progress row)")) + " after " +
                           std::to_string(o_.wait_ms) + " ms)");
      }
      std::this_thread::sleep_for(100ms);
    }
    pg_exec(target.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the target snapshot");
    r.target_lsn = verify::target_position(target.get(), progress, cfg_.pipeline).value_or(Lsn{});
    for (std::size_t i = 0; i < tables_.size(); ++i) {
      const TableMapping& t = *tables_[i];
      verify::TableReader reader{t};
      TableResult res;
      res.table = &t;
      std::set<std::uint32_t> check;
      if (earlier) {
        res.buckets = earlier->tables[i].buckets;
        check = earlier->tables[i].differing;
        if (earlier->tables[i].diff.size() == 0) check.clear();
      } else {
        res.buckets = reader.bucket_count(snap.conn(), static_cast<std::uint64_t>(o_.rows_per_bucket));
        const auto s = reader.source_sums(snap.conn(), res.buckets);
        const auto d = reader.target_sums(target.get(), res.buckets);
        for (const auto& [b, v] : s) res.source_rows += v.rows;
        for (const auto& [b, v] : d) res.target_rows += v.rows;
        for (auto b : verify::differing_buckets(s, d)) check.insert(b);
        res.differing = check;
      }
      if (!check.empty()) {
        const auto src = reader.source_rows(snap.conn(), res.buckets, check);
        const auto dst = reader.target_rows(target.get(), res.buckets, check);
        res.diff = verify::diff_rows(t, src, dst);
      }
      r.tables.push_back(std::move(res));
    }
    pg_exec(target.get(), "COMMIT", "ending the target snapshot");
    snap.finish();
    return r;
  }

  const config::Config& cfg_;
  const VerifyOptions& o_;
  Mapping mapping_;
  std::vector<const TableMapping*> tables_;
};

void print_keys(std::ostream& out, std::string_view kind, const std::vector<verify::KeyRef>& keys,
                long long max) {
  long long shown = 0;
  for (const auto& k : keys) {
    if (shown++ >= max) {
      out << "    ... and " << keys.size() - static_cast<std::size_t>(max) << " more " << kind << "\n";
      break;
    }
    out << "    " << kind << " " << k.shown << "\n";
  }
}

void print_text(std::ostream& out, const Report& r, double seconds) {
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
}

void print_details(std::ostream& out, const Report& r, long long max) {
  for (const auto& t : r.tables) {
    if (t.diff.size() == 0) continue;
    out << "  " << t.table->target.str() << ":\n";
    print_keys(out, "missing  ", t.diff.missing, max);
    print_keys(out, "extra    ", t.diff.extra, max);
    print_keys(out, "different", t.diff.different, max);
  }
}

std::string json_keys(const std::vector<verify::KeyRef>& keys, long long max) {
  std::string out = "[";
  long long n = 0;
  for (const auto& k : keys) {
    if (n >= max) break;
    out += (n++ ? ",\"" : "\"") + json_escape(k.shown) + "\"";
  }
  return out + "]";
}

std::string json_report(const Report& r, double seconds, const std::string& pipeline, long long max,
                        const std::optional<Report>& before_repair) {
  std::ostringstream o;
  auto body = [&](const Report& rep) {
    o << "{\"snapshot_lsn\":\"" << rep.snapshot_lsn.str() << "\",\"target_lsn\":\"" << rep.target_lsn.str()
      << "\",\"equal\":" << (rep.mismatched() == 0 ? "true" : "false")
      << ",\"mismatched_rows\":" << rep.mismatched() << ",\"tables\":[";
    for (std::size_t i = 0; i < rep.tables.size(); ++i) {
      const auto& t = rep.tables[i];
      o << (i ? "," : "") << "{\"source\":\"" << json_escape(t.table->source.str()) << "\",\"target\":\""
        << json_escape(t.table->target.str()) << "\",\"source_rows\":" << t.source_rows
        << ",\"target_rows\":" << t.target_rows << ",\"buckets\":" << t.buckets
        << ",\"buckets_differing\":" << t.differing.size() << ",\"missing_count\":" << t.diff.missing.size()
        << ",\"extra_count\":" << t.diff.extra.size() << ",\"different_count\":" << t.diff.different.size()
        << ",\"missing\":" << json_keys(t.diff.missing, max) << ",\"extra\":" << json_keys(t.diff.extra, max)
        << ",\"different\":" << json_keys(t.diff.different, max) << "}";
    }
    o << "]";
  };
  o << "{\"pipeline\":\"" << json_escape(pipeline) << "\",\"seconds\":" << seconds << ",";
  if (before_repair) {
    o << "\"before_repair\":";
    body(*before_repair);
    o << "},";
  }
  o << "\"result\":";
  body(r);
  o << "}}\n";
  return o.str();
}

// The result as hash cdcsync:{<pipeline>}:verify, for the daemon's probe: mismatched_rows, unix_ms,
// snapshot_lsn and status of this run (cdcsync_verify_mismatched_rows), and "table:<target>" for each table
// it compared (cdcsync_verify_table_mismatched_rows). A run over every table replaces the hash; a --table
// run updates its table and keeps the others' last counts. A failure here is a warning: the comparison
// stands.
void record_result(const config::Config& cfg, const Report& report, bool every_table) {
  try {
    RedisClient redis{redis_options(cfg)};
    const std::string key = "cdcsync:{" + cfg.pipeline + "}:verify";
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::size_t mismatched = report.mismatched();
    std::vector<std::string> fields{
        "mismatched_rows", std::to_string(mismatched), "unix_ms", std::to_string(now),
        "snapshot_lsn",    report.snapshot_lsn.str(),  "status",  mismatched == 0 ? "equal" : "diverged"};
    for (const auto& t : report.tables) {
      fields.push_back("table:" + t.table->target.str());
      fields.push_back(std::to_string(t.diff.size()));
    }
    std::vector<std::string_view> hset{"HSET", key};
    hset.insert(hset.end(), fields.begin(), fields.end());
    redis.command("MULTI", {"MULTI"});
    if (every_table) redis.command("DEL " + key, {"DEL", key});
    redis.command("HSET " + key, hset);
    const RedisValue done = redis.command("EXEC", {"EXEC"});
    if (done.type != RedisValue::Type::Array) throw std::runtime_error("EXEC on " + key + " was aborted");
  } catch (const std::exception& e) {
    std::cerr << "cdcsync: warning: verify result not recorded in Redis: " << e.what() << "\n";
  }
}

}  // namespace

void add_verify(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand("verify",
                                 "Compare the order DB's reference tables with the mapped, transformed "
                                 "projection of the customer DB at a "
                                 "known source position (hash buckets; rows travel only where buckets "
                                 "differ). Prints the keys (never other "
                                 "values) of missing, extra and different rows. Exit 0 equal, 1 diverged, 2 "
                                 "target behind (is the daemon "
                                 "running?). Records the result in Redis hash cdcsync:{pipeline}:verify");
  auto o = std::make_shared<VerifyOptions>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_option("--table", o->table, "Only this mapped table (source or target name, schema.table)");
  cmd->add_flag(
      "--repair", o->repair,
      "Re-copy the mismatched rows from a source snapshot through the LSN guard (newer streamed rows "
      "win), in one target transaction per table, then verify again");
  cmd->add_flag("--json", o->json, "Print a JSON report on stdout instead of the text summary");
  cmd->add_option("--wait-timeout-ms", o->wait_ms,
                  "Longest wait for the target's progress to reach the source snapshot (default 60000)")
      ->check(CLI::Range(0LL, 3600000LL));
  cmd->add_option("--rows-per-bucket", o->rows_per_bucket,
                  "About this many rows per hash bucket (default 1000)")
      ->check(CLI::Range(1LL, 100000000LL));
  cmd->add_option("--max-keys", o->max_keys, "Most keys printed per kind and table (default 1000)")
      ->check(CLI::Range(0LL, 100000000LL));
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    const auto started = std::chrono::steady_clock::now();
    Verifier v{cfg, *o};
    try {
      Report report = v.run();
      std::optional<Report> before;
      std::vector<verify::RecopyResult> repaired;
      if (o->repair && report.mismatched() > 0) {
        if (!o->json) {
          print_text(std::cout, report, 0);
          print_details(std::cout, report, o->max_keys);
        }
        repaired = v.repair(report);
        if (!o->json) {
          for (std::size_t i = 0; i < repaired.size(); ++i) {
            if (report.tables[i].diff.size() == 0) continue;
            std::cout << "repair " << report.tables[i].table->target.str() << ": " << repaired[i].upserted
                      << " row(s) written, " << repaired[i].removed << " removed, "
                      << repaired[i].skipped_gone << " skipped (deleted on the source since)\n";
          }
          std::cout << "verify: checking again after the repair\n";
        }
        before = std::move(report);
        report = v.run();
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      if (o->json) {
        std::cout << json_report(report, secs, cfg.pipeline, o->max_keys, before);
      } else {
        print_text(std::cout, report, secs);
        print_details(std::cout, report, o->max_keys);
      }
      record_result(cfg, report, o->table.empty());
      return report.mismatched() == 0 ? exit_code::kOk : exit_code::kError;
    } catch (const TargetBehind& e) {
      std::cerr << "cdcsync: verify: " << e.what() << "\n";
      return exit_code::kUsage;
    }
  });
}

}  // namespace cdcsync::commands
