// Usage storage: per-minute sums upserted in place, replays recognized by their marker, and
// GROUP BY queries built only from a fixed list of columns.
#include "controlplane/store/usage_table.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "controlplane/store/sql.h"
#include "controlplane/store/usage_partitions.h"

namespace spillway {
namespace {

using sql::Statement;
using sql::Transaction;

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

// The stored levels, finest first. Table and column names come only from here.
struct Level {
  absl::string_view name;
  absl::string_view table;
  absl::string_view time_column;
  int64_t period_ms;
  int64_t UsageRetention::*days;
};
constexpr Level kLevels[] = {
    {"minute", "usage", "minute_unix_ms", kMinuteMs, &UsageRetention::minute_days},
    {"hour", "usage_hour", "period_unix_ms", 3'600'000, &UsageRetention::hour_days},
    {"day", "usage_day", "period_unix_ms", kDayMs, &UsageRetention::day_days},
};

// The first instant a level still holds at `now_ms`; 0 when it is kept for ever.
int64_t KeptSince(const Level& level, const UsageRetention& retention, int64_t now_ms) {
  const int64_t days = retention.*level.days;
  return days <= 0 ? 0 : now_ms - days * kDayMs;
}

// Counters are stored as signed 64-bit integers.
absl::Status CheckCounters(const v1::UsageBatch& batch, int index) {
  const v1::UsageAggregate& a = batch.aggregates(index);
  const std::pair<absl::string_view, uint64_t> counters[] = {
      {"requests", a.requests()},
      {"prompt_tokens", a.prompt_tokens()},
      {"completion_tokens", a.completion_tokens()},
      {"cached_tokens", a.cached_tokens()},
      {"total_tokens", a.total_tokens()},
      {"attempts", a.attempts()},
      {"latency_ms_sum", a.latency_ms_sum()}};
  for (const auto& [field, value] : counters) {
    if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat("usage batch ", batch.sequence(), " of agent '", batch.agent_id(),
                       "': aggregate ", index + 1, " ", field, " ", value, " is out of range"));
    }
  }
  // PostgreSQL's text cannot hold a NUL byte; refused on both engines, so they agree.
  const std::pair<absl::string_view, absl::string_view> names[] = {
      {"tenant", a.tenant()},     {"route", a.route()},   {"backend_id", a.backend_id()},
      {"instance", a.instance()}, {"region", a.region()}, {"agent_id", batch.agent_id()}};
  for (const auto& [field, value] : names) {
    if (value.find('\0') != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "usage batch ", batch.sequence(), " of agent '", absl::CHexEscape(batch.agent_id()),
          "': aggregate ", index + 1, " ", field, " holds a NUL byte"));
    }
  }
  if (a.minute_unix_ms() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("usage batch ", batch.sequence(), " of agent '",
                                                   batch.agent_id(), "': aggregate ", index + 1,
                                                   " minute_unix_ms is negative"));
  }
  return absl::OkStatus();
}

// The dimensions a usage query may group by, and their columns. SQL is built only from
// this table, never from the caller's strings.
struct Dimension {
  absl::string_view name;
  absl::string_view column;
};
// "minute" groups by the minute itself (its start, Unix ms), for per-minute series such as
// capacity planning's; its column is the minute table's time column, so only minute rows answer.
constexpr absl::string_view kMinuteDimension = "minute";
constexpr Dimension kDimensions[] = {
    {"tenant", "tenant"},
    {"route", "route"},
    {"deployment", "backend_id"},
    {"instance", "instance"},
    {"region", "region"},
    {"status", "status"},
    {kMinuteDimension, "minute_unix_ms"},
};

// The counters a usage row sums, in the order StoreUsageBatch binds them (?8 on).
constexpr absl::string_view kCounterColumns[] = {
    "requests",     "prompt_tokens", "completion_tokens", "cached_tokens",
    "total_tokens", "attempts",      "latency_ms_sum"};

// Adds one aggregate to `level`'s row for its period and key, creating the row if needed.
std::string UpsertSql(const Level& level) {
  std::string sql = absl::StrCat("INSERT INTO ", level.table, " (", level.time_column,
                                 ", tenant, route, backend_id, instance, region, status, ",
                                 absl::StrJoin(kCounterColumns, ", "),
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
                                 "?13, ?14) ON CONFLICT (",
                                 level.time_column,
                                 ", tenant, route, backend_id, instance, region, status) "
                                 "DO UPDATE SET ");
  // Qualified: in PostgreSQL a bare column here is ambiguous with excluded's.
  for (const absl::string_view column : kCounterColumns) {
    absl::StrAppend(&sql, column == kCounterColumns[0] ? "" : ", ", column, " = ", level.table, ".",
                    column, " + excluded.", column);
  }
  return sql;
}

}  // namespace

