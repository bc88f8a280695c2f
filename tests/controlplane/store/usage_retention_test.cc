// Usage kept per minute, hour and day (issue 20): every level holds the same totals, a late
// batch reaches all three, a query is answered from the finest level still kept for its range,
// and each level is pruned to its own retention in bounded steps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controlplane/store/schema.h"
#include "controlplane/store/store.h"
#include "controlplane/store/usage_partitions.h"
#include "tests/controlplane/store/store_test_util.h"

namespace spillway {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 86'400'000;
constexpr int64_t kDay0 = 1'700'006'400'000;  // a UTC midnight (2023-11-15)

v1::UsageAggregate Aggregate(int64_t minute, const std::string& tenant, uint64_t requests,
                             uint64_t tokens) {
  v1::UsageAggregate a;
  a.set_minute_unix_ms(minute);
  a.set_tenant(tenant);
  a.set_route("gpt-4o");
  a.set_backend_id("aoai-eus2-ptu/gpt-4o-ptu");
  a.set_instance("aoai-eus2-ptu");
  a.set_region("eastus2");
  a.set_status(200);
  a.set_requests(requests);
  a.set_total_tokens(tokens);
  return a;
}

int64_t Count(sql::Connection* db, const char* table) {
  int64_t count = -1;
  return absl::SimpleAtoi(test::QueryText(db, absl::StrCat("SELECT count(*) FROM ", table)), &count)
             ? count
             : -1;
}

class UsageRetentionTest : public test::StoreTest {
 protected:
  // Three tenants over two days: minutes in two hours of the first day, one of the second.
  void StoreTwoDays() {
    v1::UsageBatch batch;
    batch.set_agent_id("agent-eus2");
    batch.set_sequence(1);
    *batch.add_aggregates() = Aggregate(kDay0 + 10 * kMinute, "checkout", 3, 300);
    *batch.add_aggregates() = Aggregate(kDay0 + 11 * kMinute + 7, "checkout", 2, 200);
    *batch.add_aggregates() = Aggregate(kDay0 + 70 * kMinute, "nightly", 5, 500);
    *batch.add_aggregates() = Aggregate(kDay0 + kDay + 5 * kMinute, "helpdesk", 1, 100);
    ASSERT_TRUE(Store().StoreUsage(batch).ok());
  }

  // "tenant requests/tokens" per row, from whichever level answers, and that level.
  std::string Query(int64_t since, int64_t until, std::string* granularity = nullptr,
                    int64_t* answered_since = nullptr, int64_t* answered_until = nullptr) {
    v1::UsageQuery query;
    query.set_since_unix_ms(since);
    query.set_until_unix_ms(until);
    query.add_group_by("tenant");
    absl::StatusOr<v1::UsageQueryResponse> response = Store().QueryUsage(query);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) {
      return "";
    }
    if (granularity != nullptr) *granularity = response->granularity();
    if (answered_since != nullptr) *answered_since = response->since_unix_ms();
    if (answered_until != nullptr) *answered_until = response->until_unix_ms();
    std::string rows;
    for (const v1::UsageRow& row : response->rows()) {
      absl::StrAppend(&rows, rows.empty() ? "" : "; ", row.key().at("tenant"), " ", row.requests(),
                      "/", row.total_tokens());
    }
    return rows;
  }
};

TEST_P(UsageRetentionTest, EveryLevelHoldsTheSameTotalsAndALateBatchReachesAll) {
  StoreTwoDays();
  const std::string all = "checkout 5/500; helpdesk 1/100; nightly 5/500";
  // The data is years old: retention decides which level still holds it.
  const UsageRetention minutes_for_ever{0, 0, 0};
  const UsageRetention hours{1, 0, 0};
  const UsageRetention days{1, 1, 0};
  std::string granularity;
  for (const auto& [retention, level] :
       {std::pair{minutes_for_ever, "minute"}, std::pair{hours, "hour"}, std::pair{days, "day"}}) {
    Store().SetUsageRetention(retention);
    // Bounds on no hour, so the finest level kept answers (widened as far as it needs).
    EXPECT_EQ(Query(kDay0 + 5 * kMinute, kDay0 + 2 * kDay + kMinute, &granularity), all) << level;
    EXPECT_EQ(granularity, level);
  }
  // A batch from an agent's spool, for a minute long past, lands in every level.
  v1::UsageBatch late;
  late.set_agent_id("agent-wus3");
  late.set_sequence(9);
  *late.add_aggregates() = Aggregate(kDay0 + 10 * kMinute, "checkout", 1, 50);
  ASSERT_TRUE(Store().StoreUsage(late).ok());
  for (const UsageRetention& retention : {minutes_for_ever, hours, days}) {
    Store().SetUsageRetention(retention);
    EXPECT_EQ(Query(kDay0, kDay0 + 2 * kDay), "checkout 6/550; helpdesk 1/100; nightly 5/500");
  }
}

