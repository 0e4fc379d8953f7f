// The event archive's row format (target-form changes), entry ids and hash chain.
#include "sinks/archive_codec.h"

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

#include "sinks/sink.h"

namespace cdcsync {
namespace {

constexpr Oid kTextOid = 25;

void write_values(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::vector<ArchivedValue>& values) {
  w.StartArray();
  for (const auto& v : values) {
    switch (v.state) {
      case ValueState::Value:
        w.String(v.text.data(), static_cast<rapidjson::SizeType>(v.text.size()));
        break;
      case ValueState::Null:
        w.Null();
        break;
      case ValueState::Absent:
        w.Bool(false);
        break;
    }
  }
  w.EndArray();
}

std::optional<ArchivedOp> parse_op(std::string_view s) {
  if (s.size() != 1) return std::nullopt;
  switch (s[0]) {
    case 'c':
    case 'u':
    case 'd':
    case 'r':
    case 't':
      return static_cast<ArchivedOp>(s[0]);
    default:
      return std::nullopt;
  }
}

}  // namespace

void encode_archived_change(const ArchivedChange& c, std::string& out) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key("s");
  w.String(c.table.schema);
  w.Key("t");
  w.String(c.table.name);
  w.Key("op");
  const char op = static_cast<char>(c.op);
  w.String(&op, 1);
  w.Key("cols");
  w.StartArray();
  for (const auto& col : c.columns) w.String(col);
  w.EndArray();
  w.Key("key");
  w.StartArray();
  for (std::size_t k : c.key) w.Uint64(k);
  w.EndArray();
  if (!c.before.empty()) {
    w.Key("before");
    write_values(w, c.before);
  }
  if (!c.after.empty()) {
    w.Key("after");
    write_values(w, c.after);
  }
  w.EndObject();
  out.append(buf.GetString(), buf.GetSize());
}

std::string encode_archived_change(const ArchivedChange& change) {
  std::string out;
  encode_archived_change(change, out);
  return out;
}

ArchivedChange decode_archived_change(std::string_view json, std::string_view entry_id) {
  const auto fail = [&](const std::string& what) { return ArchiveFormatError(std::string(entry_id), what); };
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError())
    throw fail("row is not valid JSON (offset " + std::to_string(doc.GetErrorOffset()) + ")");
  if (!doc.IsObject()) throw fail("row is not a JSON object");
  const auto member = [&](const char* name) -> const rapidjson::Value* {
    const auto it = doc.FindMember(name);
    return it == doc.MemberEnd() ? nullptr : &it->value;
  };
  const auto* v = member("v");
  if (v == nullptr || !v->IsInt() || v->GetInt() != 1)
    throw fail("row has no supported format version (v: 1)");

  ArchivedChange c;
  const auto string_member = [&](const char* name) {
    const auto* m = member(name);
    if (m == nullptr || !m->IsString() || m->GetStringLength() == 0)
      throw fail(std::string("row field ") + name + " is missing or not a non-empty string");
    return std::string(m->GetString(), m->GetStringLength());
  };
  c.table.schema = string_member("s");
  c.table.name = string_member("t");
  const auto op = parse_op(string_member("op"));
  if (!op) throw fail("row field op is not one of c, u, d, r, t");
  c.op = *op;

  const auto* cols = member("cols");
  if (cols == nullptr || !cols->IsArray()) throw fail("row field cols is missing or not an array");
  std::set<std::string> seen;
  for (const auto& col : cols->GetArray()) {
    if (!col.IsString() || col.GetStringLength() == 0)
      throw fail("row field cols holds a non-string or empty name");
    std::string name(col.GetString(), col.GetStringLength());
    if (!seen.insert(name).second) throw fail("row field cols names column " + name + " twice");
    c.columns.push_back(std::move(name));
  }
  const auto* key = member("key");
  if (key == nullptr || !key->IsArray()) throw fail("row field key is missing or not an array");
  for (const auto& k : key->GetArray()) {
    if (!k.IsUint64() || k.GetUint64() >= c.columns.size())
      throw fail("row field key holds an index outside cols");
    c.key.push_back(static_cast<std::size_t>(k.GetUint64()));
  }
  if (c.op != ArchivedOp::Truncate && (c.columns.empty() || c.key.empty()))
    throw fail("row of a row change needs cols and key");

  const auto values = [&](const char* name, std::vector<ArchivedValue>& out) {
    const auto* m = member(name);
    if (m == nullptr) return false;
    if (!m->IsArray() || m->Size() != c.columns.size())
      throw fail(std::string("row field ") + name + " is not an array of one value per column");
    for (const auto& x : m->GetArray()) {
      if (x.IsString()) {
        out.push_back(ArchivedValue::value(std::string(x.GetString(), x.GetStringLength())));
      } else if (x.IsNull()) {
        out.push_back(ArchivedValue::null());
      } else if (x.IsFalse()) {
        out.push_back(ArchivedValue::absent());
      } else {
        throw fail(std::string("row field ") + name + " holds a value that is not a string, null or false");
      }
    }
    return true;
  };
  const bool has_before = values("before", c.before);
  const bool has_after = values("after", c.after);
  switch (c.op) {
    case ArchivedOp::Create:
    case ArchivedOp::Read:
    case ArchivedOp::Update:
      if (!has_after)
        throw fail("row of op " + std::string(1, static_cast<char>(c.op)) + " has no after values");
      break;
    case ArchivedOp::Delete:
      if (!has_before || has_after) throw fail("row of op d needs before values and no after values");
      break;
    case ArchivedOp::Truncate:
      if (has_before || has_after) throw fail("row of op t carries values");
      break;
  }
  const auto key_known = [&](const std::vector<ArchivedValue>& vals) {
    for (std::size_t k : c.key) {
      if (vals[k].state != ValueState::Value) return false;
    }
    return true;
  };
  if (has_after && !key_known(c.after)) throw fail("row has a key column without a value in after");
  if (c.op == ArchivedOp::Delete && !key_known(c.before))
    throw fail("row has a key column without a value in before");
  return c;
}

