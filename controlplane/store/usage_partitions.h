// PostgreSQL keeps usage minutes in one partition per UTC day (schema version 7): retention
// drops a past day whole instead of deleting its rows one by one, and a day's rows sit
// together. Rows for a day without its partition go to the default partition, from which
// retention deletes them in steps. SQLite has no partitions: both calls do nothing there.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controlplane/store/sql.h"

namespace spillway {

// Creates the day partitions of `usage` from the day before `now_ms` to `days_ahead` days
// after it that do not exist yet. A day that already has rows in the default partition
// (written before its partition existed) is left there. Safe to call from several replicas
// at once: they take turns.
absl::Status EnsureUsagePartitions(sql::Connection* db, int64_t now_ms, int days_ahead = 3);

// Drops the day partitions that end at or before `before_ms`; returns how many.
absl::StatusOr<int> DropUsagePartitionsBefore(sql::Connection* db, int64_t before_ms);

}  // namespace spillway