TEST_P(UsageRetentionTest, AQueryIsWidenedToTheAnsweringLevelsPeriodsAndSaysSo) {
  StoreTwoDays();
  int64_t since = 0;
  int64_t until = 0;
  std::string granularity;
  Store().SetUsageRetention({0, 0, 0});
  // Minutes: [0:11, 1:05) holds the 0:11 minute and not 1:10.
  EXPECT_EQ(Query(kDay0 + 11 * kMinute, kDay0 + 65 * kMinute, &granularity, &since, &until),
            "checkout 2/200");
  EXPECT_EQ(granularity, "minute");
  EXPECT_EQ(since, kDay0 + 11 * kMinute);
  EXPECT_EQ(until, kDay0 + 65 * kMinute);
  // Hours: the same bounds widen to [0:00, 2:00).
  Store().SetUsageRetention({1, 0, 0});
  EXPECT_EQ(Query(kDay0 + 11 * kMinute, kDay0 + 65 * kMinute, &granularity, &since, &until),
            "checkout 5/500; nightly 5/500");
  EXPECT_EQ(granularity, "hour");
  EXPECT_EQ(since, kDay0);
  EXPECT_EQ(until, kDay0 + 2 * kHour);
  // Days, with no end: from the first day's midnight on.
  Store().SetUsageRetention({1, 1, 0});
  EXPECT_EQ(Query(kDay0 + kDay + kHour, 0, &granularity, &since, &until), "helpdesk 1/100");
  EXPECT_EQ(granularity, "day");
  EXPECT_EQ(since, kDay0 + kDay);
  EXPECT_EQ(until, 0);
}

// Bounds on whole hours or days are answered from the coarsest level that holds them: the
// same sums, from one row per key and period instead of one per minute.
TEST_P(UsageRetentionTest, BoundsOnWholePeriodsAreAnsweredFromTheCoarsestLevel) {
  StoreTwoDays();
  Store().SetUsageRetention({0, 0, 0});
  int64_t since = 0;
  int64_t until = 0;
  std::string granularity;
  EXPECT_EQ(Query(kDay0, kDay0 + kDay, &granularity, &since, &until),
            "checkout 5/500; nightly 5/500");
  EXPECT_EQ(granularity, "day");
  EXPECT_EQ(since, kDay0);
  EXPECT_EQ(until, kDay0 + kDay);
  EXPECT_EQ(Query(kDay0, kDay0 + kHour, &granularity), "checkout 5/500");
  EXPECT_EQ(granularity, "hour");
  EXPECT_EQ(Query(kDay0 + kHour, 0, &granularity), "helpdesk 1/100; nightly 5/500");
  EXPECT_EQ(granularity, "hour") << "no end: the hour bound decides";
  // Proof the day table answered: rows only it still has.
  ASSERT_TRUE(OpenRaw()->Exec("DELETE FROM usage; DELETE FROM usage_hour", "test").ok());
  EXPECT_EQ(Query(kDay0, kDay0 + kDay), "checkout 5/500; nightly 5/500");
}

// Per-minute series (capacity planning) come from minute rows only: never from a coarser level,
// even on whole days, and not at all once the minutes are past their retention.
TEST_P(UsageRetentionTest, GroupingByMinuteReadsMinuteRowsOnly) {
  StoreTwoDays();
  Store().SetUsageRetention({0, 0, 0});
  v1::UsageQuery query;
  query.set_since_unix_ms(kDay0);
  query.set_until_unix_ms(kDay0 + kDay);
  query.add_group_by("minute");
  query.add_group_by("tenant");
  absl::StatusOr<v1::UsageQueryResponse> series = Store().QueryUsage(query);
  ASSERT_TRUE(series.ok()) << series.status();
  EXPECT_EQ(series->granularity(), "minute");
  std::vector<std::string> rows;
  for (const v1::UsageRow& row : series->rows()) {
    rows.push_back(absl::StrCat((std::stoll(row.key().at("minute")) - kDay0) / kMinute, " ",
                                row.key().at("tenant"), " ", row.requests()));
  }
  EXPECT_THAT(rows, ::testing::ElementsAre("10 checkout 3", "11 checkout 2", "70 nightly 5"));
  Store().SetUsageRetention({1, 0, 0});  // the minutes of years ago are gone
  absl::StatusOr<v1::UsageQueryResponse> refused = Store().QueryUsage(query);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("past their retention"));
}

