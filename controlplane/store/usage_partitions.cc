// See usage_partitions.h. Partition names carry their day (usage_d20261206), so the list of
// days needs no parsing of PostgreSQL's bound expressions; the names and bounds are built here
// from integers, never from input.
#include "controlplane/store/usage_partitions.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace spillway {
namespace {

using sql::Statement;

constexpr int64_t kDayMs = 86'400'000;
constexpr absl::string_view kPrefix = "usage_d";

std::string PartitionName(int64_t day_start_ms) {
  return absl::StrCat(
      kPrefix, absl::FormatTime("%Y%m%d", absl::FromUnixMillis(day_start_ms), absl::UTCTimeZone()));
}

// The day a partition's name stands for, as its first millisecond; -1 for another name.
int64_t DayOf(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix) || name.size() != 8) {
    return -1;
  }
  absl::Time day;
  std::string error;
  // %E4Y: exactly four digits (%Y would take all eight as the year).
  if (!absl::ParseTime("%E4Y%m%d", name, absl::UTCTimeZone(), &day, &error)) {
    return -1;
  }
  return absl::ToUnixMillis(day);
}

absl::StatusOr<std::vector<std::string>> Partitions(sql::Connection* db) {
  absl::StatusOr<Statement> list = Statement::Prepare(
      db,
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = 'usage'::regclass ORDER BY c.relname",
      "list usage partitions");
  if (!list.ok()) {
    return list.status();
  }
  std::vector<std::string> names;
  for (;;) {
    absl::StatusOr<bool> row = list->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return names;
    }
    names.push_back(list->Text(0));
  }
}

// Whether the default partition holds rows of [start, start + 1 day): such a day cannot get
// a partition of its own (PostgreSQL refuses one that would leave the default's rows outside).
absl::StatusOr<bool> DefaultHoldsDay(sql::Connection* db, int64_t start) {
  absl::StatusOr<Statement> probe = Statement::Prepare(
      db, "SELECT 1 FROM usage_default WHERE minute_unix_ms >= ?1 AND minute_unix_ms < ?2 LIMIT 1",
      "probe the default usage partition");
  if (!probe.ok()) {
    return probe.status();
  }
  probe->Bind(1, start).Bind(2, start + kDayMs);
  return probe->Step();
}

}  // namespace

absl::Status EnsureUsagePartitions(sql::Connection* db, int64_t now_ms, int days_ahead) {
  if (db->dialect() != sql::Dialect::kPostgres) {
    return absl::OkStatus();
  }
  sql::Transaction transaction(db);
  // The schema lock: replicas creating the same day take turns instead of colliding.
  if (absl::Status status = transaction.Begin(sql::TransactionMode::kSchema); !status.ok()) {
    return status;
  }
  absl::StatusOr<std::vector<std::string>> existing = Partitions(db);
  if (!existing.ok()) {
    return existing.status();
  }
  const int64_t today = now_ms - now_ms % kDayMs;
  for (int64_t day = today - kDayMs; day <= today + days_ahead * kDayMs; day += kDayMs) {
    const std::string name = PartitionName(day);
    if (std::find(existing->begin(), existing->end(), name) != existing->end()) {
      continue;
    }
    absl::StatusOr<bool> held = DefaultHoldsDay(db, day);
    if (!held.ok()) {
      return held.status();
    }
    if (*held) {
      continue;
    }
    if (absl::Status status =
            db->Exec(absl::StrCat("CREATE TABLE ", name, " PARTITION OF usage FOR VALUES FROM (",
                                  day, ") TO (", day + kDayMs, ")"),
                     absl::StrCat("create usage partition ", name));
        !status.ok()) {
      return status;
    }
  }
  return transaction.Commit();
}

absl::StatusOr<int> DropUsagePartitionsBefore(sql::Connection* db, int64_t before_ms) {
  if (db->dialect() != sql::Dialect::kPostgres) {
    return 0;
  }
  absl::StatusOr<std::vector<std::string>> partitions = Partitions(db);
  if (!partitions.ok()) {
    return partitions.status();
  }
  int dropped = 0;
  for (const std::string& name : *partitions) {
    const int64_t day = DayOf(name);
    if (day < 0 || day + kDayMs > before_ms) {
      continue;
    }
    if (absl::Status status = db->Exec(absl::StrCat("DROP TABLE ", name),
                                       absl::StrCat("drop usage partition ", name));
        !status.ok()) {
      return status;
    }
    ++dropped;
  }
  return dropped;
}

}  // namespace spillway
