// See usage_bench_fill.h. The rows are made by the database itself (a recursive CTE on SQLite,
// generate_series on PostgreSQL): a hundred million rows sent one by one would take hours.
#include "tests/bench/usage_bench_fill.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace spillway::bench {
namespace {

using sql::Dialect;
using sql::Statement;

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 86'400'000;
constexpr int64_t kMinutesPerDay = 1440;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One (tenant, route, backend, instance, region, status) the minutes draw from, with what
// shapes its counters: `base` and `spread` its requests per minute, `ok` whether tokens were
// served, `retried` whether each request took a second attempt (a 429 retried elsewhere).
struct Key {
  std::string tenant;
  std::string route;
  std::string backend_id;
  std::string instance;
  std::string region;
  int64_t status = 0;
  int64_t base = 1;
  int64_t spread = 1;
  int64_t ok = 0;
  int64_t retried = 0;

  auto Order() const { return std::tie(tenant, route, backend_id, instance, region, status); }
};

// Sorted as the usage table's primary key sorts them, so that minute rows made in key order
// append to its index instead of landing all over it.
std::vector<Key> MakeKeys(int tenants) {
  struct Stamp {
    const char* name;
    const char* regions[2];
  };
  static constexpr Stamp kStamps[] = {{"amer", {"eastus2", "westus3"}},
                                      {"apac", {"australiaeast", "japaneast"}},
                                      {"emea", {"swedencentral", "westeurope"}}};
  const int width = std::max<int>(5, static_cast<int>(absl::StrCat(tenants - 1).size()));
  std::vector<Key> keys;
  keys.reserve(static_cast<std::size_t>(tenants) * kKeysPerTenant);
  for (int t = 0; t < tenants; ++t) {
    const Stamp& stamp = kStamps[t % 3];
    // A few large tenants among many small ones, as chargeback sees them.
    const int64_t scale = t % 97 == 0 ? 40 : 1 + t % 7;
    for (const bool chat : {true, false}) {
      for (int b = 0; b < 2; ++b) {
        const int j = (t + b) % 4;
        Key key;
        key.tenant = absl::StrFormat("tenant-%0*d", width, t);
        key.route = absl::StrCat(stamp.name, chat ? "/chat" : "/embeddings");
        key.instance = absl::StrCat(stamp.name, "-aoai-", j);
        key.backend_id = absl::StrCat(key.instance, chat ? "/gpt-4o" : "/text-embedding-3-large");
        key.region = stamp.regions[j % 2];
        key.status = 200;
        key.base = scale;
        key.spread = 16;
        key.ok = 1;
        keys.push_back(key);
        key.status = chat ? 429 : (t % 5 == 0 ? 0 : 500);
        key.base = 1;
        key.spread = 3;
        key.ok = 0;
        key.retried = chat ? 1 : 0;
        keys.push_back(std::move(key));
      }
    }
  }
  std::sort(keys.begin(), keys.end(),
            [](const Key& a, const Key& b) { return a.Order() < b.Order(); });
  return keys;
}

constexpr char kUsageColumns[] =
    "tenant, route, backend_id, instance, region, status, requests, prompt_tokens, "
    "completion_tokens, cached_tokens, total_tokens, attempts, latency_ms_sum";

// The counters of key k in global minute g, from a cheap hash of both: varied enough that a
// wrong sum cannot pass by accident, and the same on both engines.
std::string CounterColumns() {
  const std::string h = "((g * 7919 + k.c * 104729) % 1000)";
  const std::string requests = absl::StrCat("(k.base * (1 + ", h, " % k.spread))");
  const std::string served = absl::StrCat("k.ok * ", requests);  // no tokens for an error
  return absl::StrCat(requests, ", ",                            //
                      served, " * (150 + ", h, " % 850), ",      // prompt
                      served, " * (20 + ", h, " % 380), ",       // completion
                      served, " * ((", h, " % 4) * 25), ",       // cached
                      served, " * (170 + ", h, " % 850 + ", h, " % 380), ",  // total
                      requests, " * (1 + k.retried), ",                      // attempts
                      requests, " * (80 + ", h, " % 2500)");                 // latency_ms_sum
}

// Global minute g holds K(g) = ((g+1)N)/M - (gN)/M rows (N rows over M minutes, evenly), its
// i-th the key floor(i * U / K(g)) + g % stride of the U keys: ascending in i, so each
// minute is written in key order, and shifted minute to minute so every key recurs.
constexpr char kRowsInMinute[] = "(((g + 1) * ?4) / ?5 - (g * ?4) / ?5)";

std::string MinuteInsert(Dialect dialect) {
  const std::string key_index = absl::StrCat("s.i * ?6 / ", kRowsInMinute, " + g % ?7");
  const std::string select =
      absl::StrCat("SELECT ?3 + g * ", kMinuteMs, ", k.tenant, k.route, k.backend_id, k.instance, ",
                   "k.region, k.status, ", CounterColumns());
  if (dialect == Dialect::kSqlite) {
    // CROSS JOIN fixes the loop order (minute, then i), which is the key order.
    return absl::StrCat(
        "WITH RECURSIVE minute(g) AS (SELECT ?1 UNION ALL SELECT g + 1 FROM minute ",
        "WHERE g + 1 < ?2) INSERT INTO usage (minute_unix_ms, ", kUsageColumns, ") ", select,
        " FROM minute CROSS JOIN bench_seq AS s CROSS JOIN bench_key AS k WHERE s.i < ",
        kRowsInMinute, " AND k.c = ", key_index);
  }
  return absl::StrCat("INSERT INTO usage (minute_unix_ms, ", kUsageColumns, ") ", select,
                      " FROM generate_series(CAST(?1 AS BIGINT), CAST(?2 AS BIGINT) - 1) AS g ",
                      "CROSS JOIN LATERAL generate_series(CAST(0 AS BIGINT), ", kRowsInMinute,
                      " - 1) AS s(i) JOIN bench_key AS k ON k.c = ", key_index);
}

// Exactly the sums schema step 3 rolls up, one period of the source at a time so each
// GROUP BY sorts one hour's rows rather than the whole table's.
std::string RollupInsert(const char* table, const char* source, const char* time_column,
                         int64_t period_ms) {
  return absl::StrCat(
      "INSERT INTO ", table, " (period_unix_ms, ", kUsageColumns, ") SELECT ", time_column, " - ",
      time_column, " % ", period_ms,
      ", tenant, route, backend_id, instance, region, status, SUM(requests), "
      "SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(total_tokens), "
      "SUM(attempts), SUM(latency_ms_sum) FROM ",
      source, " WHERE ", time_column, " >= ?1 AND ", time_column, " < ?2 ",
      "GROUP BY 1, tenant, route, backend_id, instance, region, status");
}

absl::Status ExecAll(sql::Connection* db, std::initializer_list<const char*> statements) {
  for (const char* statement : statements) {
    if (absl::Status status = db->Exec(statement, statement); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status LoadKeys(sql::Connection* db, const std::vector<Key>& keys) {
  const bool sqlite = db->dialect() == Dialect::kSqlite;
  // SQLite: INTEGER PRIMARY KEY is the rowid, so the per-row lookup is one B-tree search.
  if (absl::Status status = db->Exec(
          absl::StrCat("CREATE TEMP TABLE bench_key (c ", sqlite ? "INTEGER" : "BIGINT",
                       " PRIMARY KEY, tenant TEXT NOT NULL, route TEXT NOT NULL, backend_id "
                       "TEXT NOT NULL, instance TEXT NOT NULL, region TEXT NOT NULL, status "
                       "BIGINT NOT NULL, base BIGINT NOT NULL, spread BIGINT NOT NULL, ok BIGINT "
                       "NOT NULL, retried BIGINT NOT NULL)"),
          "create bench_key");
      !status.ok()) {
    return status;
  }
  sql::Transaction transaction(db);
  if (absl::Status status = transaction.Begin(sql::TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  absl::StatusOr<Statement> insert =
      Statement::Prepare(db,
                         "INSERT INTO bench_key VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                         "?10, ?11)",
                         "insert bench_key");
  if (!insert.ok()) {
    return insert.status();
  }
  for (std::size_t c = 0; c < keys.size(); ++c) {
    const Key& key = keys[c];
    if (absl::Status status = insert->Bind(1, static_cast<int64_t>(c))
                                  .Bind(2, key.tenant)
                                  .Bind(3, key.route)
                                  .Bind(4, key.backend_id)
                                  .Bind(5, key.instance)
                                  .Bind(6, key.region)
                                  .Bind(7, key.status)
                                  .Bind(8, key.base)
                                  .Bind(9, key.spread)
                                  .Bind(10, key.ok)
                                  .Bind(11, key.retried)
                                  .Run();
        !status.ok()) {
      return status;
    }
  }
  return transaction.Commit();
}

}  // namespace

absl::Status FillUsage(sql::Connection* db, const UsageShape& shape, FillReport& report,
                       const std::function<void(int day)>& progress) {
  const int64_t minutes = int64_t{shape.days} * kMinutesPerDay;
  const int64_t max_per_minute = (shape.rows + minutes - 1) / minutes;
  const std::vector<Key> keys = MakeKeys(shape.tenants);
  const int64_t key_count = static_cast<int64_t>(keys.size());
  if (shape.rows < 1 || shape.days < 1 || key_count < max_per_minute) {
    return absl::InvalidArgumentError(
        absl::StrCat(shape.rows, " rows over ", minutes, " minutes need at least ", max_per_minute,
                     " keys a minute, and ", shape.tenants, " tenants have ", key_count));
  }
  const int64_t stride = key_count / max_per_minute;
  const bool sqlite = db->dialect() == Dialect::kSqlite;

  // Durability is pointless while filling a scratch store; the journal mode goes back to
  // WAL afterwards, as spillway-cp opens it.
  if (absl::Status status =
          sqlite ? ExecAll(db, {"PRAGMA journal_mode = OFF", "PRAGMA synchronous = OFF",
                                "PRAGMA cache_size = -262144", "PRAGMA temp_store = MEMORY"})
                 : ExecAll(db, {"SET synchronous_commit = off", "SET work_mem = '256MB'"});
      !status.ok()) {
    return status;
  }
  if (absl::Status status = LoadKeys(db, keys); !status.ok()) {
    return status;
  }
  if (sqlite) {
    if (absl::Status status =
            db->Exec("CREATE TEMP TABLE bench_seq (i INTEGER PRIMARY KEY)", "create bench_seq");
        !status.ok()) {
      return status;
    }
    absl::StatusOr<Statement> seq = Statement::Prepare(
        db,
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) "
        "INSERT INTO bench_seq SELECT i FROM n",
        "fill bench_seq");
    if (!seq.ok()) {
      return seq.status();
    }
    if (absl::Status status = seq->Bind(1, max_per_minute).Run(); !status.ok()) {
      return status;
    }
  }

  absl::StatusOr<Statement> minute_insert =
      Statement::Prepare(db, MinuteInsert(db->dialect()), "insert minute rows");
  absl::StatusOr<Statement> hour_insert = Statement::Prepare(
      db, RollupInsert("usage_hour", "usage", "minute_unix_ms", kHourMs), "roll up hours");
  absl::StatusOr<Statement> day_insert = Statement::Prepare(
      db, RollupInsert("usage_day", "usage_hour", "period_unix_ms", kDayMs), "roll up days");
  for (const absl::StatusOr<Statement>* statement : {&minute_insert, &hour_insert, &day_insert}) {
    if (!statement->ok()) {
      return statement->status();
    }
  }
  for (int day = 0; day < shape.days; ++day) {
    const int64_t day_start = shape.first_day_unix_ms + day * kDayMs;
    sql::Transaction transaction(db);
    if (absl::Status status = transaction.Begin(sql::TransactionMode::kWrite); !status.ok()) {
      return status;
    }
    const auto minutes_start = std::chrono::steady_clock::now();
    if (absl::Status status = minute_insert->Bind(1, day * kMinutesPerDay)
                                  .Bind(2, (day + 1) * kMinutesPerDay)
                                  .Bind(3, shape.first_day_unix_ms)
                                  .Bind(4, shape.rows)
                                  .Bind(5, minutes)
                                  .Bind(6, key_count)
                                  .Bind(7, stride)
                                  .Run();
        !status.ok()) {
      return status;
    }
    report.minute_rows += minute_insert->Changes();
    report.minutes_s += SecondsSince(minutes_start);

    const auto rollups_start = std::chrono::steady_clock::now();
    for (int64_t hour = day_start; hour < day_start + kDayMs; hour += kHourMs) {
      if (absl::Status status = hour_insert->Bind(1, hour).Bind(2, hour + kHourMs).Run();
          !status.ok()) {
        return status;
      }
      report.hour_rows += hour_insert->Changes();
    }
    if (absl::Status status = day_insert->Bind(1, day_start).Bind(2, day_start + kDayMs).Run();
        !status.ok()) {
      return status;
    }
    report.day_rows += day_insert->Changes();
    if (absl::Status status = transaction.Commit(); !status.ok()) {
      return status;
    }
    report.rollups_s += SecondsSince(rollups_start);
    progress(day);
  }
  if (report.minute_rows != shape.rows) {
    return absl::InternalError(
        absl::StrCat("the fill made ", report.minute_rows, " minute rows, not ", shape.rows));
  }

  const auto maintenance_start = std::chrono::steady_clock::now();
  if (absl::Status status =
          sqlite ? ExecAll(db, {"DROP TABLE bench_key", "DROP TABLE bench_seq",
                                "PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL"})
                 // One statement each: VACUUM cannot run inside the implicit transaction of
                 // a multi-statement string. Autovacuum would otherwise start on a hundred
                 // million new rows in the middle of the measurement.
                 : ExecAll(db, {"DROP TABLE bench_key", "VACUUM ANALYZE usage",
                                "VACUUM ANALYZE usage_hour", "VACUUM ANALYZE usage_day"});
      !status.ok()) {
    return status;
  }
  report.maintenance_s = SecondsSince(maintenance_start);
  return absl::OkStatus();
}

absl::StatusOr<TotalsByTenant> MinuteTotalsByTenant(sql::Connection* db, int64_t since_unix_ms,
                                                    int64_t until_unix_ms) {
  absl::StatusOr<Statement> select = Statement::Prepare(
      db,
      "SELECT tenant, SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), "
      "SUM(cached_tokens), SUM(total_tokens), "
      "SUM(CASE WHEN status = 429 OR status BETWEEN 200 AND 399 THEN 0 ELSE requests END), "
      "SUM(CASE WHEN status = 429 THEN requests ELSE 0 END) "
      "FROM usage WHERE minute_unix_ms >= ?1 AND minute_unix_ms < ?2 GROUP BY tenant",
      "sum minute rows per tenant");
  if (!select.ok()) {
    return select.status();
  }
  select->Bind(1, since_unix_ms).Bind(2, until_unix_ms);
  TotalsByTenant totals;
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return totals;
    }
    TenantTotals& t = totals[select->Text(0)];
    t.requests = select->Int(1);
    t.prompt_tokens = select->Int(2);
    t.completion_tokens = select->Int(3);
    t.cached_tokens = select->Int(4);
    t.total_tokens = select->Int(5);
    t.failed_requests = select->Int(6);
    t.throttled_requests = select->Int(7);
  }
}

}  // namespace spillway::bench
