// cdcsync resync --config FILE --table T: re-copies one table from a source snapshot while the daemon keeps
// streaming, through the bulk loader (snapshot.parallel sessions, a progress bar on a terminal). Why no row
// is lost or resurrected: daemon/tools/verify.h (snapshot point, `<` guard) and daemon/core/bulk_load.h
// (staged parts under an EXCLUSIVE lock, absent keys checked against the source now).
#include <chrono>
#include <iostream>
#include <memory>

#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/ops/load_progress.h"
#include "daemon/tools/verify.h"

namespace cdcsync::commands {

namespace {

// One table re-copied at a new snapshot through the bulk loader; prints what it did.
int resync(const config::Config& cfg, const TableMapping& table) {
  const auto started = std::chrono::steady_clock::now();
  LoadProgressDisplay display{LoadProgressDisplay::style_for_stderr(cfg.log.format)};
  const auto r = verify::recopy_table(cfg, table, std::nullopt,
                                      [&display](const LoadProgressView& v) { display.show(v); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "resync " << table.target.str() << " <- " << table.source.str() << " at " << r.point.str()
            << ": " << r.source_rows << " source row(s), " << r.upserted << " written, " << r.removed
            << " removed, " << r.skipped_gone << " skipped (deleted on the source since), " << secs << " s\n";
  return exit_code::kOk;
}

}  // namespace

void add_resync(CLI::App& app, Registry& registry) {
  auto* cmd = app.add_subcommand(
      "resync",
      "Re-copy one mapped table from a source snapshot into the order DB while the daemon keeps streaming: "
      "rows are written with the snapshot's LSN under the LSN guard (changes streamed after the snapshot "
      "win), "
      "rows absent from the snapshot are deleted or tombstoned under the same guard; snapshot.parallel "
      "sessions, one target transaction per part");
  struct Options {
    std::string config;
    std::string table;
  };
  auto o = std::make_shared<Options>();
  cmd->add_option("--config", o->config, "TOML config file")->required();
  cmd->add_option("--table", o->table, "The mapped table (source or target name, schema.table)")->required();
  registry.add(cmd, [o](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(o->config);
    const Mapping mapping = mapping_from_config(cfg);
    const TableMapping* table = nullptr;
    for (const auto& t : mapping.tables()) {
      if (o->table == t.source.str() || o->table == t.target.str()) table = &t;
    }
    if (table == nullptr) {
      std::cerr << "cdcsync: resync: --table " << o->table << ": not a mapped source or target table of "
                << o->config << "\n";
      return exit_code::kUsage;
    }
    return against_servers(cfg, "resync", [&] { return resync(cfg, *table); });
  });
}

}  // namespace cdcsync::commands
