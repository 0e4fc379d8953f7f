// The bulk loader's rows: which way each column travels, and the rewriting of COPY data from the source's
// format to the target's.
#include "daemon/core/bulk_rows.h"

#include <cstring>

#include "daemon/core/snapshot.h"
#include "decoders/pg_types.h"
#include "sinks/copy_text.h"

namespace cdcsync {
namespace {

// Types below this OID are built in: the same type on every server.
constexpr std::uint32_t kFirstNormalObjectId = 16384;

bool text_like(std::uint32_t oid) {
  return oid == pgtype::kText || oid == pgtype::kVarchar || oid == pgtype::kBpchar;
}

// A value of this type travels in COPY's binary format as the bytes of its output text.
bool binary_is_text(const ColumnType& t) {
  return t.element == 0 && (text_like(t.base) || t.base == pgtype::kJson || t.base_kind == 'e');
}

std::string column(const std::string& name) {
  return "t." + quote_ident(name);
}

// The value's output text (what pgoutput sends), NULL kept NULL. concat() calls the type's output function;
// a cast to text may not (bool gives "true", char(n) loses its padding, inet shows its mask).
std::string output_text(const std::string& name, const ColumnType& t) {
  const std::string c = column(name);
  if (binary_is_text(t)) return c;
  return "CASE WHEN " + c + " IS NOT DISTINCT FROM NULL THEN NULL ELSE pg_catalog.concat(" + c + ") END";
}

std::uint16_t read_u16(std::string_view m, std::size_t pos) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(m[pos]) << 8) |
                                    static_cast<unsigned char>(m[pos + 1]));
}

std::int32_t read_i32(std::string_view m, std::size_t pos) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(m[pos + i]);
  return static_cast<std::int32_t>(v);
}

constexpr char kSignature[] = "PGCOPY\n\377\r\n\0";
constexpr std::size_t kHeaderSize = 19;  // signature, flags, extension length

}  // namespace

bool binary_compatible(const ColumnType& s, const ColumnType& t) {
  if (s.element != 0 || t.element != 0) {
    // An array's binary form names its element type: the same built-in one on both sides.
    return s.element != 0 && s.element == t.element && s.element < kFirstNormalObjectId && s.base == t.base;
  }
  if (s.base == t.base && s.base < kFirstNormalObjectId) return true;
  if (s.base_kind == 'e' && t.base_kind == 'e') return true;
  return text_like(s.base) && text_like(t.base);
}

RowFormat plan_rows(const TableMapping& table, const TargetColumnTypes& source,
                    const TargetColumnTypes& target, CopyFormat format, bool carry_source_keys,
                    bool filter_rows) {
  RowFormat f;
  f.tombstone = table.deletes == DeletePolicy::Soft;
  const CopyPlan encoders = plan_copy(table, target);  // the target's side: every encoder, or why not
  f.binary = format == CopyFormat::Binary;
  if (!f.binary) f.text_because = "target.copy_format = \"text\"";
  if (f.binary && filter_rows) {
    f.binary = false;
    f.text_because = "rows are filtered by key";
  }
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    const ColumnMapping& c = table.columns[i];
    ColumnRoute r;
    if (c.transform.kind() != TransformKind::Copy) r.transform = &c.transform;
    const auto s = source.find(c.source);
    const auto t = target.find(c.target);
    if (s == source.end())
      throw std::invalid_argument("source table " + table.source.str() + " has no column " + c.source);
    if (t == target.end())
      throw std::invalid_argument("target table " + table.target.str() + " has no column " + c.target);
    r.encoder = encoders.columns[i];
    if (r.transform == nullptr && binary_compatible(s->second, t->second)) {
      r.way = ColumnWay::Verbatim;
    } else {
      r.way = ColumnWay::Encode;
      if (f.binary && !r.encoder.supported()) {
        f.binary = false;
        f.text_because = "column \"" + c.target + "\" is " + t->second.shown +
                         ", which no encoder writes from " + s->second.shown;
      }
    }
    f.columns.push_back(r);
  }
  // The version and the tombstone are written by the loader itself: pg_lsn and boolean columns.
  if (f.binary && !encoders.binary() && encoders.text_because.starts_with("LSN column")) {
    f.binary = false;
    f.text_because = encoders.text_because;
  }
  if (f.binary && !encoders.binary() && encoders.text_because.starts_with("tombstone column")) {
    f.binary = false;
    f.text_because = encoders.text_because;
  }
  for (std::size_t i = 0; i < table.columns.size(); ++i) {
    const ColumnMapping& c = table.columns[i];
    const bool verbatim = f.columns[i].way == ColumnWay::Verbatim;
    if (f.binary) {
      f.select.push_back(verbatim ? column(c.source) : output_text(c.source, source.at(c.source)));
    } else if (filter_rows && f.columns[i].transform == nullptr) {
      // As verify reads them (its canonical keys compare `::text` on both sides): the filter's keys match.
      f.select.push_back(column(c.source) + "::text");
    } else {
      f.select.push_back(column(c.source));
    }
    if (f.columns[i].transform != nullptr && !f.binary) f.parse_text = true;
  }
  if (!f.binary && filter_rows) f.parse_text = true;
  if (carry_source_keys) {
    for (std::size_t k : table.key_indexes()) f.select.push_back(column(table.columns[k].source) + "::text");
    f.carried = table.key_indexes().size();
  }
  return f;
}

