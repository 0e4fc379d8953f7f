// Builds relations, tuples and changes by hand for sink tests.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "decoders/change.h"

namespace cdcsync::test {

inline RelationPtr relation(std::string schema, std::string name, std::initializer_list<std::string> columns,
                            std::uint32_t id = 16384) {
  auto r = std::make_shared<RelationDef>();
  r->id = RelationId{id};
  r->schema = std::move(schema);
  r->name = std::move(name);
  for (const auto& c : columns) r->columns.push_back(ColumnDef{c, 25, -1, false});
  return r;
}

// nullopt: NULL; the string "<toast>": unchanged TOAST.
inline Tuple tuple(std::initializer_list<std::optional<std::string>> values) {
  Tuple t;
  for (const auto& v : values) {
    if (!v)
      t.add_null();
    else if (*v == "<toast>")
      t.add_unchanged_toast();
    else
      t.add_text(*v);
  }
  return t;
}

inline Change insert(const RelationPtr& r, std::uint64_t lsn, Tuple after) {
  Change c;
  c.op = ChangeOp::Insert;
  c.lsn = Lsn{lsn};
  c.relation = r;
  c.after = std::move(after);
  return c;
}

inline Change update(const RelationPtr& r, std::uint64_t lsn, Tuple after, Tuple before = {},
                     char before_kind = 0) {
  Change c;
  c.op = ChangeOp::Update;
  c.lsn = Lsn{lsn};
  c.relation = r;
  c.after = std::move(after);
  c.before = std::move(before);
  c.before_kind = c.before.empty() ? 0 : before_kind ? before_kind : 'K';
  return c;
}

inline Change remove(const RelationPtr& r, std::uint64_t lsn, Tuple before, char before_kind = 'K') {
  Change c;
  c.op = ChangeOp::Delete;
  c.lsn = Lsn{lsn};
  c.relation = r;
  c.before = std::move(before);
  c.before_kind = before_kind;
  return c;
}

inline Change truncate(std::vector<RelationPtr> rels, std::uint64_t lsn) {
  Change c;
  c.op = ChangeOp::Truncate;
  c.lsn = Lsn{lsn};
  c.truncated = std::move(rels);
  return c;
}

inline Transaction txn(std::uint32_t xid, std::uint64_t end_lsn, std::vector<Change> changes) {
  Transaction t;
  t.info.xid = Xid{xid};
  t.info.final_lsn = Lsn{end_lsn - 8};
  t.info.end_lsn = Lsn{end_lsn};
  t.info.commit_time_us = 1'000'000;
  t.changes = std::move(changes);
  return t;
}

}  // namespace cdcsync::test
