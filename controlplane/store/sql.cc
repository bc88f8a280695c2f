// See sql.h: the engine-independent halves of statements and transactions.
#include "controlplane/store/sql.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace spillway::sql {

absl::StatusOr<Statement> Statement::Prepare(Connection* db, absl::string_view sql,
                                             absl::string_view step) {
  absl::StatusOr<std::unique_ptr<StatementDriver>> driver = db->Prepare(sql, step);
  if (!driver.ok()) {
    return driver.status();
  }
  return Statement(*std::move(driver), step);
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = driver_->Step();
  driver_->Reset();
  if (!row.ok()) {
    return row.status();
  }
  if (*row) {
    return absl::InternalError(absl::StrCat(step_, ": returned a row where none was expected"));
  }
  return absl::OkStatus();
}

Transaction::~Transaction() {
  if (open_ && db_->InTransaction()) {
    db_->Rollback();
  }
}

absl::Status Transaction::Begin(TransactionMode mode) {
  absl::Status status = db_->Begin(mode);
  open_ = status.ok();
  return status;
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Commit();
  open_ = !status.ok() && db_->InTransaction();
  return status;
}

}  // namespace spillway::sql
