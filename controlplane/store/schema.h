// The control plane's schema (SQLite and PostgreSQL alike) as an ordered list of forward
// migrations, and the code that brings a database file up to the newest one, one transaction per
// step.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "controlplane/store/sql.h"

namespace spillway {

// One step of the schema's history. Steps are never edited once released: a change to the
// schema is a new step, so every older file can be brought forward.
struct Migration {
  int version;          // the schema version the step produces; steps count up from 1
  const char* summary;  // what the step does, for error messages
  const char* sql;      // constant statements only, never values
  // What PostgreSQL runs instead, where the engines must differ (null: `sql` for both; an
  // empty `sql` leaves SQLite as it is).
  const char* postgres_sql = nullptr;
};

// The steps this binary knows, oldest first.
absl::Span<const Migration> SchemaMigrations();

// The version the newest step produces.
int LatestSchemaVersion();

// The version recorded in `db`; 0 for a database without the schema_version table.
absl::StatusOr<int> StoredSchemaVersion(sql::Connection* db);

// Applies every step of `migrations` above the stored version, each in its own transaction
// together with the version bump, so a crash leaves the file at some complete step. A file
// written by a newer binary (stored version above the last step) is refused with
// FailedPrecondition naming both versions. Errors name the file and the step.
absl::Status MigrateSchema(sql::Connection* db, absl::Span<const Migration> migrations);

}  // namespace spillway
