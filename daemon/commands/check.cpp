// cdcsync check --config FILE: validates the file and the live servers; prints each problem with its fix.
#include <iostream>
#include <memory>

#include "checkpoints/redis_store.h"
#include "daemon/commands/commands.h"
#include "daemon/config/config.h"
#include "daemon/core/exit_codes.h"
#include "daemon/core/runner.h"
#include "daemon/tools/source_check.h"
#include "sinks/postgres_sink.h"
#include "sinks/target_ddl.h"

namespace cdcsync::commands {

void add_check(CLI::App& app, Registry& registry) {
  auto* check = app.add_subcommand(
      "check", "Validate the config and the live servers (publication, replica identity, target tables, "
               "privileges, Redis); print each problem with its fix; exit 1 if any");
  auto file = std::make_shared<std::string>();
  check->add_option("--config", *file, "TOML config file")->required();
  registry.add(check, [file](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(*file);
    std::cout << "config " << *file << ": ok (" << cfg.tables.size() << " table(s))\n";
    const Mapping mapping = mapping_from_config(cfg);
    int problems = 0;
    auto report = [&](const std::string& where, const std::string& subject, const std::string& problem,
                      const std::string& fix) {
      ++problems;
      std::cout << "PROBLEM " << where << ": " << subject << ": " << problem << "\n    fix: " << fix << "\n";
    };

    SourceTypes types;
    try {
      PgConn source = pg_connect(source_conninfo(cfg), "the source");
      for (const auto& p : check_source(source.get(), mapping, cfg.source.publication, cfg.source.slot,
                                        cfg.source.create_slot)) {
        report("source", p.subject, p.problem, p.fix);
      }
      for (const auto& t : mapping.tables()) {
        try {
          types[t.source] = read_source_types(source.get(), t.source);
        } catch (const std::exception&) {
          // reported above as a missing table
        }
      }
      std::cout << "source: checked\n";
    } catch (const std::exception& e) {
      report("source", "connection", e.what(), "check source.conninfo and the password file");
    }

    try {
      PgConn target = pg_connect(target_conninfo(cfg), "the target");
      const QualifiedName progress{cfg.target.progress_table.schema, cfg.target.progress_table.name};
      for (const auto& p : check_target(target.get(), mapping, progress, types.empty() ? nullptr : &types)) {
        report("target", p.table, p.problem, p.fix);
      }
      PgResult toast{PQexec(target.get(), kToastCompressionSettingsQuery)};
      if (toast && PQresultStatus(toast.get()) == PGRES_TUPLES_OK && PQntuples(toast.get()) == 1) {
        const auto choice = choose_toast_compression(
            cfg.target.toast_compression, PQgetvalue(toast.get(), 0, 0),
            PQgetvalue(toast.get(), 0, 1), std::string_view(PQgetvalue(toast.get(), 0, 2)) == "t");
        if (choice.lz4_missing) {
          report("target", "target.toast_compression", "\"lz4\", but the order server was built without lz4",
                 "set it to \"auto\" (lz4 where the server has it) or \"pglz\"");
        }
        std::cout << "target: large values compressed with " << choice.method
                  << " (target.toast_compression = \"" << config::name_of(cfg.target.toast_compression)
                  << "\")\n";
      }
      PgResult durability{PQexec(target.get(),
                                 "SELECT pg_catalog.current_setting('synchronous_commit'), "
                                 "pg_catalog.current_setting('fsync')")};
      if (durability && PQresultStatus(durability.get()) == PGRES_TUPLES_OK &&
          PQntuples(durability.get()) == 1) {
        const std::string setting = PQgetvalue(durability.get(), 0, 0);
        const std::string session = session_synchronous_commit(setting);
        std::cout << "target: commits wait for the WAL flush (synchronous_commit = " << session;
        if (session != setting) std::cout << "; the role or database has " << setting;
        std::cout << ")\n";
        if (std::string_view(PQgetvalue(durability.get(), 0, 1)) == "off") {
          std::cout << "target: note: fsync = off on the order server: a crash of its host can lose what "
                       "cdcsync confirmed\n";
        }
      }
      // How each table's rows will be copied (the set-based apply; sinks/copy_binary.h).
      for (const auto& t : mapping.tables()) {
        std::cout << "target: " << t.target.str() << ": rows copied ";
        if (cfg.target.copy_format == CopyFormat::Text) {
          std::cout << "as text (target.copy_format = \"text\")\n";
          continue;
        }
        const std::string table = t.target.quoted();
        const char* params[] = {table.c_str()};
        PgResult columns{
            PQexecParams(target.get(), kTargetColumnTypesQuery, 1, nullptr, params, nullptr, nullptr, 0)};
        if (!columns || PQresultStatus(columns.get()) != PGRES_TUPLES_OK) {
          std::cout << "as text (the table cannot be read)\n";
          continue;
        }
        const CopyPlan plan = plan_copy(t, read_target_column_types(columns.get()));
        if (plan.binary())
          std::cout << "in COPY's binary format\n";
        else
          std::cout << "as text (" << plan.text_because << ")\n";
      }
      std::cout << "target: checked\n";
    } catch (const std::exception& e) {
      report("target", "connection", e.what(), "check target.conninfo and the password file");
    }

    try {
      RedisStoreOptions o;
      o.connection.url = RedisUrl::parse(cfg.checkpoint.redis);
      if (cfg.checkpoint.password_file.configured())
        o.connection.url.password = config::read_secret(cfg.checkpoint.password_file);
      o.pipeline = cfg.pipeline;
      RedisCheckpointStore store{o};
      const auto ckpt = store.load();
      const auto holder = store.lease_holder();
      std::cout << "checkpoint: " << (ckpt ? ckpt->lsn.str() : std::string("(none yet)"))
                << ", lease: " << holder.value_or("(free)") << "\n";
    } catch (const std::exception& e) {
      report("checkpoint", "redis", e.what(), "check checkpoint.redis and checkpoint.password_file");
    }

    std::cout << (problems == 0 ? "all checks passed\n" : std::to_string(problems) + " problem(s)\n");
    return problems == 0 ? exit_code::kOk : exit_code::kError;
  });
}

void add_target_ddl(CLI::App& app, Registry& registry) {
  auto* ddl = app.add_subcommand("target-ddl",
                                 "Print the idempotent DDL the order DB needs for the mapping (types read from the "
                                 "source): cdcsync target-ddl --config F | psql ...");
  auto file = std::make_shared<std::string>();
  ddl->add_option("--config", *file, "TOML config file")->required();
  registry.add(ddl, [file](const std::atomic<bool>&) {
    const config::Config cfg = config::load_config(*file);
    const Mapping mapping = mapping_from_config(cfg);
    PgConn source = pg_connect(source_conninfo(cfg), "the source");
    SourceTypes types;
    for (const auto& t : mapping.tables()) types[t.source] = read_source_types(source.get(), t.source);
    std::cout << target_ddl(mapping, types,
                            QualifiedName{cfg.target.progress_table.schema, cfg.target.progress_table.name});
    return exit_code::kOk;
  });
}

}  // namespace cdcsync::commands