RowRewriter::RowRewriter(const TableMapping& table, const RowFormat& format, Lsn version, RowFilter keep)
    : table_(table), format_(format), keep_(std::move(keep)), key_(table.key_indexes()) {
  if (format_.binary) {
    append_copy_binary_lsn(suffix_, version.value());
    if (format_.tombstone) append_copy_binary_bool(suffix_, false);
  } else {
    suffix_ = "\t" + version.str();
    if (format_.tombstone) suffix_ += "\tf";
    suffix_ += "\n";
  }
  key_values_.resize(key_.size());
}

void RowRewriter::begin(std::string& out) {
  if (format_.binary) append_copy_binary_header(out);
}

void RowRewriter::end(std::string& out) {
  if (format_.binary) append_copy_binary_trailer(out);
}

std::size_t RowRewriter::add(std::string_view message, std::string& out) {
  return format_.binary ? add_binary(message, out) : add_text(message, out);
}

void RowRewriter::encode(std::size_t c, std::optional<std::string_view> text, std::string& out) {
  const ColumnRoute& r = format_.columns[c];
  if (r.transform != nullptr) {
    transformed_.clear();
    text =
        r.transform->apply(text, transformed_) ? std::optional<std::string_view>(transformed_) : std::nullopt;
  }
  if (!text) {
    append_copy_binary_null(out);
  } else if (!append_copy_binary(out, r.encoder, *text)) {
    throw ValueRefused{c};
  }
}

// Rows arrive whole, one per message; the header comes with the first row, the trailer alone. Runs of
// passed-through fields are copied at once, with the field count rewritten in front of them.
std::size_t RowRewriter::add_binary(std::string_view m, std::string& out) {
  std::size_t pos = 0;
  const auto need = [&](std::size_t n) {
    if (m.size() - pos < n) throw CopyDataError("a binary COPY row cut short at byte " + std::to_string(pos));
  };
  if (!header_seen_) {
    need(kHeaderSize);
    if (std::memcmp(m.data(), kSignature, 11) != 0) throw CopyDataError("no binary COPY signature");
    const auto ext = static_cast<std::uint32_t>(read_i32(m, 15));
    pos = kHeaderSize;
    need(ext);
    pos += ext;
    header_seen_ = true;
  }
  const std::size_t fields = format_.source_fields();
  std::size_t rows = 0;
  while (pos < m.size()) {
    if (trailer_seen_) throw CopyDataError("data after the binary COPY trailer");
    need(2);
    const auto count = static_cast<std::int16_t>(read_u16(m, pos));
    pos += 2;
    if (count == -1) {
      trailer_seen_ = true;
      continue;
    }
    if (static_cast<std::size_t>(count) != fields) {
      throw CopyDataError("a binary COPY row of " + std::to_string(count) + " fields, " +
                          std::to_string(fields) + " expected");
    }
    append_be16(out, static_cast<std::uint16_t>(format_.target_fields()));
    std::size_t run = pos;
    for (std::size_t c = 0; c < fields; ++c) {
      const std::size_t start = pos;
      need(4);
      const std::int32_t len = read_i32(m, pos);
      pos += 4;
      if (len > 0) {
        need(static_cast<std::size_t>(len));
        pos += static_cast<std::size_t>(len);
      }
      if (c < format_.columns.size() && format_.columns[c].way == ColumnWay::Encode) {
        out.append(m.data() + run, start - run);
        encode(c,
               len < 0 ? std::nullopt
                       : std::optional<std::string_view>(m.substr(start + 4, static_cast<std::size_t>(len))),
               out);
        run = pos;
      }
    }
    out.append(m.data() + run, pos - run);
    out += suffix_;
    ++rows;
  }
  kept_ += rows;
  return rows;
}

std::size_t RowRewriter::add_text(std::string_view line, std::string& out) {
  if (line.empty() || line.back() != '\n') throw CopyDataError("a COPY text row without its line end");
  line.remove_suffix(1);
  if (!format_.parse_text) {
    out.append(line);
    out += suffix_;
    ++kept_;
    return 1;
  }
  if (!parse_copy_text_row(line, format_.source_fields(), tuple_, scratch_)) {
    throw CopyDataError("a malformed COPY text row from " + table_.source.str());
  }
  const std::size_t start = out.size();
  for (std::size_t c = 0; c < format_.source_fields(); ++c) {
    if (c > 0) out.push_back('\t');
    std::optional<std::string_view> v;
    if (!tuple_.is_null(c)) v = tuple_.value(c);
    if (c < format_.columns.size() && format_.columns[c].transform != nullptr) {
      transformed_.clear();
      v = format_.columns[c].transform->apply(v, transformed_) ? std::optional<std::string_view>(transformed_)
                                                               : std::nullopt;
    }
    for (std::size_t k = 0; k < key_.size() && c < format_.columns.size(); ++k) {
      if (key_[k] == c) key_values_[k] = v ? std::optional<std::string>(*v) : std::nullopt;
    }
    if (v) {
      append_copy_text(out, *v);
    } else {
      out += "\\N";
    }
  }
  if (keep_ && !keep_(key_values_)) {
    out.resize(start);
    return 1;
  }
  out += suffix_;
  ++kept_;
  return 1;
}

}  // namespace cdcsync
