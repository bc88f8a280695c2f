// SQLite C API behind sql::Connection: every failure becomes a Status naming the file and the
// step, and nothing is left half-done (statements finalized, transactions rolled back).
#include "controlplane/store/sqlite_connection.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway::sql {
namespace {

// Long enough for another process (a backup, a second control plane during a hand-over)
// to finish a write; short enough that a caller sees Unavailable instead of hanging.
constexpr int kBusyTimeoutMs = 5000;

// The last error of `db` (result `code`) as a Status: "<file>: <step>: <sqlite message>".
// Busy/locked maps to Unavailable (retryable), corruption to DataLoss, the rest to Internal.
absl::Status Error(sqlite3* db, int code, absl::string_view step) {
  const char* file = db == nullptr ? nullptr : sqlite3_db_filename(db, "main");
  // The connection's message when it is about this failure, else the generic one for `code`.
  const char* message = db != nullptr && (sqlite3_errcode(db) & 0xff) == (code & 0xff)
                            ? sqlite3_errmsg(db)
                            : sqlite3_errstr(code);
  std::string text =
      absl::StrCat(file == nullptr || *file == '\0' ? "(sqlite)" : file, ": ", step, ": ", message);
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(std::move(text));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(std::move(text));
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return absl::FailedPreconditionError(std::move(text));
    default:
      return absl::InternalError(std::move(text));
  }
}

absl::Status ExecOn(sqlite3* db, const std::string& sql, absl::string_view step) {
  const int code = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  return code == SQLITE_OK ? absl::OkStatus() : Error(db, code, step);
}

class SqliteStatement final : public StatementDriver {
 public:
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, absl::string_view step)
      : db_(db), stmt_(stmt), step_(step) {}
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  void BindInt(int index, int64_t value) override {
    NoteBind(sqlite3_bind_int64(stmt_, index, value));
  }
  void BindText(int index, absl::string_view text) override {
    NoteBind(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                               SQLITE_TRANSIENT));
  }
  void BindBlob(int index, absl::string_view bytes) override {
    NoteBind(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                               SQLITE_TRANSIENT));
  }

  absl::StatusOr<bool> Step() override {
    if (bind_error_ != SQLITE_OK) {
      return Error(db_, bind_error_, absl::StrCat(step_, " (bind)"));
    }
    const int code = sqlite3_step(stmt_);
    if (code == SQLITE_ROW) {
      return true;
    }
    if (code == SQLITE_DONE) {
      changes_ = sqlite3_changes(db_);
      return false;
    }
    return Error(db_, code, step_);
  }
  void Reset() override { sqlite3_reset(stmt_); }
  int64_t Changes() const override { return changes_; }

  int64_t Int(int column) const override { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const override {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), size);
  }
  absl::string_view Blob(int column) const override {
    const void* data = sqlite3_column_blob(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? absl::string_view()
                           : absl::string_view(static_cast<const char*>(data), size);
  }

 private:
  void NoteBind(int code) {
    if (code != SQLITE_OK && bind_error_ == SQLITE_OK) {
      bind_error_ = code;
    }
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string step_;
  int bind_error_ = SQLITE_OK;
  int64_t changes_ = 0;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }

  sqlite3* handle() const { return db_; }

  Dialect dialect() const override { return Dialect::kSqlite; }
  const std::string& name() const override { return path_; }

  absl::Status Exec(absl::string_view sql, absl::string_view step) override {
    return ExecOn(db_, std::string(sql), step);
  }

  absl::StatusOr<std::unique_ptr<StatementDriver>> Prepare(absl::string_view sql,
                                                           absl::string_view step) override {
    sqlite3_stmt* stmt = nullptr;
    const int code =
        sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
    if (code != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Error(db_, code, absl::StrCat(step, " (prepare)"));
    }
    return std::make_unique<SqliteStatement>(db_, stmt, step);
  }

  // Every writing mode takes the write lock up front (IMMEDIATE), so a transaction cannot
  // fail half-way on a lock upgrade: one file has one writer, which is already serializable.
  absl::Status Begin(TransactionMode mode) override {
    return mode == TransactionMode::kRead ? ExecOn(db_, "BEGIN", "begin read transaction")
                                          : ExecOn(db_, "BEGIN IMMEDIATE", "begin transaction");
  }
  absl::Status Commit() override { return ExecOn(db_, "COMMIT", "commit"); }
  // Nothing useful can be done if the rollback itself fails: SQLite then rolls back when the
  // connection closes or the next transaction begins.
  void Rollback() override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }
  bool InTransaction() const override { return sqlite3_get_autocommit(db_) == 0; }

 private:
  sqlite3* db_;
  std::string path_;
};

// journal_mode answers with the mode it got, which is not WAL on every file system.
absl::Status CheckJournalMode(Connection& db) {
  absl::StatusOr<Statement> mode = Statement::Prepare(&db, "PRAGMA journal_mode", "journal mode");
  if (!mode.ok()) {
    return mode.status();
  }
  absl::StatusOr<bool> row = mode->Step();
  if (!row.ok()) {
    return row.status();
  }
  if (!*row || mode->Text(0) != "wal") {
    return absl::FailedPreconditionError(
        absl::StrCat(db.name(), ": cannot use write-ahead logging (journal mode is '",
                     *row ? mode->Text(0) : "", "')"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path) {
  sqlite3* db = nullptr;
  const int code = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (code != SQLITE_OK) {
    absl::Status status = Error(db, code, absl::StrCat("open ", path));
    sqlite3_close_v2(db);
    return status;
  }
  // From here on the connection owns the handle and closes it on every path.
  auto connection = std::make_unique<SqliteConnection>(db, path);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  for (const char* pragma :
       {"PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"}) {
    if (absl::Status status = connection->Exec(pragma, pragma); !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = CheckJournalMode(*connection); !status.ok()) {
    return status;
  }
  return connection;
}

sqlite3* SqliteHandle(Connection* db) {
  auto* sqlite = dynamic_cast<SqliteConnection*>(db);
  return sqlite == nullptr ? nullptr : sqlite->handle();
}

}  // namespace spillway::sql