// ---- ArchiveProjector ----

struct ArchiveProjector::Target {
  RelationPtr source;  // keeps the source RelationDef alive while its address is a map key
  RelationPtr relation;
  std::vector<std::string> columns;
  std::vector<std::size_t> key;
};

ArchiveProjector::ArchiveProjector(const Mapping& mapping) : mapping_(&mapping), binder_(mapping) {}
ArchiveProjector::~ArchiveProjector() = default;

const ArchiveProjector::Target& ArchiveProjector::target_for(const BoundTable& bound) {
  auto& slot = targets_[bound.relation.get()];
  if (slot) return *slot;
  const TableMapping& m = *bound.mapping;
  auto t = std::make_unique<Target>();
  t->source = bound.relation;
  t->key = bound.key;
  auto rel = std::make_shared<RelationDef>();
  rel->id = bound.relation->id;
  rel->schema = m.target.schema;
  rel->name = m.target.name;
  rel->replica_identity = 'd';
  for (std::size_t c = 0; c < m.columns.size(); ++c) {
    const ColumnDef& src = bound.relation->columns[bound.source_index[c]];
    ColumnDef col;
    col.name = m.columns[c].target;
    const bool text = m.columns[c].transform.yields_text();
    col.type_oid = text ? kTextOid : src.type_oid;
    col.type_modifier = text ? -1 : src.type_modifier;
    col.part_of_key = std::find(bound.key.begin(), bound.key.end(), c) != bound.key.end();
    rel->columns.push_back(col);
    t->columns.push_back(m.columns[c].target);
  }
  t->relation = std::move(rel);
  slot = std::move(t);
  return *slot;
}

