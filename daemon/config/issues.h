// Internal to daemon/config: the problems found in one config file, each at the position its key was
// written (or its closest written parent), collected so that loading reports all of them at once.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/config/values.h"

namespace cdcsync::config {

struct Position {
  int line = 1;  // 1-based
  int column = 1;
};

class Issues {
 public:
  explicit Issues(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }
  bool empty() const { return issues_.empty(); }

  void add(Position pos, std::string key, std::string message) {
    issues_.push_back(ConfigIssue{file_, pos.line, pos.column, std::move(key), std::move(message)});
  }
  // At the position the key (or its closest written parent) was written.
  void add_at(const std::string& key, std::string message) { add(where(key), key, std::move(message)); }

  void remember(const std::string& key, Position pos) { where_[key] = pos; }

  // Where a (display) key was written; else its closest written parent; else the start of the file.
  Position where(std::string_view key) const {
    std::string k(key);
    while (true) {
      if (auto it = where_.find(k); it != where_.end()) return it->second;
      if (k.empty()) return {};
      k = section_of(k);
    }
  }

  // Throws ConfigError with every issue in file order, if there is any.
  void throw_if_any() {
    if (issues_.empty()) return;
    std::stable_sort(issues_.begin(), issues_.end(), [](const ConfigIssue& a, const ConfigIssue& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    throw ConfigError(std::move(issues_));
  }

 private:
  std::string file_;
  std::vector<ConfigIssue> issues_;
  std::map<std::string, Position> where_;
};

}  // namespace cdcsync::config
