// A reload's plan: the keys the new file changes, split into those applied live and those kept until a
// restart, by comparing every key's effective value (render.cpp's effective_values).
#include "daemon/config/reload.h"

#include <map>
#include <set>

namespace cdcsync::config {

bool applies_live(std::string_view key) {
  return key.starts_with("log.") || key.starts_with("batch.") || key.starts_with("tables.");
}

bool ReloadPlan::changes_pipeline() const {
  for (const auto& k : live) {
    if (!k.starts_with("log.")) return true;
  }
  return false;
}

ReloadPlan plan_reload(const Config& running, const Config& file) {
  ReloadPlan plan;
  plan.next = running;
  plan.next.log = file.log;
  plan.next.batch = file.batch;
  plan.next.tables = file.tables;

  const auto before_list = effective_values(running);
  const auto after_list = effective_values(file);
  const std::map<std::string, std::string> before(before_list.begin(), before_list.end());
  const std::map<std::string, std::string> after(after_list.begin(), after_list.end());
  std::set<std::string> keys;
  for (const auto& [k, v] : before_list) keys.insert(k);
  for (const auto& [k, v] : after_list) keys.insert(k);
  for (const auto& key : keys) {
    const auto b = before.find(key);
    const auto a = after.find(key);
    if (b != before.end() && a != after.end() && b->second == a->second) continue;
    (applies_live(key) ? plan.live : plan.restart).push_back(key);
    if (!key.starts_with("tables.")) continue;
    const std::string table = key.substr(7);
    if (b == before.end()) plan.added.push_back(table);
    if (a == after.end()) plan.removed.push_back(table);
  }
  return plan;
}

}  // namespace cdcsync::config
