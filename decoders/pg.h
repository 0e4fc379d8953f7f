// RAII handles for libpq, and the few helpers every user of a connection needs.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decoders/pg_link.h"

namespace cdcsync {

struct PqFinish {
  void operator()(PGconn* c) const {
    pg_link::forget(c);  // first: the watcher never looks at a freed connection
    PQfinish(c);
  }
};
struct PqClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
struct PqFreemem {
  void operator()(void* p) const { PQfreemem(p); }
};
using PgConn = std::unique_ptr<PGconn, PqFinish>;
using PgResult = std::unique_ptr<PGresult, PqClear>;

// An error from a PostgreSQL server or from libpq. `message` is the primary message only: the DETAIL
// field may contain row values, so it is never kept.
class PgError : public std::runtime_error {
 public:
  PgError(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  // Worth retrying: a lost connection (class 08; pg_error gives a failure without SQLSTATE on a connection
  // that is gone 08006), a serialization failure or deadlock (40001, 40P01), a lock or statement timeout
  // (55P03, 57014), a server shutting down, crashed or still starting (57P01, 57P02, 57P03), an idle session
  // ended (57P05), insufficient resources (class 53: disk full, out of memory, too many connections).
  // Nothing else: not 57P04 (the database was dropped), not a client-side error with the connection intact.
  bool transient() const {
    return sqlstate_.starts_with("08") || sqlstate_.starts_with("53") || sqlstate_ == "40001" ||
           sqlstate_ == "40P01" || sqlstate_ == "55P03" || sqlstate_ == "57014" || sqlstate_ == "57P01" ||
           sqlstate_ == "57P02" || sqlstate_ == "57P03" || sqlstate_ == "57P05";
  }

 private:
  std::string sqlstate_;
};

// SQLSTATE connection_failure: what a failure without a SQLSTATE is taken for when the connection is gone.
inline constexpr const char* kConnectionLost = "08006";

// The error of a failed result, without DETAIL. A failure the server did not classify (a null result, an
// error libpq raised itself) reports SQLSTATE 08006 when the connection is gone (transient), and none
// otherwise (not transient: out of memory, a client-side protocol problem).
inline PgError pg_error(PGconn* conn, const PGresult* res, std::string_view doing) {
  std::string state;
  std::string primary;
  if (res != nullptr) {
    if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) state = s;
    if (const char* p = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) primary = p;
  }
  if (primary.empty() && conn != nullptr) {
    primary = PQerrorMessage(conn);
    while (!primary.empty() && (primary.back() == '\n' || primary.back() == ' ')) primary.pop_back();
  }
  std::string msg{doing};
  msg += ": ";
  msg += primary.empty() ? "unknown error" : primary;
  if (!state.empty()) msg += " (SQLSTATE " + state + ")";
  if (state.empty() && (conn == nullptr || PQstatus(conn) == CONNECTION_BAD)) state = kConnectionLost;
  return PgError{state, msg};
}

// Runs a statement and returns its result; throws PgError unless the status is one of the expected ones.
inline PgResult pg_exec(PGconn* conn, const char* sql, std::string_view doing,
                        ExecStatusType expected = PGRES_COMMAND_OK, ExecStatusType also = PGRES_TUPLES_OK) {
  PgResult res{PQexec(conn, sql)};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != expected && st != also) throw pg_error(conn, res.get(), doing);
  return res;
}

// A text parameter of a statement: a value, or SQL NULL (nullopt).
using PgParam = std::optional<std::string>;

// Runs a statement with text parameters ($1, $2, ...) and returns its result; throws PgError (without DETAIL)
// unless the status is one of the expected ones. The one way every caller runs a parameterized statement.
inline PgResult pg_exec_params(PGconn* conn, const char* sql, const std::vector<PgParam>& params,
                               std::string_view doing, ExecStatusType expected = PGRES_TUPLES_OK,
                               ExecStatusType also = PGRES_COMMAND_OK) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PgResult res{
      PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0)};
  const auto st = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (st != expected && st != also) throw pg_error(conn, res.get(), doing);
  return res;
}
inline PgResult pg_exec_params(PGconn* conn, const std::string& sql, const std::vector<PgParam>& params,
                               std::string_view doing, ExecStatusType expected = PGRES_TUPLES_OK,
                               ExecStatusType also = PGRES_COMMAND_OK) {
  return pg_exec_params(conn, sql.c_str(), params, doing, expected, also);
}

// A result's value, or nullopt for SQL NULL.
inline std::optional<std::string> pg_value(const PGresult* res, int row, int col) {
  if (PQgetisnull(res, row, col)) return std::nullopt;
  return std::string(PQgetvalue(res, row, col), static_cast<std::size_t>(PQgetlength(res, row, col)));
}

