// Thin RAII wrappers over the SQLite C API shared by the store and its migrations: prepared
// statements with bound parameters, transactions that roll back unless committed, errors
// that name the database file and the step that failed.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;
struct sqlite3_stmt;

namespace spillway::sqlite {

// The last error of `db` (result `code`) as a Status: "<file>: <step>: <sqlite message>".
// Busy/locked maps to Unavailable (retryable), corruption to DataLoss, the rest to Internal.
absl::Status Error(sqlite3* db, int code, absl::string_view step);

// Runs constant SQL (schema, pragmas, transaction control). Values are never spliced into
// SQL text: everything that carries data goes through Statement.
absl::Status Exec(sqlite3* db, const char* sql, absl::string_view step);

class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, absl::string_view sql,
                                           absl::string_view step);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) = delete;
  Statement(const Statement&) = delete;
  ~Statement();

  // Parameters count from 1. A failed bind is reported by the next Step().
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, absl::string_view bytes);

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Steps a statement that returns no rows to completion, then resets it for reuse.
  absl::Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  // Valid until the next Step().
  absl::string_view Blob(int column) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, absl::string_view step)
      : db_(db), stmt_(stmt), step_(step) {}
  void NoteBind(int code);

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string step_;
  int bind_error_ = 0;  // SQLITE_OK
};

// BEGIN ... COMMIT; the destructor rolls back a transaction that was not committed, so
// every early return on an error leaves the database as it was.
class Transaction {
 public:
  enum class Mode {
    kRead,   // BEGIN: a consistent snapshot for several reads
    kWrite,  // BEGIN IMMEDIATE: takes the write lock up front, so it cannot fail half-way
             // on a lock upgrade
  };

  explicit Transaction(sqlite3* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Begin(Mode mode);
  absl::Status Commit();

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace spillway::sqlite