absl::Status StoreUsageBatch(sql::Connection* db, const v1::UsageBatch& batch, bool* newly_stored) {
  if (newly_stored != nullptr) {
    *newly_stored = false;
  }
  if (batch.agent_id().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage batch ", batch.sequence(), ": agent_id is empty"));
  }
  for (int i = 0; i < batch.aggregates_size(); ++i) {
    if (absl::Status status = CheckCounters(batch, i); !status.ok()) {
      return status;
    }
  }
  const std::string what =
      absl::StrCat("store usage batch ", batch.sequence(), " of agent '", batch.agent_id(), "'");
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(sql::TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  // The marker and the sums commit together: a batch is either counted and marked, or
  // neither, so a replay after any crash is counted exactly once.
  absl::StatusOr<Statement> mark = Statement::Prepare(
      db,
      "INSERT INTO usage_batches (agent_id, sequence, stored_at_ms) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (agent_id, sequence) DO NOTHING",
      what);
  if (!mark.ok()) {
    return mark.status();
  }
  if (absl::Status status = mark->Bind(1, batch.agent_id())
                                .Bind(2, static_cast<int64_t>(batch.sequence()))
                                .Bind(3, absl::ToUnixMillis(absl::Now()))
                                .Run();
      !status.ok()) {
    return status;
  }
  if (mark->Changes() == 0) {
    return absl::OkStatus();  // a replay: already counted
  }
  for (const Level& level : kLevels) {
    absl::StatusOr<Statement> add = Statement::Prepare(db, UpsertSql(level), what);
    if (!add.ok()) {
      return add.status();
    }
    for (const v1::UsageAggregate& a : batch.aggregates()) {
      // Keyed by the start of the period, whatever instant within it the agent sent.
      const int64_t period = a.minute_unix_ms() - a.minute_unix_ms() % level.period_ms;
      add->Bind(1, period)
          .Bind(2, a.tenant())
          .Bind(3, a.route())
          .Bind(4, a.backend_id())
          .Bind(5, a.instance())
          .Bind(6, a.region())
          .Bind(7, int64_t{a.status()})
          .Bind(8, static_cast<int64_t>(a.requests()))
          .Bind(9, static_cast<int64_t>(a.prompt_tokens()))
          .Bind(10, static_cast<int64_t>(a.completion_tokens()))
          .Bind(11, static_cast<int64_t>(a.cached_tokens()))
          .Bind(12, static_cast<int64_t>(a.total_tokens()))
          .Bind(13, static_cast<int64_t>(a.attempts()))
          .Bind(14, static_cast<int64_t>(a.latency_ms_sum()));
      if (absl::Status status = add->Run(); !status.ok()) {
        return status;
      }
    }
  }
  absl::Status committed = transaction.Commit();
  if (committed.ok() && newly_stored != nullptr) {
    *newly_stored = true;
  }
  return committed;
}

absl::StatusOr<v1::UsageQueryResponse> QueryUsageTable(sql::Connection* db,
                                                       const v1::UsageQuery& query,
                                                       const UsageRetention& retention,
                                                       int64_t now_ms) {
  std::vector<const Dimension*> group;
  for (const std::string& name : query.group_by()) {
    const Dimension* found = nullptr;
    for (const Dimension& dimension : kDimensions) {
      if (dimension.name == name) {
        found = &dimension;
      }
    }
    if (found == nullptr) {
      std::vector<absl::string_view> known;
      for (const Dimension& dimension : kDimensions) {
        known.push_back(dimension.name);
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "usage: cannot group by '", name, "' (known: ", absl::StrJoin(known, ", "), ")"));
    }
    if (std::find(group.begin(), group.end(), found) == group.end()) {
      group.push_back(found);
    }
  }
  constexpr int64_t kNoEnd = std::numeric_limits<int64_t>::max();
  int64_t since = std::max<int64_t>(0, query.since_unix_ms());
  int64_t until = query.until_unix_ms() == 0 ? kNoEnd : query.until_unix_ms();
  if (until < since) {
    return absl::InvalidArgumentError(absl::StrCat("usage: until ", query.until_unix_ms(),
                                                   " is before since ", query.since_unix_ms()));
  }
  const Level* level = &kLevels[0];
  for (const Level& candidate : kLevels) {
    level = &candidate;
    if (since >= KeptSince(candidate, retention, now_ms)) {
      break;  // the finest level that still holds the whole range (the coarsest otherwise)
    }
  }
  const bool per_minute = std::any_of(group.begin(), group.end(), [](const Dimension* dimension) {
    return dimension->name == kMinuteDimension;
  });
  if (per_minute && level != &kLevels[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "usage: grouping by minute needs minute rows, and those from ", query.since_unix_ms(),
        " on are past their retention (", retention.minute_days, " days)"));
  }
  // A coarser level kept for the range, whose periods the bounds fall on, gives the same sums
  // from far fewer rows: a day's totals are one row per key, not 1,440 (issue 20: a day over
  // 100 million minute rows answers in milliseconds). Not for a per-minute grouping.
  for (const Level& coarser : kLevels) {
    if (!per_minute && coarser.period_ms > level->period_ms &&
        since >= KeptSince(coarser, retention, now_ms) && since % coarser.period_ms == 0 &&
        (until == kNoEnd || until % coarser.period_ms == 0)) {
      level = &coarser;
    }
  }
  since -= since % level->period_ms;
  if (until != kNoEnd && until % level->period_ms != 0) {
    until += level->period_ms - until % level->period_ms;
  }
  std::vector<absl::string_view> columns;
  for (const Dimension* dimension : group) {
    columns.push_back(dimension->column);
  }
  const std::string column_list = absl::StrJoin(columns, ", ");
  // Outcome classes by the final status the client saw: 429 is "throttled"; any other 4xx
  // or 5xx, and 0 (no response at all, e.g. the client went away), is "failed".
  std::string sql = absl::StrCat(
      "SELECT ", column_list, columns.empty() ? "" : ", ",
      "SUM(requests), SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), "
      "SUM(total_tokens), "
      "SUM(CASE WHEN status = 0 OR (status >= 400 AND status <> 429) THEN requests ELSE 0 END), "
      "SUM(CASE WHEN status = 429 THEN requests ELSE 0 END) "
      "FROM ",
      level->table, " WHERE ", level->time_column, " >= ?1 AND ", level->time_column, " < ?2");
  if (!columns.empty()) {
    absl::StrAppend(&sql, " GROUP BY ", column_list);
  }
  // Without GROUP BY an empty range would still give one row of NULLs.
  absl::StrAppend(&sql, " HAVING COUNT(*) > 0");
  if (!columns.empty()) {
    absl::StrAppend(&sql, " ORDER BY ", column_list);
  }

  absl::StatusOr<Statement> select = Statement::Prepare(db, sql, "query usage");
  if (!select.ok()) {
    return select.status();
  }
  select->Bind(1, since).Bind(2, until);
  v1::UsageQueryResponse response;
  response.set_granularity(std::string(level->name));
  response.set_since_unix_ms(since);
  response.set_until_unix_ms(until == kNoEnd ? 0 : until);
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return response;
    }
    v1::UsageRow& out = *response.add_rows();
    const int n = static_cast<int>(group.size());
    for (int i = 0; i < n; ++i) {
      (*out.mutable_key())[std::string(group[i]->name)] = select->Text(i);
    }
    out.set_requests(static_cast<uint64_t>(select->Int(n)));
    out.set_prompt_tokens(static_cast<uint64_t>(select->Int(n + 1)));
    out.set_completion_tokens(static_cast<uint64_t>(select->Int(n + 2)));
    out.set_cached_tokens(static_cast<uint64_t>(select->Int(n + 3)));
    out.set_total_tokens(static_cast<uint64_t>(select->Int(n + 4)));
    out.set_failed_requests(static_cast<uint64_t>(select->Int(n + 5)));
    out.set_throttled_requests(static_cast<uint64_t>(select->Int(n + 6)));
  }
}

