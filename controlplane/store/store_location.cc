// See store_location.h.
#include "controlplane/store/store_location.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace spillway {
namespace {

constexpr absl::string_view kUsage =
    "expected sqlite:PATH or postgres://USER@HOST:PORT/DB (--db PATH is the SQLite shorthand)";

bool IsPostgresUrl(absl::string_view value) {
  return absl::StartsWith(value, "postgres://") || absl::StartsWith(value, "postgresql://");
}

// scheme://user:password@host/... -> scheme://user:***@host/...; anything else unchanged. The
// last '@' ends the user information even when a password holds '/' or '@' unencoded (an '@'
// further on, in a query, only hides more).
std::string WithoutPassword(absl::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == absl::string_view::npos) {
    return std::string(url);
  }
  const std::size_t authority = scheme_end + 3;
  const std::size_t at = url.rfind('@');
  if (at == absl::string_view::npos || at < authority) {
    return std::string(url);
  }
  const std::size_t colon = url.find(':', authority);
  if (colon == absl::string_view::npos || colon > at) {
    return std::string(url);
  }
  return absl::StrCat(url.substr(0, colon + 1), "***", url.substr(at));
}

}  // namespace

std::string StoreLocation::Display() const {
  return kind == Kind::kSqlite ? sqlite_path : WithoutPassword(postgres_url);
}

absl::StatusOr<StoreLocation> ParseStoreLocation(absl::string_view store, absl::string_view db) {
  if (store.empty() && db.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--store is required: ", kUsage));
  }
  if (!store.empty() && !db.empty()) {
    return absl::InvalidArgumentError("give --store or --db, not both");
  }
  StoreLocation location;
  if (!db.empty()) {
    location.sqlite_path = std::string(db);
    return location;
  }
  if (absl::string_view path = store; absl::ConsumePrefix(&path, "sqlite:")) {
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--store 'sqlite:': no path; ", kUsage));
    }
    location.sqlite_path = std::string(path);
    return location;
  }
  if (IsPostgresUrl(store)) {
    location.kind = StoreLocation::Kind::kPostgres;
    location.postgres_url = std::string(store);
    return location;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--store '", WithoutPassword(store), "': ", kUsage));
}

}  // namespace spillway
