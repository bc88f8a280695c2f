// The store's SQL connection on a PostgreSQL database through libpq (sql.h): the store's ?N
// parameters become $N, blobs travel as bytea, and a connection lost between transactions
// is re-established on the next statement, so a restarted database costs the callers of
// that moment an Unavailable error and nothing after.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"

namespace spillway::sql {

// `url` (postgres://...) may hold a password; `display` is what messages show instead.
absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url,
                                                         const std::string& display);

// "$N" for every "?N" outside quoted text: the store writes SQL once, SQLite-style.
std::string PostgresParameters(absl::string_view sql);

}  // namespace spillway::sql