absl::StatusOr<int64_t> PruneUsageTable(sql::Connection* db, const UsageRetention& retention,
                                        int64_t now_ms, int64_t max_rows) {
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(sql::TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  struct Target {
    absl::string_view table;
    absl::string_view time_column;
    int64_t before;
  };
  std::vector<Target> targets;
  for (const Level& level : kLevels) {
    if (const int64_t kept_since = KeptSince(level, retention, now_ms); kept_since > 0) {
      targets.push_back({level.table, level.time_column, kept_since});
    }
  }
  // A replayed batch is recognized for as long as its minutes are kept.
  if (const int64_t kept_since = KeptSince(kLevels[0], retention, now_ms); kept_since > 0) {
    targets.push_back({"usage_batches", "stored_at_ms", kept_since});
  }
  // PostgreSQL's minutes go a whole day at a time first (not counted in what this returns);
  // what is left is the default partition's rows and the part of the oldest kept day.
  if (!targets.empty() && targets.front().table == kLevels[0].table) {
    if (absl::StatusOr<int> dropped = DropUsagePartitionsBefore(db, targets.front().before);
        !dropped.ok()) {
      return dropped.status();
    }
  }
  int64_t deleted = 0;
  for (const Target& target : targets) {
    if (deleted >= max_rows) {
      break;
    }
    // DELETE has no LIMIT in either engine: the rows go by their physical id (on PostgreSQL
    // with the partition's, ctid being unique only within one).
    const absl::string_view row_id =
        db->dialect() == sql::Dialect::kSqlite ? "rowid" : "tableoid, ctid";
    absl::StatusOr<Statement> prune = Statement::Prepare(
        db,
        absl::StrCat("DELETE FROM ", target.table, " WHERE (", row_id, ") IN (SELECT ", row_id,
                     " FROM ", target.table, " WHERE ", target.time_column, " < ?1 LIMIT ?2)"),
        absl::StrCat("prune ", target.table));
    if (!prune.ok()) {
      return prune.status();
    }
    if (absl::Status status = prune->Bind(1, target.before).Bind(2, max_rows - deleted).Run();
        !status.ok()) {
      return status;
    }
    deleted += prune->Changes();
  }
  if (absl::Status status = transaction.Commit(); !status.ok()) {
    return status;
  }
  return deleted;
}

}  // namespace spillway