void ArchiveProjector::project_values(const BoundTable& bound, const Tuple& tuple, bool key_only, Lsn txn_lsn,
                                      std::vector<ArchivedValue>& out, Tuple& tuple_out) {
  const TableMapping& m = *bound.mapping;
  std::string scratch;
  for (std::size_t c = 0; c < m.columns.size(); ++c) {
    const std::size_t src = bound.source_index[c];
    const bool is_key = std::find(bound.key.begin(), bound.key.end(), c) != bound.key.end();
    if (src >= tuple.size()) {
      throw PermanentError(m.source.str(), txn_lsn, "",
                           "change on " + m.source.str() + " has fewer columns than its relation");
    }
    if ((key_only && !is_key) || tuple.kind(src) == DatumKind::UnchangedToast) {
      out.push_back(ArchivedValue::absent());
      tuple_out.add_unchanged_toast();
      continue;
    }
    if (tuple.kind(src) == DatumKind::Binary) {
      throw PermanentError(m.source.str(), txn_lsn, "",
                           "column " + m.columns[c].source + " of " + m.source.str() +
                               " arrived in binary format; the archive needs text");
    }
    scratch.clear();
    const std::optional<std::string_view> in =
        tuple.kind(src) == DatumKind::Text ? std::optional<std::string_view>(tuple.value(src)) : std::nullopt;
    if (m.columns[c].transform.apply(in, scratch)) {
      tuple_out.add_text(scratch);
      out.push_back(ArchivedValue::value(scratch));
    } else {
      tuple_out.add_null();
      out.push_back(ArchivedValue::null());
    }
  }
}

void ArchiveProjector::project(const Change& change, Lsn txn_lsn, bool snapshot,
                               std::vector<ProjectedChange>& out) {
  switch (change.op) {
    case ChangeOp::Message:
      return;
    case ChangeOp::Truncate:
      for (const RelationPtr& rel : change.truncated) {
        if (!rel) continue;
        const BoundTable* b = binder_.bind(rel, txn_lsn);
        if (b == nullptr) continue;
        const Target& t = target_for(*b);
        ProjectedChange& p = out.emplace_back();
        p.row.table = b->mapping->target;
        p.row.op = ArchivedOp::Truncate;
        p.row.columns = t.columns;
        p.row.key = t.key;
        p.target.op = ChangeOp::Truncate;
        p.target.lsn = change.lsn;
        p.target.truncated = {t.relation};
        p.target.truncate_cascade = change.truncate_cascade;
        p.target.truncate_restart_identity = change.truncate_restart_identity;
      }
      return;
    case ChangeOp::Insert:
    case ChangeOp::Update:
    case ChangeOp::Delete:
      break;
  }
  if (!change.relation) return;
  const BoundTable* b = binder_.bind(change.relation, txn_lsn);
  if (b == nullptr) return;
  const Target& t = target_for(*b);
  ProjectedChange& p = out.emplace_back();
  p.row.table = b->mapping->target;
  p.row.columns = t.columns;
  p.row.key = t.key;
  p.target.op = change.op;
  p.target.lsn = change.lsn;
  p.target.relation = t.relation;
  switch (change.op) {
    case ChangeOp::Insert:
      p.row.op = snapshot ? ArchivedOp::Read : ArchivedOp::Create;
      break;
    case ChangeOp::Update:
      p.row.op = ArchivedOp::Update;
      break;
    default:
      p.row.op = ArchivedOp::Delete;
      break;
  }
  if (change.before_kind != 0 && !change.before.empty()) {
    project_values(*b, change.before, change.before_kind == 'K', txn_lsn, p.row.before, p.target.before);
    p.target.before_kind = change.before_kind;
  } else if (change.op == ChangeOp::Delete) {
    out.pop_back();
    throw PermanentError(
        b->mapping->source.str(), txn_lsn, "",
        "delete on " + b->mapping->source.str() + " carries no old key (REPLICA IDENTITY NOTHING?)");
  }
  if (change.op != ChangeOp::Delete) {
    project_values(*b, change.after, false, txn_lsn, p.row.after, p.target.after);
  }
}

// ---- ArchiveReplayMapping ----

namespace {

Mapping identity_of(const Mapping& configured) {
  std::vector<TableMapping> tables;
  for (const TableMapping& m : configured.tables()) {
    TableMapping id;
    id.source = m.target;
    id.target = m.target;
    for (std::size_t k : m.key_indexes()) id.key.push_back(m.columns[k].target);
    for (const auto& c : m.columns) id.columns.push_back({c.target, c.target, Transform::copy()});
    id.deletes = m.deletes;
    id.truncates = m.truncates;
    id.lsn_column = m.lsn_column;
    id.tombstone_column = m.tombstone_column;
    tables.push_back(std::move(id));
  }
  return Mapping(std::move(tables));
}

}  // namespace

