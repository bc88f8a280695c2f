// The store's SQL connection on one SQLite file (sql.h): WAL, foreign keys, a busy timeout,
// and errors that name the file and the step that failed.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"

struct sqlite3;

namespace spillway::sql {

// Opens (creating if needed) the file at `path`. synchronous=FULL: a change is acknowledged
// only once its WAL frame is on disk, so neither kill -9 nor power loss takes it back.
absl::StatusOr<std::unique_ptr<Connection>> OpenSqlite(const std::string& path);

// The SQLite handle under a connection OpenSqlite made (for tests and SQLite-only pragmas);
// null for any other connection.
sqlite3* SqliteHandle(Connection* db);

}  // namespace spillway::sql
