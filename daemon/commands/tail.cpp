// cdcsync tail: a publication's changes as Debezium JSON, one event per line on stdout (daemon/tools/tail.h).
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/commands/commands.h"
#include "daemon/core/exit_codes.h"
#include "daemon/tools/tail.h"
#include "decoders/lsn.h"
#include "decoders/pg.h"
#include "decoders/spool.h"

namespace cdcsync::commands {

void add_tail(CLI::App& app, Registry& registry) {
  auto o = std::make_shared<tail::Options>();
  auto from_lsn = std::make_shared<std::string>();
  auto* sub = app.add_subcommand(
      "tail",
      "Print a publication's changes as Debezium JSON, one event per line on stdout (like pg_recvlogical).\n"
      "Confirms a transaction to the slot only after all of its lines are written and flushed.");
  sub->add_option("--source", o->source,
                  "libpq conninfo of the source database (no password: use --password-file or ~/.pgpass)")
      ->required();
  sub->add_option("--publication", o->publications,
                  "publication name (repeat, or comma-separated, for several)")
      ->required()
      ->delimiter(',');
  sub->add_option("--slot", o->slot, "logical replication slot (pgoutput); [a-z0-9_]{1,63}")->required();
  auto* create = sub->add_flag("--create-slot", o->create_slot, "create the slot if missing (no snapshot)");
  sub->add_flag("--temporary", o->temporary, "with --create-slot: a temporary slot, dropped when tail exits")
      ->needs(create);
  sub->add_option("--from-lsn", *from_lsn, "start streaming at this LSN (H/L, e.g. 16/B374D848)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (Lsn::parse(value)) return {};
            return "malformed LSN \"" + value + "\" (expected H/L in hex, e.g. 16/B374D848)";
          },
          "LSN"));
  sub->add_option("--limit", o->limit, "stop after N change events (BEGIN/END and tombstones don't count)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--timeout", o->timeout_s, "stop after this many seconds without a change event")
      ->check(CLI::PositiveNumber);
  sub->add_option("--format", o->format, "output format; only debezium-json so far")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value == "debezium-json") return {};
            return "unsupported format \"" + value + "\" (only debezium-json is supported)";
          },
          "FORMAT"));
  sub->add_flag("--schemas", o->schemas,
                "add the schema part ({\"schema\":..,\"payload\":..}, schemas.enable=true)");
  sub->add_flag("--keys", o->keys, "print {\"key\":..,\"value\":..} per line (tombstones included)");
  sub->add_flag("--transaction-metadata", o->transaction_metadata, "also print BEGIN and END events");
  sub->add_flag("!--no-tombstones", o->tombstones, "with --keys: no tombstone after a delete");
  sub->add_option("--topic-prefix", o->topic_prefix, "Debezium topic.prefix (source.name)")
      ->capture_default_str();
  auto skipped = std::make_shared<std::string>("t");
  sub->add_option("--skipped-operations", *skipped,
                  "Debezium skipped.operations: events left out, comma-separated of c, u, d, t, or none")
      ->capture_default_str()
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            if (value == "none") return {};
            std::string_view rest = value;
            while (!rest.empty()) {
              const std::string_view op = rest.substr(0, rest.find(','));
              if (op != "c" && op != "u" && op != "d" && op != "t") {
                return "unknown operation \"" + std::string(op) + "\" (use c, u, d, t or none)";
              }
              rest.remove_prefix(std::min(rest.size(), op.size() + 1));
            }
            return {};
          },
          "OPS"));
  sub->add_option("--password-file", o->password_file,
                  "read the source password from this file (mode 0600/0640)");
  auto* proto = sub->add_option("--proto-version", o->proto_version, "pgoutput protocol version (1-4)")
                    ->check(CLI::Range(1, 4))
                    ->capture_default_str();
  sub->add_flag("--streaming", o->streaming,
                "stream large in-progress transactions (protocol >= 2; printed at commit)");
  sub->add_option("--status-interval", o->status_interval_s, "seconds between standby status updates")
      ->check(CLI::Range(0.1, 10.0))
      ->capture_default_str();
  registry.mark_quiet(sub);
  registry.add(sub, [o, proto, from_lsn, skipped](const std::atomic<bool>& stop) {
    if (!from_lsn->empty()) o->from = Lsn::parse(*from_lsn);  // validated above
    o->skipped_operations.clear();
    if (*skipped != "none") {
      for (char c : *skipped) {
        if (c != ',') o->skipped_operations.push_back(c);
      }
    }
    if (o->streaming && proto->count() == 0) o->proto_version = 2;
    if (o->streaming && o->proto_version < 2) {
      std::cerr << "cdcsync tail: --streaming needs --proto-version 2 or later\n";
      return exit_code::kUsage;
    }
    return against_server(o->source, "tail", [&] {
      try {
        tail::run(*o, stop);
        return exit_code::kOk;
      } catch (const tail::TailError& e) {
        std::cerr << "cdcsync tail: " << e.what() << "\n";
        return exit_code::kError;
      } catch (const SpoolError& e) {
        std::cerr << "cdcsync tail: " << e.what() << "\n";
        return exit_code::kError;
      }
    });
  });
}

}  // namespace cdcsync::commands
