// The bulk loader's rows: how a table's rows travel from the source's COPY TO to the target's COPY FROM.
//
// Binary (the default): both COPYs use the binary format. A column whose type is the same on both sides
// (the same built-in type under any domains, two enums, text/varchar/char) is passed through as the bytes
// the source sent, never decoded. A transformed column, or one whose types differ, is read as its type's
// output text (the text pgoutput sends for it while streaming), transformed, and encoded by the target
// column's binary encoder (sinks/copy_binary.h). Each row gets its version (the snapshot's LSN) and, for
// soft deletes, its tombstone (false) appended. A table with a column neither way can carry, a row filter
// (verify --repair's keys) or target.copy_format = "text" goes as text on both sides instead: lines passed
// through with the same fields appended, parsed only to transform or filter them.
//
// Every rewriter is pure: a CopyData message of the source in, the target's bytes appended to a buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "decoders/change.h"
#include "decoders/lsn.h"
#include "sinks/copy_binary.h"
#include "sinks/mapping.h"
#include "sinks/policy.h"
#include "sinks/postgres_sink.h"

namespace cdcsync {

// Whether the target column's receive function reads a value in the source column's binary form as the
// same value: the same built-in base type (arrays: of the same built-in element type), two enums (their
// labels), or two of text, varchar and char.
bool binary_compatible(const ColumnType& source, const ColumnType& target);

enum class ColumnWay : std::uint8_t {
  Verbatim,  // the source's binary field, as it came
  Encode,  // the value's output text (transformed first when the mapping says so), then the target's encoder
};

struct ColumnRoute {
  ColumnWay way = ColumnWay::Verbatim;
  BinaryEncoder encoder;                 // Encode
  const Transform* transform = nullptr;  // nullptr: copied as is
};

struct RowFormat {
  bool binary = true;
  std::string text_because;          // why not binary (empty when binary)
  std::vector<ColumnRoute> columns;  // mapping order
  std::vector<std::string> select;   // the source's SELECT list: the columns, then the carried keys
  std::size_t carried = 0;           // source key columns as text after the columns (the resync's stage)
  bool tombstone = false;            // deletes = "soft": a tombstone (false) after the version
  bool parse_text = false;           // text: fields are parsed (transforms, a row filter)

  std::size_t source_fields() const { return columns.size() + carried; }
  std::size_t target_fields() const { return source_fields() + 1 + (tombstone ? 1 : 0); }
};

// The way of each column of `table`, from both sides' column types (kTargetColumnTypesQuery on each server).
// `carry_source_keys`: the key columns' source text follows the columns; `filter_rows`: rows will be
// filtered by key (text only).
RowFormat plan_rows(const TableMapping& table, const TargetColumnTypes& source,
                    const TargetColumnTypes& target, CopyFormat format, bool carry_source_keys,
                    bool filter_rows);

// A value the target column's binary encoder does not take: the part is copied again as text.
struct ValueRefused {
  std::size_t column;
};

// A CopyData message that is not what COPY sends.
class CopyDataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Keeps a row or not, from its key as the target will hold it (the transformed key values, key order).
using RowFilter = std::function<bool(const std::vector<std::optional<std::string>>& key)>;

class RowRewriter {
 public:
  // `version`: the LSN every row gets (the snapshot's consistent point).
  RowRewriter(const TableMapping& table, const RowFormat& format, Lsn version, RowFilter keep = {});

  // The target stream's header (binary) or nothing.
  void begin(std::string& out);
  // One CopyData message of the source's COPY TO: its rows, rewritten, appended to `out`. Returns the rows
  // it held. Throws ValueRefused, CopyDataError.
  std::size_t add(std::string_view message, std::string& out);
  // The target stream's trailer (binary) or nothing.
  void end(std::string& out);

  std::uint64_t rows_kept() const { return kept_; }

 private:
  std::size_t add_binary(std::string_view message, std::string& out);
  std::size_t add_text(std::string_view message, std::string& out);
  void encode(std::size_t column, std::optional<std::string_view> text, std::string& out);

  const TableMapping& table_;
  const RowFormat& format_;
  RowFilter keep_;
  std::vector<std::size_t> key_;
  std::string suffix_;  // the appended fields of every row, in the target's format
  bool header_seen_ = false;
  bool trailer_seen_ = false;
  std::uint64_t kept_ = 0;
  Tuple tuple_;
  std::string scratch_;
  std::string transformed_;
  std::vector<std::optional<std::string>> key_values_;
};

}  // namespace cdcsync
