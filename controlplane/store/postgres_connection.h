// The store's SQL connection on a PostgreSQL database through libpq (sql.h): the store's ?N
// parameters become $N, blobs travel as bytea, and a connection lost between transactions
// is re-established on the next statement, so a restarted database costs the callers of
// that moment an Unavailable error and nothing after.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"

struct pg_conn;  // libpq's PGconn

namespace spillway::sql {

// `url` (postgres://...) may hold a password; `display` is what messages show instead.
absl::StatusOr<std::unique_ptr<Connection>> OpenPostgres(const std::string& url,
                                                         const std::string& display);

// "$N" for every "?N" outside quoted text: the store writes SQL once, SQLite-style.
std::string PostgresParameters(absl::string_view sql);

// A libpq connection to `url` with the control plane's defaults (a 5 s connect timeout, TCP
// keepalives that notice a database host gone silent; the URL's own settings win), its
// notices silenced. Null only when libpq cannot allocate; check PQstatus.
pg_conn* ConnectPostgres(const std::string& url, const char* application_name);

}  // namespace spillway::sql
