// Mapping and RelationBinder: source -> target names, key, transforms and policies; fail-closed binding.
#include "sinks/mapping.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "decoders/pg.h"
#include "sinks/sink.h"

namespace cdcsync {
namespace {

bool is_utf8_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

}  // namespace

Transform Transform::hmac_sha256(std::string key) {
  if (key.empty()) throw std::invalid_argument("hmac_sha256 key is empty");
  Transform t;
  t.kind_ = TransformKind::HmacSha256;
  t.key_or_value_ = std::move(key);
  return t;
}

Transform Transform::hmac_sha256_from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read hmac key file " + path);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.empty()) throw std::invalid_argument("hmac key file " + path + " is empty");
  return hmac_sha256(std::move(key));
}

Transform Transform::mask(std::size_t keep_last) {
  Transform t;
  t.kind_ = TransformKind::Mask;
  t.keep_last_ = keep_last;
  return t;
}

Transform Transform::constant(std::string value) {
  Transform t;
  t.kind_ = TransformKind::Constant;
  t.key_or_value_ = std::move(value);
  return t;
}

Transform Transform::null() {
  Transform t;
  t.kind_ = TransformKind::Null;
  return t;
}

bool Transform::apply(std::optional<std::string_view> in, std::string& out) const {
  switch (kind_) {
    case TransformKind::Copy:
      if (!in) return false;
      out.append(*in);
      return true;
    case TransformKind::Null:
      return false;
    case TransformKind::Constant:
      out.append(key_or_value_);
      return true;
    case TransformKind::Mask: {
      if (!in) return false;
      std::size_t chars = 0;
      for (unsigned char c : *in) chars += is_utf8_continuation(c) ? 0 : 1;
      const std::size_t hide = chars > keep_last_ ? chars - keep_last_ : 0;
      std::size_t seen = 0;
      for (std::size_t i = 0; i < in->size(); ++i) {
        const auto c = static_cast<unsigned char>((*in)[i]);
        if (!is_utf8_continuation(c)) ++seen;
        if (seen <= hide) {
          if (!is_utf8_continuation(c)) out.push_back('*');
        } else {
          out.push_back(static_cast<char>(c));
        }
      }
      return true;
    }
    case TransformKind::HmacSha256: {
      if (!in) return false;
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      if (HMAC(EVP_sha256(), key_or_value_.data(), static_cast<int>(key_or_value_.size()),
               reinterpret_cast<const unsigned char*>(in->data()), in->size(), digest, &len) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed");
      }
      static constexpr char kHex[] = "0123456789abcdef";
      for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xF]);
      }
      return true;
    }
  }
  return false;
}

DeletePolicy parse_delete_policy(std::string_view text) {
  if (text == "hard") return DeletePolicy::Hard;
  if (text == "soft") return DeletePolicy::Soft;
  if (text == "ignore") return DeletePolicy::Ignore;
  throw std::invalid_argument("deletes must be hard, soft or ignore, not '" + std::string(text) + "'");
}

TruncatePolicy parse_truncate_policy(std::string_view text) {
  if (text == "apply") return TruncatePolicy::Apply;
  if (text == "ignore") return TruncatePolicy::Ignore;
  if (text == "fail") return TruncatePolicy::Fail;
  throw std::invalid_argument("truncate must be apply, ignore or fail, not '" + std::string(text) + "'");
}

std::string_view to_string(DeletePolicy p) {
  switch (p) {
    case DeletePolicy::Hard:
      return "hard";
    case DeletePolicy::Soft:
      return "soft";
    case DeletePolicy::Ignore:
      return "ignore";
  }
  return "?";
}

std::string_view to_string(TruncatePolicy p) {
  switch (p) {
    case TruncatePolicy::Apply:
      return "apply";
    case TruncatePolicy::Ignore:
      return "ignore";
    case TruncatePolicy::Fail:
      return "fail";
  }
  return "?";
}

