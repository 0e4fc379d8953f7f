// cdcsync dlq list|replay|drop --config FILE: the source transactions the order DB refused, parked in the
// Redis stream cdcsync:{<pipeline>}:dlq by a daemon running with dead_letter.enabled
// (daemon/core/dead_letter_stream.h).
//
// replay re-applies an entry through the order-DB sink (the same LSN-guarded upserts, without touching the
// progress row, so it runs next to a live daemon; a row the daemon has written since is newer and wins) and
// removes it only after the target committed it. drop removes entries without applying them.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/dead_letter_stream.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/dlq_replay.h"

namespace cdcsync::commands {
namespace {

struct DlqOptions {
  std::string config;
  std::string id;
  bool all = false;
  bool yes = false;
  bool json = false;
  bool show_rows = false;
};

std::string commit_time_text(std::int64_t pg_us) {
  return iso_utc(pg_micros_to_unix_micros(pg_us));
}

void print_json(const std::string& key, const std::vector<DeadLetter>& entries, bool show_rows) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("stream");
  w.String(key.c_str());
  w.Key("entries");
  w.StartArray();
  for (const DeadLetter& d : entries) {
    w.StartObject();
    w.Key("id");
    w.String(d.id.c_str());
    w.Key("lsn");
    w.String(d.lsn.str().c_str());
    w.Key("end_lsn");
    w.String(d.end_lsn.str().c_str());
    w.Key("xid");
    w.Uint(d.xid.value);
    w.Key("commit_time");
    w.String(commit_time_text(d.commit_time_us).c_str());
    w.Key("table");
    w.String(d.table.c_str());
    w.Key("sqlstate");
    w.String(d.sqlstate.c_str());
    w.Key("error");
    w.String(d.error.c_str());
    w.Key("changes");
    w.Uint64(d.changes);
    w.Key("dead_lettered_unix_ms");
    w.Int64(d.unix_ms);
    if (show_rows) {
      w.Key("rows");
      w.StartArray();
      std::string_view rows = d.rows;
      while (!rows.empty()) {
        const auto nl = rows.find('\n');
        const std::string_view line = rows.substr(0, nl);
        rows = nl == std::string_view::npos ? std::string_view{} : rows.substr(nl + 1);
        if (!line.empty()) w.RawValue(line.data(), line.size(), rapidjson::kObjectType);
      }
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::cout << buf.GetString() << "\n";
}

int list(const config::Config& cfg, const DlqOptions& o) {
  RedisDeadLetterStore store{redis_options(cfg), cfg.pipeline};
  const auto entries = store.list(o.show_rows);
  if (o.json) {
    print_json(store.key(), entries, o.show_rows);
    return exit_code::kOk;
  }
  std::cout << entries.size() << " dead-lettered transaction" << (entries.size() == 1 ? "" : "s") << " in "
            << store.key()
            << (cfg.dead_letter.enabled ? "" : " (dead_letter.enabled is false in this config)") << "\n";
  for (const DeadLetter& d : entries) {
    std::cout << "  " << d.id << "  lsn " << d.lsn.str() << "  xid " << d.xid.value << "  committed "
              << commit_time_text(d.commit_time_us) << "  table " << (d.table.empty() ? "(none)" : d.table)
              << "  sqlstate " << (d.sqlstate.empty() ? "(none)" : d.sqlstate) << "  changes " << d.changes
              << "\n"
              << "      error: " << d.error << "\n";
    if (o.show_rows) {
      std::string_view rows = d.rows;
      while (!rows.empty()) {
        const auto nl = rows.find('\n');
        std::cout << "      " << rows.substr(0, nl) << "\n";
        rows = nl == std::string_view::npos ? std::string_view{} : rows.substr(nl + 1);
      }
    }
  }
  return exit_code::kOk;
}

// The entries --id (an entry id or a commit LSN) or --all choose; exit 2 through `usage` when neither or
// both are given, or the id names no entry.
std::vector<DeadLetter> chosen(RedisDeadLetterStore& store, const DlqOptions& o, bool with_rows,
                               const char* verb, int& status) {
  status = exit_code::kOk;
  if (o.all == !o.id.empty()) {
    std::cerr << "cdcsync: dlq " << verb << ": give either --id ID or --all\n";
    status = exit_code::kUsage;
    return {};
  }
  auto entries = store.list(with_rows);
  if (o.all) return entries;
  const auto lsn = Lsn::parse(o.id);
  std::erase_if(entries, [&](const DeadLetter& d) { return d.id != o.id && !(lsn && d.lsn == *lsn); });
  if (entries.empty()) {
    std::cerr << "cdcsync: dlq " << verb << ": no entry " << o.id << " in " << store.key()
              << " (see cdcsync dlq list)\n";
    status = exit_code::kError;
  }
  return entries;
}

bool refuse_without_yes(const DlqOptions& o, const char* verb, const char* what) {
  if (o.yes) return false;
  std::cerr << "cdcsync: dlq " << verb << " " << what << "; nothing done: add --yes to do it\n";
  return true;
}

int replay(const config::Config& cfg, const DlqOptions& o) {
  if (refuse_without_yes(o, "replay", "re-applies dead-lettered transactions to the order database")) {
    return exit_code::kUsage;
  }
  RedisDeadLetterStore store{redis_options(cfg), cfg.pipeline};
  int status = exit_code::kOk;
  const auto entries = chosen(store, o, /*with_rows=*/true, "replay", status);
  if (status != exit_code::kOk || entries.empty()) {
    if (status == exit_code::kOk) std::cout << "nothing to replay: " << store.key() << " is empty\n";
    return status;
  }
  dlq::DeadLetterReplayer replayer{cfg};
  std::size_t replayed = 0, refused = 0;
  for (const DeadLetter& d : entries) {
    try {
      replayer.apply(d);
    } catch (const PermanentError& e) {
      ++refused;
      std::cout << "still refused: " << d.id << " (lsn " << d.lsn.str() << ", xid " << d.xid.value << ") on "
                << (e.table().empty() ? std::string("(no table)") : e.table()) << ", SQLSTATE "
                << (e.sqlstate().empty() ? std::string("(none)") : e.sqlstate()) << ": " << e.what()
                << "; the entry stays\n";
      continue;
    } catch (const ArchiveFormatError& e) {
      ++refused;
      std::cout << "cannot replay " << d.id << ": " << e.what() << "; the entry stays\n";
      continue;
    }
    if (!store.remove(d.id)) {
      std::cout << "replayed " << d.id << ", but it was already gone from " << store.key() << "\n";
    } else {
      std::cout << "replayed " << d.id << " (lsn " << d.lsn.str() << ", xid " << d.xid.value << ", "
                << d.changes << " changes) and removed it from " << store.key() << "\n";
    }
    ++replayed;
  }
  std::cout << replayed << " replayed, " << refused << " still refused\n";
  return refused == 0 ? exit_code::kOk : exit_code::kError;
}

int drop(const config::Config& cfg, const DlqOptions& o) {
  if (refuse_without_yes(o, "drop", "deletes dead-lettered transactions without applying them")) {
    return exit_code::kUsage;
  }
  RedisDeadLetterStore store{redis_options(cfg), cfg.pipeline};
  int status = exit_code::kOk;
  const auto entries = chosen(store, o, /*with_rows=*/false, "drop", status);
  if (status != exit_code::kOk) return status;
  std::size_t dropped = 0;
  for (const DeadLetter& d : entries) {
    if (store.remove(d.id)) {
      ++dropped;
      std::cout << "dropped " << d.id << " (lsn " << d.lsn.str() << ", xid " << d.xid.value << ", "
                << d.changes << " changes, never applied)\n";
    }
  }
  std::cout << dropped << " dropped from " << store.key() << "\n";
  return exit_code::kOk;
}

}  // namespace

void add_dlq(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand(
      "dlq",
      "Source transactions the order DB refused, parked in the Redis stream cdcsync:{pipeline}:dlq when "
      "dead_letter.enabled = true: list them, replay them after fixing the target, or drop them");
  cmd->require_subcommand(1);
  auto o = std::make_shared<DlqOptions>();

  auto* list_cmd = cmd->add_subcommand(
      "list",
      "Print each entry: id, commit LSN, xid, commit time, table, SQLSTATE, error and number of row changes "
      "(row values only with --show-rows)");
  list_cmd->add_option("--config", o->config, "TOML config file")->required();
  list_cmd->add_flag("--json", o->json, "Print one JSON object instead of text");
  list_cmd->add_flag(
      "--show-rows", o->show_rows,
      "Also print the rows (target form: mapped, transformed columns; they may hold personal data)");
  registry.add(list_cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "dlq list", [&] { return list(cfg, *o); });
  });

