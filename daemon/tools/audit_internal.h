// Internal to daemon/tools: what the audit's files share (finding, naming and joining helpers).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/tools/audit.h"

namespace cdcsync::audit::detail {

// The privileges has_table_privilege and has_column_privilege are asked about, in report order.
inline const std::vector<std::string> kTablePrivileges = {"SELECT",   "INSERT",     "UPDATE", "DELETE",
                                                          "TRUNCATE", "REFERENCES", "TRIGGER"};
inline const std::vector<std::string> kColumnPrivileges = {"SELECT", "INSERT", "UPDATE", "REFERENCES"};

// An identifier as SQL needs it: bare when lowercase-plain, quoted otherwise.
std::string ident(const std::string& name);
// table.column, the column as SQL needs it.
std::string column_of(const QualifiedName& t, const std::string& column);
std::string join(const std::vector<std::string>& items, std::string_view sep = ", ");
// The names as SQL needs them, joined with ", ".
std::string join_idents(const std::vector<std::string>& names);
void add(Report& r, Severity s, std::string area, std::string object, std::string problem, std::string fix);

}  // namespace cdcsync::audit::detail
