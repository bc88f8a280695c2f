// SQLite C API wrappers: every failure becomes a Status naming the file and the step, and
// nothing is left half-done (statements finalized, transactions rolled back).
#include "controlplane/store/sqlite_db.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway::sqlite {

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

absl::Status Exec(sqlite3* db, const char* sql, absl::string_view step) {
  const int code = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return code == SQLITE_OK ? absl::OkStatus() : Error(db, code, step);
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db, absl::string_view sql,
                                             absl::string_view step) {
  sqlite3_stmt* stmt = nullptr;
  const int code = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (code != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(db, code, absl::StrCat(step, " (prepare)"));
  }
  return Statement(db, stmt, step);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      step_(std::move(other.step_)),
      bind_error_(other.bind_error_) {}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::NoteBind(int code) {
  if (code != SQLITE_OK && bind_error_ == SQLITE_OK) {
    bind_error_ = code;
  }
}

Statement& Statement::Bind(int index, int64_t value) {
  NoteBind(sqlite3_bind_int64(stmt_, index, value));
  return *this;
}

Statement& Statement::Bind(int index, absl::string_view text) {
  NoteBind(sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                             SQLITE_TRANSIENT));
  return *this;
}

Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  NoteBind(sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()),
                             SQLITE_TRANSIENT));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return Error(db_, bind_error_, absl::StrCat(step_, " (bind)"));
  }
  const int code = sqlite3_step(stmt_);
  if (code == SQLITE_ROW) {
    return true;
  }
  if (code == SQLITE_DONE) {
    return false;
  }
  return Error(db_, code, step_);
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  sqlite3_reset(stmt_);
  if (!row.ok()) {
    return row.status();
  }
  if (*row) {
    return absl::InternalError(absl::StrCat(step_, ": returned a row where none was expected"));
  }
  return absl::OkStatus();
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), size);
}

absl::string_view Statement::Blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? absl::string_view()
                         : absl::string_view(static_cast<const char*>(data), size);
}

Transaction::~Transaction() {
  if (open_) {
    // Nothing useful can be done if the rollback itself fails: SQLite then rolls back when
    // the connection closes or the next transaction begins.
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::Status Transaction::Begin(Mode mode) {
  absl::Status status = mode == Mode::kWrite ? Exec(db_, "BEGIN IMMEDIATE", "begin transaction")
                                             : Exec(db_, "BEGIN", "begin read transaction");
  open_ = status.ok();
  return status;
}

absl::Status Transaction::Commit() {
  absl::Status status = Exec(db_, "COMMIT", "commit");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); the destructor then
  // rolls it back.
  open_ = !status.ok() && sqlite3_get_autocommit(db_) == 0;
  return status;
}

}  // namespace spillway::sqlite