  auto* replay_cmd = cmd->add_subcommand(
      "replay",
      "Re-apply entries to the order DB through the LSN-guarded upserts (after fixing what refused them); "
      "an entry is removed once the target committed it, one still refused stays and its error is printed "
      "(exit 1). Works next to a running daemon. Needs --yes");
  replay_cmd->add_option("--config", o->config, "TOML config file")->required();
  replay_cmd->add_option("--id", o->id, "The entry id (from dlq list) or its commit LSN, e.g. 0/16B3748");
  replay_cmd->add_flag("--all", o->all, "Every entry, in commit LSN order");
  replay_cmd->add_flag("--yes", o->yes, "Do it (without: refuse, exit 2)");
  registry.add(replay_cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "dlq replay", [&] { return replay(cfg, *o); });
  });

  auto* drop_cmd = cmd->add_subcommand(
      "drop", "Delete entries without applying them (their changes never reach the order DB). Needs --yes");
  drop_cmd->add_option("--config", o->config, "TOML config file")->required();
  drop_cmd->add_option("--id", o->id, "The entry id (from dlq list) or its commit LSN");
  drop_cmd->add_flag("--all", o->all, "Every entry");
  drop_cmd->add_flag("--yes", o->yes, "Do it (without: refuse, exit 2)");
  registry.add(drop_cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    return against_servers(cfg, "dlq drop", [&] { return drop(cfg, *o); });
  });
}

}  // namespace cdcsync::commands
