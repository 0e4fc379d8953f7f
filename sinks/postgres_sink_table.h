// PostgresSink's private parts, shared by its files (postgres_sink*.cpp) and by nothing else: the state kept
// per mapped table (quoted names, the fold, statement text), the rows a flush staged, and the error helpers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sinks/postgres_sink.h"

namespace cdcsync {

inline constexpr const char* kSavepoint = "SAVEPOINT cdcsync_apply";
inline constexpr std::size_t kPipelineDepth =
    1000;  // statements between syncs: keeps both socket buffers small
inline constexpr std::size_t kCopyPiece = 1u << 20;  // COPY data handed to libpq at a time
// After a row inserted as new met an existing key, the table's next flushes upsert every row: the cause
// (a resync, a replay, tombstones of reused keys) tends to last, and each conflict costs a batch applied
// twice.
inline constexpr std::uint32_t kUpsertOnlyFlushes = 1000;

// A value the binary encoder of its column refused in the middle of a COPY: the COPY was ended with an
// error, and the call is applied again with the table copied as text.
struct BinaryRefused {
  std::size_t table;
  std::size_t column;
  Lsn lsn;  // the source transaction's commit LSN
};

inline std::string join(const std::vector<std::string>& parts, std::string_view sep,
                        std::string_view prefix = "") {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += prefix;
    out += parts[i];
  }
  return out;
}

struct PostgresSink::TableState {
  std::size_t index = 0;
  const TableMapping* mapping = nullptr;
  std::string target;             // quoted schema.table
  std::string stage;              // pg_temp."cdcsync_stage_N"
  std::vector<std::string> cols;  // quoted target columns, mapping order
  std::vector<std::size_t> key;   // indexes into cols
  std::string lsn_col;            // quoted
  std::string tomb_col;           // quoted; empty unless deletes = soft
  TableFold fold;
  bool stage_used = false;      // rows copied into the stage in the open transaction
  bool plain_used = false;      // rows inserted without ON CONFLICT in this apply call
  bool copy_into = false;       // COPY FROM can write the target (a table without row-level security)
  bool binary = false;          // rows are copied in COPY's binary format (set at connect)
  bool binary_refused = false;  // a value no encoder took: text until the process restarts (reconnects too)
  std::vector<BinaryEncoder> col_types;  // the encoder of each of cols (unsupported: none)
  std::uint64_t without_toast = 0;  // rows inserted with an unchanged-TOAST column NULL, open transaction
  std::uint64_t without_toast_at_savepoint = 0;
  std::uint32_t upsert_only = 0;  // flushes left that must not insert without ON CONFLICT
  // The snapshot LSN of the table's copy (sinks/load_state.h): changes of source transactions that committed
  // before it are in the copy, and are not applied again.
  Lsn floor;
  std::set<std::string> prepared;  // prepared statement names on this connection
  std::string mask_scratch;
  std::vector<std::size_t> offsets;  // parameter offsets into params_ (SIZE_MAX: NULL)

  // The columns every INSERT names. Each says OVERRIDING SYSTEM VALUE: a key that is an identity GENERATED
  // ALWAYS on the order DB (a table made from the source's DDL) takes the source's value, as a subscription's
  // apply worker writes it; on other tables the clause changes nothing.
  std::string row_columns() const {
    std::string s = join(cols, ", ");
    s += ", " + lsn_col;
    if (!tomb_col.empty()) s += ", " + tomb_col;
    return s;
  }
  std::string key_columns() const {
    std::vector<std::string> k;
    for (std::size_t i : key) k.push_back(cols[i]);
    return join(k, ", ");
  }
  // SET list of an upsert writing the columns marked '1' in `mask` (empty mask: all).
  std::string set_list(const std::string& mask) const {
    std::string s;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      if (std::find(key.begin(), key.end(), c) != key.end()) continue;
      if (!mask.empty() && mask[c] != '1') continue;
      s += cols[c] + " = EXCLUDED." + cols[c] + ", ";
    }
    s += lsn_col + " = EXCLUDED." + lsn_col;
    if (!tomb_col.empty()) s += ", " + tomb_col + " = EXCLUDED." + tomb_col;
    return s;
  }
  std::string conflict_clause(const std::string& mask) const {
    return " ON CONFLICT (" + key_columns() + ") DO UPDATE SET " + set_list(mask) + " WHERE t." + lsn_col +
           " <= EXCLUDED." + lsn_col;
  }
  // The stage's rows back to the open transaction's savepoint: the fold is dropped and, since the rollback
  // may have undone this call's TRUNCATE of rows staged by an earlier chunk, the stage is emptied before its
  // next use.
  void rolled_back_to_savepoint() {
    fold.clear();
    stage_used = true;
    without_toast = without_toast_at_savepoint;
  }
};

// What one flush copied into the stage, for the statements that apply it.
struct PostgresSink::StagedRows {
  std::map<std::string, int> masks;  // unchanged-TOAST column masks -> _cdc_stage_mask (their own statement)
  bool any_delete = false;
  bool any_upsert = false;
  std::size_t plain = 0;  // rows inserted without ON CONFLICT ('i')
  bool binary = false;    // copied in the binary format
};

}  // namespace cdcsync