void TableMapping::validate() const {
  const std::string where = "table " + source.str() + ": ";
  if (columns.empty()) throw std::invalid_argument(where + "no columns mapped");
  if (key.empty()) throw std::invalid_argument(where + "no key columns");
  if (lsn_column.empty()) throw std::invalid_argument(where + "empty LSN guard column name");
  if (deletes == DeletePolicy::Soft && tombstone_column.empty()) {
    throw std::invalid_argument(where + "deletes = soft needs a tombstone column");
  }
  std::set<std::string> sources;
  std::set<std::string> targets{lsn_column};
  if (deletes == DeletePolicy::Soft) {
    if (!targets.insert(tombstone_column).second) {
      throw std::invalid_argument(where + "tombstone column equals the LSN guard column");
    }
  }
  for (const auto& c : columns) {
    if (c.source.empty() || c.target.empty()) throw std::invalid_argument(where + "empty column name");
    if (!sources.insert(c.source).second) {
      throw std::invalid_argument(where + "source column " + c.source + " mapped twice");
    }
    if (!targets.insert(c.target).second) {
      throw std::invalid_argument(where + "target column " + c.target +
                                  " used twice (or collides with the guard/tombstone column)");
    }
  }
  std::set<std::string> keys;
  for (const auto& k : key) {
    if (!keys.insert(k).second) throw std::invalid_argument(where + "key column " + k + " listed twice");
    const auto i = column_of_source(k);
    if (!i) throw std::invalid_argument(where + "key column " + k + " is not mapped");
    const auto kind = columns[*i].transform.kind();
    if (kind != TransformKind::Copy && kind != TransformKind::HmacSha256) {
      throw std::invalid_argument(where + "key column " + k +
                                  " must be copied or hmac_sha256-transformed (a key must stay unique)");
    }
  }
}

std::optional<std::size_t> TableMapping::column_of_source(std::string_view source_column) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].source == source_column) return i;
  }
  return std::nullopt;
}

std::vector<std::size_t> TableMapping::key_indexes() const {
  std::vector<std::size_t> out;
  for (const auto& k : key) {
    if (auto i = column_of_source(k)) out.push_back(*i);
  }
  return out;
}

Mapping::Mapping(std::vector<TableMapping> tables) : tables_(std::move(tables)) {
  std::set<QualifiedName> targets;
  for (std::size_t i = 0; i < tables_.size(); ++i) {
    tables_[i].validate();
    if (!by_source_.emplace(tables_[i].source, i).second) {
      throw std::invalid_argument("source table " + tables_[i].source.str() + " mapped twice");
    }
    if (!targets.insert(tables_[i].target).second) {
      throw std::invalid_argument("target table " + tables_[i].target.str() + " used by two mappings");
    }
  }
}

const TableMapping* Mapping::find(const QualifiedName& source) const {
  const auto i = index_of(source);
  return i ? &tables_[*i] : nullptr;
}

std::optional<std::size_t> Mapping::index_of(const QualifiedName& source) const {
  const auto it = by_source_.find(source);
  if (it == by_source_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::size_t> Mapping::index_of(RelationId oid) const {
  const auto it = source_oids_.find(oid);
  if (it == source_oids_.end()) return std::nullopt;
  return it->second;
}

const BoundTable* RelationBinder::bind(const RelationPtr& relation, Lsn lsn) {
  if (!relation) return nullptr;
  if (const auto it = bound_.find(relation.get()); it != bound_.end()) {
    return it->second->mapping ? it->second.get() : nullptr;
  }
  auto bound = std::make_unique<BoundTable>();
  bound->relation = relation;
  const QualifiedName name{relation->schema, relation->name};
  auto index = mapping_->index_of(name);
  if (!index) {
    // Not under a configured name; the same table (its OID) renamed is still the configured one.
    index = mapping_->index_of(relation->id);
    if (index && renamed_seen_.insert(name.str()).second) {
      renamed_new_.emplace_back(mapping_->tables()[*index].source.str(), name.str());
    }
  }
  if (index) {
    const TableMapping& m = mapping_->tables()[*index];
    bound->table = *index;
    bound->mapping = &m;
    for (const auto& c : m.columns) {
      const auto at = relation->column_index(c.source);
      if (!at) {
        throw PermanentError(name.str(), lsn, "",
                             "mapped source column " + c.source + " of " + name.str() +
                                 " is missing from the source relation (dropped or renamed?)");
      }
      bound->source_index.push_back(*at);
    }
    bound->key = m.key_indexes();
    for (const auto& col : relation->columns) {
      if (m.column_of_source(col.name)) continue;
      if (drift_seen_.emplace(name.str(), col.name).second) {
        drift_new_.push_back({name.str(), col.name});
      }
    }
  } else {
    if (unmapped_tables_.insert(name.str()).second) unmapped_new_.push_back(name.str());
  }
  const BoundTable* out = bound->mapping ? bound.get() : nullptr;
  bound_.emplace(relation.get(), std::move(bound));
  return out;
}

std::map<std::string, std::uint64_t> RelationBinder::drift_counts() const {
  std::map<std::string, std::uint64_t> out;
  for (const auto& [table, column] : drift_seen_) ++out[table];
  return out;
}

std::vector<ColumnDrift> RelationBinder::take_new_drift() {
  return std::exchange(drift_new_, {});
}

}  // namespace cdcsync
