// See drill_table.h. The record is the Drill message's bytes; state is a column of its own so
// that the start-up search for unfinished drills reads no report.
#include "controlplane/store/drill_table.h"

#include "absl/strings/str_cat.h"
#include "controlplane/store/sql.h"

namespace spillway {
namespace {

using sql::Statement;

bool Finished(v1::Drill::State state) {
  return state == v1::Drill::STATE_DONE || state == v1::Drill::STATE_ABORTED;
}

absl::StatusOr<v1::Drill> Parse(const Statement& row, int id_column, int body_column) {
  v1::Drill drill;
  const absl::string_view body = row.Blob(body_column);
  if (!drill.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::DataLossError(
        absl::StrCat("drill ", row.Int(id_column), ": the stored record cannot be read"));
  }
  drill.set_id(static_cast<uint64_t>(row.Int(id_column)));
  return drill;
}

}  // namespace

absl::StatusOr<uint64_t> InsertDrillRow(sql::Connection* db, const v1::Drill& drill) {
  absl::StatusOr<Statement> insert = Statement::Prepare(
      db, "INSERT INTO drills (region, finished, body) VALUES (?1, ?2, ?3) RETURNING id",
      "insert drill");
  if (!insert.ok()) {
    return insert.status();
  }
  insert->Bind(1, drill.region())
      .Bind(2, int64_t{Finished(drill.state()) ? 1 : 0})
      .BindBlob(3, drill.SerializeAsString());
  absl::StatusOr<bool> row = insert->Step();
  if (!row.ok()) {
    return row.status();
  }
  if (!*row) {
    return absl::InternalError(absl::StrCat(db->name(), ": insert drill: no id returned"));
  }
  return static_cast<uint64_t>(insert->Int(0));
}

absl::Status UpdateDrillRow(sql::Connection* db, const v1::Drill& drill) {
  absl::StatusOr<Statement> update = Statement::Prepare(
      db, "UPDATE drills SET finished = ?2, body = ?3 WHERE id = ?1", "update drill");
  if (!update.ok()) {
    return update.status();
  }
  update->Bind(1, static_cast<int64_t>(drill.id()))
      .Bind(2, int64_t{Finished(drill.state()) ? 1 : 0})
      .BindBlob(3, drill.SerializeAsString());
  if (absl::Status status = update->Run(); !status.ok()) {
    return status;
  }
  if (update->Changes() == 0) {
    return absl::NotFoundError(absl::StrCat("drill ", drill.id(), " does not exist"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Drill>> ReadDrillRow(sql::Connection* db, uint64_t id) {
  absl::StatusOr<Statement> read =
      Statement::Prepare(db, "SELECT id, body FROM drills WHERE id = ?1", "read drill");
  if (!read.ok()) {
    return read.status();
  }
  read->Bind(1, static_cast<int64_t>(id));
  absl::StatusOr<bool> row = read->Step();
  if (!row.ok()) {
    return row.status();
  }
  if (!*row) {
    return std::optional<v1::Drill>();
  }
  absl::StatusOr<v1::Drill> drill = Parse(*read, 0, 1);
  if (!drill.ok()) {
    return drill.status();
  }
  return std::optional<v1::Drill>(*std::move(drill));
}

absl::StatusOr<std::vector<v1::Drill>> ReadDrillRows(sql::Connection* db, int limit,
                                                     bool unfinished_only) {
  absl::StatusOr<Statement> read = Statement::Prepare(
      db,
      unfinished_only ? "SELECT id, body FROM drills WHERE finished = 0 ORDER BY id DESC LIMIT ?1"
                      : "SELECT id, body FROM drills ORDER BY id DESC LIMIT ?1",
      "list drills");
  if (!read.ok()) {
    return read.status();
  }
  read->Bind(1, int64_t{limit});
  std::vector<v1::Drill> drills;
  for (;;) {
    absl::StatusOr<bool> row = read->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return drills;
    }
    absl::StatusOr<v1::Drill> drill = Parse(*read, 0, 1);
    if (!drill.ok()) {
      return drill.status();
    }
    drills.push_back(*std::move(drill));
  }
}

}  // namespace spillway