TEST_P(UsageRetentionTest, EachLevelIsPrunedToItsRetentionInBoundedSteps) {
  StoreTwoDays();
  sql::Connection* db = Db();
  auto count = [db](const char* table) { return Count(db, table); };
  ASSERT_EQ(count("usage"), 4);       // minutes 0:10, 0:11, 1:10 and the second day's 0:05
  ASSERT_EQ(count("usage_hour"), 3);  // the first day's hours 0 and 1, the second day's 0
  ASSERT_EQ(count("usage_day"), 3);   // the first day's two tenants, the second day's one
  ASSERT_EQ(count("usage_batches"), 1);
  // Now is three days after the first: minutes kept a day, hours two, days for ever.
  Store().SetUsageRetention({1, 2, 0});
  const int64_t now = kDay0 + 3 * kDay;
  int64_t deleted = 0;
  int steps = 0;
  for (;;) {
    absl::StatusOr<int64_t> step = Store().PruneUsage(now, 2);
    ASSERT_TRUE(step.ok()) << step.status();
    ASSERT_LE(*step, 2);
    deleted += *step;
    ++steps;
    if (*step < 2) {
      break;
    }
  }
  // Every minute (all over a day old) and the first day's two hours. The batch's marker was
  // stored today, so it stays: a replay is still recognized.
  EXPECT_EQ(deleted, 4 + 2);
  EXPECT_GE(steps, 3) << "at most two rows a step";
  EXPECT_EQ(count("usage"), 0);
  EXPECT_EQ(count("usage_hour"), 1);  // the second day's hour is within two days
  EXPECT_EQ(count("usage_day"), 3);
  EXPECT_EQ(count("usage_batches"), 1);
  EXPECT_EQ(Store().PruneUsage(now, 2).value_or(-1), 0) << "nothing left to prune";
  // The totals are still there, from the days.
  EXPECT_EQ(Query(kDay0, kDay0 + 2 * kDay), "checkout 5/500; helpdesk 1/100; nightly 5/500");
  // Two days on from today the marker goes with the last hour; days are kept for ever.
  const int64_t later = absl::ToUnixMillis(absl::Now()) + 2 * kDay;
  EXPECT_EQ(Store().PruneUsage(later, 100).value_or(-1), 2);
  EXPECT_EQ(count("usage_batches"), 0);
  EXPECT_EQ(count("usage_hour"), 0);
  EXPECT_EQ(count("usage_day"), 3);
}

TEST_P(UsageRetentionTest, MigrationFillsTheRollupsFromMinutesStoredBefore) {
  {
    // A file at schema version 2 holding minute rows, as stores before rollups left it.
    std::unique_ptr<sql::Connection> raw = OpenRaw();
    ASSERT_NE(raw, nullptr);
    ASSERT_TRUE(MigrateSchema(raw.get(), SchemaMigrations().subspan(0, 2)).ok());
    const std::string insert = absl::StrCat(
        "INSERT INTO usage VALUES (", kDay0 + 10 * kMinute,
        ", 'checkout', 'gpt-4o', 'b', 'i', 'eastus2', 200, 3, 1, 1, 0, 300, 3, 30), (",
        kDay0 + 20 * kMinute,
        ", 'checkout', 'gpt-4o', 'b', 'i', 'eastus2', 200, 2, 1, 1, 0, 200, 2, 20), (",
        kDay0 + kDay, ", 'nightly', 'gpt-4o', 'b', 'i', 'eastus2', 200, 4, 1, 1, 0, 400, 4, 40)");
    absl::Status inserted = raw->Exec(insert, "insert minutes");
    ASSERT_TRUE(inserted.ok()) << inserted;
  }
  for (const UsageRetention& retention :
       {UsageRetention{0, 0, 0}, UsageRetention{1, 0, 0}, UsageRetention{1, 1, 0}}) {
    Store().SetUsageRetention(retention);
    EXPECT_EQ(Query(kDay0, kDay0 + 2 * kDay), "checkout 5/500; nightly 4/400");
  }
}