// Quotes a string literal with libpq's own rules (the connection's encoding and standard_conforming_strings),
// for the statements that cannot take parameters (a replication connection's simple query protocol).
inline std::string pg_quote_literal(PGconn* conn, std::string_view text) {
  std::unique_ptr<char, PqFreemem> q{PQescapeLiteral(conn, text.data(), text.size())};
  if (!q) throw PgError{"", std::string("cannot quote literal: ") + PQerrorMessage(conn)};
  return q.get();
}

// Quotes an identifier without a connection (UTF-8 servers): doubles embedded quotes.
inline std::string quote_ident(std::string_view ident) {
  std::string out;
  out.reserve(ident.size() + 2);
  out.push_back('"');
  for (char c : ident) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// A value quoted for a keyword/value conninfo: 'it\'s'.
inline std::string conninfo_quote(std::string_view value) {
  std::string q = "'";
  for (char c : value) {
    if (c == '\\' || c == '\'') q.push_back('\\');
    q.push_back(c);
  }
  return q + "'";
}

// The conninfo (keyword/value or URI) rebuilt as keyword/value pairs without its password; nullopt when it
// does not parse (`error` gets libpq's message, which never holds the password). `had_password` says
// whether it held one.
inline std::optional<std::string> conninfo_without_password(const std::string& conninfo, std::string& error,
                                                            bool* had_password = nullptr) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(PQconninfoParse(conninfo.c_str(), &err),
                                                                    &PQconninfoFree);
  std::unique_ptr<char, PqFreemem> err_owner{err};
  if (!opts) {
    error = err != nullptr ? err : "out of memory";
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    return std::nullopt;
  }
  if (had_password != nullptr) *had_password = false;
  std::string out;
  for (const PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::string_view(o->keyword) == "password") {
      if (had_password != nullptr) *had_password = true;
      continue;
    }
    if (!out.empty()) out += ' ';
    out += std::string(o->keyword) + "=" + conninfo_quote(o->val);
  }
  return out;
}

// The conninfo (keyword/value or URI) rebuilt as keyword/value with `password` added. The result is a
// secret: keep it in memory only, never log it.
inline std::string conninfo_with_password(const std::string& conninfo, const std::string& password) {
  std::string error;
  auto rebuilt = conninfo_without_password(conninfo, error);
  if (!rebuilt) throw PgError{"08000", "invalid conninfo: " + error};
  return *rebuilt + (rebuilt->empty() ? "" : " ") + "password=" + conninfo_quote(password);
}

// libpq's message for a failed connect (never includes the password), without the trailing newline.
inline std::string pg_connection_error(const PgConn& conn) {
  std::string msg = conn ? PQerrorMessage(conn.get()) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  return msg;
}

// How pg_connect opens a connection, beyond cdcsync's network defaults.
struct PgLinkOptions {
  // The reply deadline (decoders/pg_link.h); nullopt: pg_link::default_reply_timeout(), 0: none.
  std::optional<std::chrono::milliseconds> reply_timeout;
  pg_link::Owner owner = pg_link::Owner::MainLoop;
  // libpq keywords after the conninfo, which win over it (application_name, options, replication).
  std::vector<std::pair<std::string, std::string>> after;
};

// The one way cdcsync opens a PostgreSQL connection, replication or not. cdcsync's network defaults come
// ahead of `conninfo`, which may override them: a connect that gets no answer gives up after 10 s
// (connect_timeout), a peer that vanished is noticed by TCP keepalives (10 s idle, 5 s apart, 3 probes) and
// tcp_user_timeout (30 s); and the connection is watched for its reply deadline (pg_link.h), so a half-open
// link fails a blocked call instead of hanging it. Throws PgError (08000) with libpq's message, which never
// includes the password; `what` names the server ("the order database").
inline PgConn pg_connect(const std::string& conninfo, std::string_view what, const PgLinkOptions& link = {}) {
  std::vector<const char*> keys = {
      "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname"};
  std::vector<const char*> values = {"10", "1", "10", "5", "3", "30000", conninfo.c_str()};
  for (const auto& [k, v] : link.after) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConn conn{PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1)};
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    throw PgError{"08000",
                  std::string("cannot connect to ") + std::string(what) + ": " + pg_connection_error(conn)};
  }
  pg_link::watch(conn.get(), std::string(what), link.reply_timeout.value_or(pg_link::default_reply_timeout()),
                 link.owner);
  return conn;
}

}  // namespace cdcsync
