// Shared set-up for the order-DB sink's integration tests: a fresh order database per test with the demo
// schema and least-privilege roles, and the mapping of the demo customers table.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sinks/postgres_sink.h"
#include "tests/harness/servers.h"
#include "tests/unit/sinks/change_builder.h"

namespace cdcsync::test {

inline TableMapping customer_mapping(DeletePolicy deletes = DeletePolicy::Soft,
                                     TruncatePolicy truncates = TruncatePolicy::Apply) {
  TableMapping t;
  t.source = {"public", "customers"};
  t.target = {"ref", "customer"};
  t.key = {"id"};
  t.columns = {{"id", "customer_id", Transform::copy()},
               {"full_name", "display_name", Transform::copy()},
               {"status", "status", Transform::copy()},
               {"tier", "tier", Transform::copy()}};
  t.deletes = deletes;
  t.truncates = truncates;
  return t;
}

inline RelationPtr customers_relation() {
  return relation("public", "customers", {"id", "full_name", "status", "tier", "email"});
}

inline Batch batch_of(std::vector<Transaction> txns) {
  return Batch{std::move(txns)};
}

class SinkDatabase {
 public:
  // A fresh database named `name` with deploy/sql/order_schema.sql and order_roles.sql, plus `extra_sql`
  // run as admin before the roles are granted.
  explicit SinkDatabase(const std::string& name, const std::vector<std::string>& extra_sql = {})
      : name_(name) {
    const auto& servers = TestServers::get();
    admin_ = servers.fresh_database(Server::Order, name, {"deploy/sql/order_schema.sql"});
    for (const auto& sql : extra_sql) exec_sql(admin_, sql);
    std::ifstream in(repo_root() + "/deploy/sql/order_roles.sql");
    exec_sql(admin_, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()));
  }
  std::optional<std::string> value(const std::string& sql) const { return query_value(admin_, sql); }
  const std::string& admin() const { return admin_; }
  std::string target() const { return TestServers::get().target_conninfo(name_); }

 private:
  std::string name_;
  std::string admin_;
};

}  // namespace cdcsync::test
