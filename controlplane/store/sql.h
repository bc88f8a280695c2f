// The store's one view of a SQL database, whichever engine holds it: a connection that runs
// statements with bound parameters and transactions that roll back unless committed. SQLite
// (sqlite_connection.h) and PostgreSQL (postgres_connection.h) implement it; the store's SQL
// is written once, with ?N parameters, in the subset both engines read alike.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway::sql {

enum class Dialect { kSqlite, kPostgres };

enum class TransactionMode {
  kRead,          // a consistent snapshot for several reads
  kWrite,         // writes that commute (usage sums, agent rows): SQLite takes the write lock
                  // up front; PostgreSQL runs READ COMMITTED, where an upsert is atomic
  kSerializable,  // read-modify-write (topology changes): concurrent ones never interleave;
                  // on PostgreSQL one of two conflicting ones fails with Aborted, to be retried
  kSchema,        // migrations: one process at a time, each reading the others' result
};

// A driver's prepared statement. Parameters count from 1; a failed bind is reported by the
// next Step().
class StatementDriver {
 public:
  virtual ~StatementDriver() = default;
  virtual void BindInt(int index, int64_t value) = 0;
  virtual void BindText(int index, absl::string_view text) = 0;
  virtual void BindBlob(int index, absl::string_view bytes) = 0;
  // True when a row is ready, false when the statement is done.
  virtual absl::StatusOr<bool> Step() = 0;
  // Ready to run again (bindings may be replaced); Changes() still answers for the last run.
  virtual void Reset() = 0;
  // Rows inserted, updated or deleted by the last run.
  virtual int64_t Changes() const = 0;
  virtual int64_t Int(int column) const = 0;
  virtual std::string Text(int column) const = 0;
  // Valid until the next Step().
  virtual absl::string_view Blob(int column) const = 0;
};

// One connection; not thread-safe (TopologyStore serializes its callers).
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // For messages: the file, or the URL without its password.
  virtual const std::string& name() const = 0;
  // Runs constant SQL, possibly several statements (schema, transaction control). Values are
  // never spliced into SQL text: everything that carries data goes through Statement.
  virtual absl::Status Exec(absl::string_view sql, absl::string_view step) = 0;
  virtual absl::StatusOr<std::unique_ptr<StatementDriver>> Prepare(absl::string_view sql,
                                                                   absl::string_view step) = 0;
  virtual absl::Status Begin(TransactionMode mode) = 0;
  virtual absl::Status Commit() = 0;
  // Best effort: a connection that cannot roll back discards the transaction when it closes.
  virtual void Rollback() = 0;
  // Whether a transaction is still open (a failed COMMIT may leave one open).
  virtual bool InTransaction() const = 0;
};

// A prepared statement by value, so callers chain binds: Prepare(...)->Bind(1, x).Run().
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(Connection* db, absl::string_view sql,
                                           absl::string_view step);

  Statement& Bind(int index, int64_t value) {
    driver_->BindInt(index, value);
    return *this;
  }
  Statement& Bind(int index, absl::string_view text) {
    driver_->BindText(index, text);
    return *this;
  }
  Statement& BindBlob(int index, absl::string_view bytes) {
    driver_->BindBlob(index, bytes);
    return *this;
  }

  absl::StatusOr<bool> Step() { return driver_->Step(); }
  // Steps a statement that returns no rows to completion, then resets it for reuse.
  absl::Status Run();
  int64_t Changes() const { return driver_->Changes(); }

  int64_t Int(int column) const { return driver_->Int(column); }
  std::string Text(int column) const { return driver_->Text(column); }
  absl::string_view Blob(int column) const { return driver_->Blob(column); }

 private:
  Statement(std::unique_ptr<StatementDriver> driver, absl::string_view step)
      : driver_(std::move(driver)), step_(step) {}

  std::unique_ptr<StatementDriver> driver_;
  std::string step_;
};

// Begin ... Commit; the destructor rolls back a transaction that was not committed, so
// every early return on an error leaves the database as it was.
class Transaction {
 public:
  explicit Transaction(Connection* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  absl::Status Begin(TransactionMode mode);
  absl::Status Commit();

 private:
  Connection* db_;
  bool open_ = false;
};

}  // namespace spillway::sql