// PostgreSQL keeps minutes in one partition per UTC day: the coming days' partitions exist
// as soon as the store opens, a day's minutes land in its own, retention drops past days whole,
// and minutes of a day without a partition (the default partition's) go row by row.
TEST_P(UsageRetentionTest, OnPostgresMinutesLiveInDayPartitionsDroppedWhole) {
  if (sqlite()) {
    GTEST_SKIP() << "SQLite has no partitions";
  }
  sql::Connection* db = Db();
  auto exists = [db](const std::string& table) {
    return test::QueryText(db, absl::StrCat("SELECT count(*) FROM pg_class WHERE relname = '",
                                            table, "'")) == "1";
  };
  const absl::Time now = absl::Now();
  const std::string today =
      absl::StrCat("usage_d", absl::FormatTime("%Y%m%d", now, absl::UTCTimeZone()));
  const std::string in_three_days = absl::StrCat(
      "usage_d", absl::FormatTime("%Y%m%d", now + absl::Hours(72), absl::UTCTimeZone()));
  EXPECT_TRUE(exists(today));
  EXPECT_TRUE(exists(in_three_days));

  // The days of StoreTwoDays get partitions; a minute four days earlier has none.
  ASSERT_TRUE(EnsureUsagePartitions(db, kDay0 + kDay / 2, 1).ok());
  StoreTwoDays();
  v1::UsageBatch early;
  early.set_agent_id("agent-eus2");
  early.set_sequence(2);
  *early.add_aggregates() = Aggregate(kDay0 - 4 * kDay, "checkout", 1, 100);
  ASSERT_TRUE(Store().StoreUsage(early).ok());
  EXPECT_EQ(test::QueryText(db,
                            "SELECT string_agg(part || ' ' || n, ', ' ORDER BY part) FROM "
                            "(SELECT tableoid::regclass::text AS part, count(*) AS n FROM usage "
                            "GROUP BY 1) AS parts"),
            "usage_d20231115 3, usage_d20231116 1, usage_default 1");
  // A day whose minutes already sit in the default partition keeps them there.
  ASSERT_TRUE(EnsureUsagePartitions(db, kDay0 - 4 * kDay, 1).ok());
  EXPECT_FALSE(exists("usage_d20231111"));
  EXPECT_TRUE(exists("usage_d20231112"));

  // Minutes kept a day, three days after kDay0: the past days' partitions go whole (not
  // counted), the default partition's old minute row by row.
  Store().SetUsageRetention({1, 0, 0});
  EXPECT_EQ(Store().PruneUsage(kDay0 + 3 * kDay, 100).value_or(-1), 1);
  for (const char* day :
       {"usage_d20231112", "usage_d20231114", "usage_d20231115", "usage_d20231116"}) {
    EXPECT_FALSE(exists(day)) << day;
  }
  EXPECT_TRUE(exists(today));
  EXPECT_EQ(Count(db, "usage"), 0);
  EXPECT_EQ(Count(db, "usage_day"), 4) << "the days' sums stay";
}

// A store of schema version 6 keeps its minutes when version 7 partitions them.
TEST_P(UsageRetentionTest, PartitioningKeepsTheMinutesAlreadyStored) {
  std::unique_ptr<sql::Connection> raw = OpenRaw();
  ASSERT_NE(raw, nullptr);
  const absl::Span<const Migration> all = SchemaMigrations();
  ASSERT_TRUE(MigrateSchema(raw.get(), all.subspan(0, 6)).ok());
  ASSERT_TRUE(raw->Exec("INSERT INTO usage VALUES (1700006400000, 'checkout', 'gpt-4o', "
                        "'i/d', 'i', 'eastus2', 200, 3, 1, 2, 0, 3, 3, 30)",
                        "test")
                  .ok());
  raw.reset();
  EXPECT_EQ(Query(kDay0, kDay0 + 30 * kMinute), "checkout 3/3");  // from the minutes
  EXPECT_EQ(StoredSchemaVersion(Db()).value_or(-1), LatestSchemaVersion());
}

SPILLWAY_STORE_BACKENDS(UsageRetentionTest);

}  // namespace
}  // namespace spillway