ArchiveReplayMapping::ArchiveReplayMapping(const Mapping& configured) : identity_(identity_of(configured)) {
  std::uint32_t next_id = 1;
  for (const TableMapping& m : identity_.tables()) {
    auto rel = std::make_shared<RelationDef>();
    rel->id = RelationId{next_id++};
    rel->schema = m.target.schema;
    rel->name = m.target.name;
    const auto key = m.key_indexes();
    for (std::size_t c = 0; c < m.columns.size(); ++c) {
      rel->columns.push_back(
          ColumnDef{m.columns[c].target, kTextOid, -1, std::find(key.begin(), key.end(), c) != key.end()});
    }
    relations_[m.target] = std::move(rel);
  }
}

std::optional<Change> ArchiveReplayMapping::to_change(const ArchivedChange& row,
                                                      std::string_view entry_id) const {
  const auto it = relations_.find(row.table);
  if (it == relations_.end()) return std::nullopt;
  const RelationPtr& rel = it->second;
  Change c;
  if (row.op == ArchivedOp::Truncate) {
    c.op = ChangeOp::Truncate;
    c.truncated = {rel};
    return c;
  }
  c.relation = rel;
  std::vector<std::optional<std::size_t>> from(rel->columns.size());
  for (std::size_t i = 0; i < rel->columns.size(); ++i) {
    for (std::size_t j = 0; j < row.columns.size(); ++j) {
      if (row.columns[j] == rel->columns[i].name) from[i] = j;
    }
    if (rel->columns[i].part_of_key && !from[i]) {
      throw ArchiveFormatError(std::string(entry_id), "row of " + row.table.str() + " lacks key column " +
                                                          rel->columns[i].name +
                                                          " of the configured mapping");
    }
  }
  const auto fill = [&](const std::vector<ArchivedValue>& values, Tuple& out) {
    for (std::size_t i = 0; i < rel->columns.size(); ++i) {
      if (!from[i]) {
        out.add_unchanged_toast();
        continue;
      }
      const ArchivedValue& v = values[*from[i]];
      switch (v.state) {
        case ValueState::Value:
          out.add_text(v.text);
          break;
        case ValueState::Null:
          out.add_null();
          break;
        case ValueState::Absent:
          out.add_unchanged_toast();
          break;
      }
    }
  };
  switch (row.op) {
    case ArchivedOp::Create:
    case ArchivedOp::Read:
      c.op = ChangeOp::Insert;
      break;
    case ArchivedOp::Update:
      c.op = ChangeOp::Update;
      break;
    default:
      c.op = ChangeOp::Delete;
      break;
  }
  if (!row.before.empty()) {
    fill(row.before, c.before);
    c.before_kind = 'K';
  }
  if (!row.after.empty()) fill(row.after, c.after);
  return c;
}

// ---- entries and the hash chain ----

std::string archive_entry_id(Lsn commit_lsn, std::uint64_t seq) {
  return std::to_string(commit_lsn.value()) + "-" + std::to_string(seq);
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_archive_entry_id(std::string_view id) {
  const auto dash = id.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == id.size()) return std::nullopt;
  std::pair<std::uint64_t, std::uint64_t> out;
  const auto parse = [](std::string_view s, std::uint64_t& v) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && end == s.data() + s.size();
  };
  if (!parse(id.substr(0, dash), out.first) || !parse(id.substr(dash + 1), out.second)) return std::nullopt;
  return out;
}

std::string archive_entry_hash(std::string_view prev, std::string_view id,
                               const std::vector<std::pair<std::string, std::string>>& fields) {
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx{EVP_MD_CTX_new()};
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 of an archive entry failed");
  }
  const auto feed = [&](std::string_view s) {
    if (EVP_DigestUpdate(ctx.get(), s.data(), s.size()) != 1)
      throw std::runtime_error("SHA-256 update failed");
  };
  feed("cdcsync-archive-v1\n");
  feed(prev);
  feed("\n");
  feed(id);
  feed("\n");
  for (const auto& [name, value] : fields) {
    feed(name);
    feed("\n");
    feed(std::to_string(value.size()));
    feed("\n");
    feed(value);
    feed("\n");
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &len) != 1)
    throw std::runtime_error("SHA-256 final failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace cdcsync
