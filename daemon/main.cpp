// cdcsync: keeps the order DB's reference tables equal to the mapped projection of the customer DB.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"cdcsync: change-data-capture from PostgreSQL into PostgreSQL, with Debezium-compatible events"};
  app.set_version_flag("--version", std::string("cdcsync ") + CDCSYNC_VERSION);
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) {
    std::fputs(app.help().c_str(), stdout);
  }
  return 0;
}
