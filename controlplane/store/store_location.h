// Where the control plane keeps its state, from --store (sqlite:PATH or postgres://...) or the
// older --db PATH, the SQLite shorthand. A PostgreSQL URL may carry a password: what is shown
// in logs and errors is the URL without it.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace spillway {

struct StoreLocation {
  enum class Kind { kSqlite, kPostgres };
  Kind kind = Kind::kSqlite;
  std::string sqlite_path;   // kSqlite
  std::string postgres_url;  // kPostgres, as given (secret: may hold a password)

  // For logs and errors: the path, or the URL with any password replaced by "***".
  std::string Display() const;
};

// Reads the two flags (`store` and `db`, either possibly empty). Exactly one must be given;
// an error names the flag and, for a URL, shows it without its password.
absl::StatusOr<StoreLocation> ParseStoreLocation(absl::string_view store, absl::string_view db);

}  // namespace spillway
