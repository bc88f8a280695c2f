// The usage benchmark's data: a store's minute, hour and day usage filled by server-side SQL
// (SQLite or PostgreSQL), and the per-tenant totals a range must add up to.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"

namespace spillway::bench {

// `rows` minute rows over `days` whole UTC days from `first_day_unix_ms`, spread evenly over
// the minutes; each minute holds a different slice of the tenants' keys (8 per tenant: two
// routes, two backends each, a success and an error status), so every key recurs through the
// day and a day's rollup has one row per key.
struct UsageShape {
  int64_t rows = 100'000'000;
  int days = 14;
  int tenants = 10'000;
  int64_t first_day_unix_ms = 0;
};

inline constexpr int kKeysPerTenant = 8;

struct FillReport {
  double minutes_s = 0;      // INSERT ... SELECT of the minute rows
  double rollups_s = 0;      // usage_hour and usage_day from them, GROUP BY
  double maintenance_s = 0;  // PostgreSQL: VACUUM ANALYZE, as autovacuum would do anyway
  int64_t minute_rows = 0;
  int64_t hour_rows = 0;
  int64_t day_rows = 0;
};

// Per-tenant sums as spillwayctl usage --by tenant prints them.
struct TenantTotals {
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t total_tokens = 0;
  int64_t failed_requests = 0;
  int64_t throttled_requests = 0;

  bool operator==(const TenantTotals&) const = default;
};
using TotalsByTenant = std::map<std::string, TenantTotals>;

// Fills `db`, whose schema the store created and whose usage tables are empty, in key order
// and in one transaction per day. `progress` is called after each day with its number.
absl::Status FillUsage(sql::Connection* db, const UsageShape& shape, FillReport& report,
                       const std::function<void(int day)>& progress);

// Sums the minute rows in [since, until) per tenant, straight from the usage table.
absl::StatusOr<TotalsByTenant> MinuteTotalsByTenant(sql::Connection* db, int64_t since_unix_ms,
                                                    int64_t until_unix_ms);

}  // namespace spillway::bench
