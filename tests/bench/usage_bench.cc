// spillway-bench-usage: fills a store with 100 million minute rows of usage and times the real
// spillwayctl usage against the real spillway-cp (issue 20: a day's per-tenant totals < 1 s).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/command_line.h"
#include "controlplane/store/postgres_connection.h"
#include "controlplane/store/sqlite_connection.h"
#include "controlplane/store/store.h"
#include "tests/bench/controlplane_bench_util.h"
#include "tests/bench/usage_bench_fill.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#ifdef SPILLWAY_BENCH_HAVE_POSTGRES
#include "tests/support/postgres_server.h"
#endif

extern char** environ;

ABSL_FLAG(int64_t, rows, 100'000'000, "minute rows of usage to fill the store with");
ABSL_FLAG(int, days, 14, "whole UTC days the minute rows cover, the last ones before today");
ABSL_FLAG(int, tenants, 10'000, "tenants the rows are spread over (8 keys each)");
ABSL_FLAG(int, runs, 5, "times each spillwayctl usage command is run and timed");
ABSL_FLAG(std::string, engine, "all",
          "'sqlite', 'postgres' (skipped where PostgreSQL is not installed) or 'all'");
ABSL_FLAG(std::string, cp, SPILLWAY_CP_BIN, "path of the spillway-cp binary to measure");
ABSL_FLAG(std::string, ctl, SPILLWAY_CTL_BIN, "path of the spillwayctl binary to measure");
ABSL_FLAG(std::string, json, "", "also write the figures to this file as JSON");

namespace spillway::bench {
namespace {

constexpr char kProgram[] = "spillway-bench-usage";
// Issue 20: a day's per-tenant totals over 100 million minute rows in under a second.
constexpr double kDayLimitMs = 1000;
constexpr int64_t kDayMs = 86'400'000;
constexpr absl::Duration kStartLimit = absl::Seconds(60);
// What SignalCleanup removes on Ctrl-C or a script's timeout: spillway-cp's process group and
// the engine's scratch directory (tens of gigabytes of store).
constexpr char kCpSlot[] = "cp";
constexpr char kDirSlot[] = "dir";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct CommandResult {
  double ms = 0;
  double cpu_ms = 0;  // the command's own CPU time, user and system
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs argv[0] with stdout and stderr in files, timed from spawn to exit: the whole command
// as an operator waits for it, process start-up included. The JSON on stdout stays apart
// from anything on stderr.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& scratch) {
  const std::string out_path = scratch + "/ctl.out";
  const std::string err_path = scratch + "/ctl.err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  // The command gets the signals this process blocks or ignores back (SignalCleanup, SIGPIPE).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& arg : argv) {
    args.push_back(const_cast<char*>(arg.c_str()));
  }
  args.push_back(nullptr);

  CommandResult result;
  const Clock::time_point start = Clock::now();
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return absl::InternalError(absl::StrCat("cannot run ", argv[0], ": ", std::strerror(spawned)));
  }
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(absl::StrCat("wait4: ", std::strerror(errno)));
    }
  }
  result.ms = MillisBetween(start, Clock::now());
  result.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
                  (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

// What process `pid` has used so far, all threads: CPU time and bytes read from the disk
// (page-cache hits are not reads), so a slow run shows whether it computed, waited for the
// disk, or waited for a core on a busy machine.
struct ProcessUse {
  double cpu_ms = 0;
  double read_mb = 0;
};

ProcessUse ReadProcessUse(pid_t pid) {
  ProcessUse use;
  use.cpu_ms = CpuMillis(pid);
  std::istringstream io(ReadFile(absl::StrCat("/proc/", pid, "/io")));
  std::string line;
  while (std::getline(io, line)) {
    constexpr absl::string_view kReadBytes = "read_bytes: ";
    if (absl::StartsWith(line, kReadBytes)) {
      use.read_mb = std::strtod(line.c_str() + kReadBytes.size(), nullptr) / 1e6;
    }
  }
  return use;
}

struct Parsed {
  std::string granularity;
  TotalsByTenant totals;
};

absl::StatusOr<Parsed> ParseUsageJson(const std::string& text) {
  boost::system::error_code error;
  const boost::json::value json = boost::json::parse(text, error);
  if (error || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("not a JSON object: ", error.message()));
  }
  Parsed parsed;
  const boost::json::object& response = json.as_object();
  if (const boost::json::value* granularity = response.if_contains("granularity");
      granularity != nullptr && granularity->is_string()) {
    parsed.granularity = granularity->as_string();
  }
  const boost::json::value* rows = response.if_contains("rows");
  if (rows == nullptr || !rows->is_array()) {
    return absl::InvalidArgumentError("no \"rows\" array");
  }
  // uint64 fields are strings in protobuf's JSON.
  auto counter = [](const boost::json::object& row, const char* name) -> absl::StatusOr<int64_t> {
    const boost::json::value* value = row.if_contains(name);
    int64_t number = 0;
    if (value == nullptr || !value->is_string() ||
        !absl::SimpleAtoi(absl::string_view(value->as_string().data(), value->as_string().size()),
                          &number)) {
      return absl::InvalidArgumentError(absl::StrCat("a row without a numeric ", name));
    }
    return number;
  };
  for (const boost::json::value& value : rows->as_array()) {
    if (!value.is_object()) {
      return absl::InvalidArgumentError("a row that is not an object");
    }
    const boost::json::object& row = value.as_object();
    const boost::json::value* key = row.if_contains("key");
    const boost::json::value* tenant =
        key != nullptr && key->is_object() ? key->as_object().if_contains("tenant") : nullptr;
    if (tenant == nullptr || !tenant->is_string()) {
      return absl::InvalidArgumentError("a row without key.tenant");
    }
    TenantTotals& totals = parsed.totals[std::string(tenant->as_string())];
    const std::pair<const char*, int64_t TenantTotals::*> fields[] = {
        {"requests", &TenantTotals::requests},
        {"prompt_tokens", &TenantTotals::prompt_tokens},
        {"completion_tokens", &TenantTotals::completion_tokens},
        {"cached_tokens", &TenantTotals::cached_tokens},
        {"total_tokens", &TenantTotals::total_tokens},
        {"failed_requests", &TenantTotals::failed_requests},
        {"throttled_requests", &TenantTotals::throttled_requests}};
    for (const auto& [name, field] : fields) {
      absl::StatusOr<int64_t> number = counter(row, name);
      if (!number.ok()) {
        return number.status();
      }
      totals.*field = *number;
    }
  }
  return parsed;
}

// The table spillwayctl prints by default: a header, then TENANT and seven counters a line.
absl::StatusOr<Parsed> ParseUsageTable(const std::string& text) {
  Parsed parsed;
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    std::string tenant;
    TenantTotals totals;
    if (!(cells >> tenant >> totals.requests >> totals.prompt_tokens >> totals.completion_tokens >>
          totals.cached_tokens >> totals.total_tokens >> totals.failed_requests >>
          totals.throttled_requests)) {
      return absl::InvalidArgumentError(absl::StrCat("a line that is not a tenant's row: ", line));
    }
    parsed.totals[tenant] = totals;
  }
  return parsed;
}

// "" when equal; else how they differ, naming a few tenants.
std::string CompareTotals(const TotalsByTenant& got, const TotalsByTenant& want) {
  std::vector<std::string> differences;
  int count = 0;
  for (const auto& [tenant, totals] : want) {
    const auto it = got.find(tenant);
    if (it == got.end() || !(it->second == totals)) {
      if (++count <= 3) {
        differences.push_back(it == got.end()
                                  ? absl::StrCat(tenant, " missing")
                                  : absl::StrCat(tenant, " requests ", it->second.requests,
                                                 " (want ", totals.requests, "), total tokens ",
                                                 it->second.total_tokens, " (want ",
                                                 totals.total_tokens, ")"));
      }
    }
  }
  for (const auto& [tenant, totals] : got) {
    if (!want.contains(tenant) && ++count <= 3) {
      differences.push_back(absl::StrCat(tenant, " not expected"));
    }
  }
  if (count == 0) {
    return "";
  }
  return absl::StrCat(count, count == 1 ? " tenant differs" : " tenants differ",
                      " from the minute rows' sums: ", absl::StrJoin(differences, "; "));
}

std::string Day(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%d", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}
std::string Instant(int64_t unix_ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMillis(unix_ms), absl::UTCTimeZone());
}

// One spillwayctl usage command, run --runs times, and the totals it must print.
struct Query {
  std::string name;  // e.g. "day_by_tenant"
  std::string since;
  std::string until;
  int64_t since_ms = 0;
  int64_t until_ms = 0;
  std::string level;            // the table that should answer it
  std::string format = "json";  // spillwayctl's -o
  TotalsByTenant want;
  std::vector<double> ms;
  std::vector<double> cp_cpu_ms;
  std::vector<double> ctl_cpu_ms;
  std::vector<double> cp_read_mb;
  std::string granularity;  // as the response says
  std::string error;        // why its answer is wrong, or ""
};

// The scratch directory, the store's location and, on PostgreSQL, the server: what one
// engine's run needs, torn down in reverse order.
struct Engine {
  Engine(std::string name, test::ScopedTempDir dir) : name(std::move(name)), dir(std::move(dir)) {}

  std::string name;  // "sqlite", "postgres"
  test::ScopedTempDir dir;
  StoreLocation location;
  std::vector<std::string> cp_store_args;
#ifdef SPILLWAY_BENCH_HAVE_POSTGRES
  std::unique_ptr<test::PostgresServer> postgres;
#endif
};

// " from <level> rows" as the JSON said, or "" where the output does not say.
std::string Answered(const Query& query) {
  return query.granularity.empty() ? "" : absl::StrCat(" from ", query.granularity, " rows");
}

// The queries, all on the middle day of the data.
std::vector<Query> MakeQueries(const UsageShape& shape) {
  constexpr int64_t kHourMs = 3'600'000;
  constexpr int64_t kHalfHourMs = 1'800'000;
  const int64_t day = shape.first_day_unix_ms + shape.days / 2 * kDayMs;
  std::vector<Query> queries;
  // Bounds on whole days (the target), on whole hours, and off the hour: answered from the
  // day, hour and minute rows.
  auto add = [&](const char* name, std::string since, int64_t since_ms, std::string until,
                 int64_t until_ms, const char* level) {
    Query& query = queries.emplace_back();
    query.name = name;
    query.since = std::move(since);
    query.until = std::move(until);
    query.since_ms = since_ms;
    query.until_ms = until_ms;
    query.level = level;
  };
  add("day_by_tenant", Day(day), day, Day(day + kDayMs), day + kDayMs, "day");
  // The same as the operator's default table: how much of the time is spent printing JSON.
  add("day_by_tenant_table", Day(day), day, Day(day + kDayMs), day + kDayMs, "day");
  queries.back().format = "table";
  add("hours_by_tenant", Instant(day + kHourMs), day + kHourMs, Instant(day + kDayMs + kHourMs),
      day + kDayMs + kHourMs, "hour");
  add("minutes_by_tenant", Instant(day + kHalfHourMs), day + kHalfHourMs,
      Instant(day + kDayMs + kHalfHourMs), day + kDayMs + kHalfHourMs, "minute");
  return queries;
}

absl::StatusOr<int64_t> StoreBytes(const Engine& engine, sql::Connection* db) {
  if (engine.location.kind == StoreLocation::Kind::kSqlite) {
    std::error_code error;
    int64_t bytes = 0;
    for (const char* suffix : {"", "-wal", "-journal"}) {
      const std::string path = engine.location.sqlite_path + suffix;
      if (std::filesystem::exists(path, error)) {
        bytes += static_cast<int64_t>(std::filesystem::file_size(path, error));
      }
    }
    return bytes;
  }
  absl::StatusOr<sql::Statement> size =
      sql::Statement::Prepare(db, "SELECT pg_database_size(current_database())", "database size");
  if (!size.ok()) {
    return size.status();
  }
  absl::StatusOr<bool> row = size->Step();
  if (!row.ok()) {
    return row.status();
  }
  return *row ? size->Int(0) : 0;
}

class UsageBench {
 public:
  UsageBench(SignalCleanup& cleanup, const UsageShape& shape, Engine& engine,
             boost::json::object& json)
      : cleanup_(cleanup),
        shape_(shape),
        engine_(engine),
        json_(json),
        queries_(MakeQueries(shape)) {}

  // Creates the schema as spillway-cp does, fills the usage tables and sums what each query
  // must answer straight from the minute rows (the rollups are under test).
  absl::Status Fill() {
    {
      absl::StatusOr<std::unique_ptr<TopologyStore>> store = TopologyStore::Open(engine_.location);
      if (!store.ok()) {
        return store.status();
      }
    }
    absl::StatusOr<std::unique_ptr<sql::Connection>> db =
        engine_.location.kind == StoreLocation::Kind::kSqlite
            ? sql::OpenSqlite(engine_.location.sqlite_path)
            : sql::OpenPostgres(engine_.location.postgres_url, engine_.location.Display());
    if (!db.ok()) {
      return db.status();
    }
    const Clock::time_point start = Clock::now();
    FillReport fill;
    if (absl::Status status =
            FillUsage(db->get(), shape_, fill,
                      [&](int filled) {
                        std::fprintf(stderr, "%s: %s: day %d of %d filled, %.0f s\n", kProgram,
                                     engine_.name.c_str(), filled + 1, shape_.days,
                                     MillisBetween(start, Clock::now()) / 1000);
                      });
        !status.ok()) {
      return status;
    }
    const double fill_s = MillisBetween(start, Clock::now()) / 1000;
    absl::StatusOr<int64_t> bytes = StoreBytes(engine_, db->get());
    if (!bytes.ok()) {
      return bytes.status();
    }
    const std::string vacuum =
        engine_.location.kind == StoreLocation::Kind::kPostgres
            ? absl::StrCat(", then VACUUM ANALYZE in ", std::llround(fill.maintenance_s), " s")
            : "";
    std::printf(
        "filled in %.0f s: %lld minute rows in %.0f s, rolled up to %lld hour and %lld day "
        "rows in %.0f s%s; %.1f GB on disk\n",
        fill_s, static_cast<long long>(fill.minute_rows), fill.minutes_s,
        static_cast<long long>(fill.hour_rows), static_cast<long long>(fill.day_rows),
        fill.rollups_s, vacuum.c_str(), static_cast<double>(*bytes) / 1e9);
    std::fflush(stdout);
    json_["fill_s"] = std::llround(fill_s);
    json_["minute_fill_s"] = std::llround(fill.minutes_s);
    json_["rollup_fill_s"] = std::llround(fill.rollups_s);
    json_["maintenance_s"] = std::llround(fill.maintenance_s);
    json_["bytes"] = *bytes;
    json_["minute_rows"] = fill.minute_rows;
    json_["hour_rows"] = fill.hour_rows;
    json_["day_rows"] = fill.day_rows;

    for (Query& query : queries_) {
      if (const auto same = std::find_if(queries_.begin(), queries_.end(),
                                         [&](const Query& other) {
                                           return other.since_ms == query.since_ms &&
                                                  other.until_ms == query.until_ms;
                                         });
          &*same != &query) {
        query.want = same->want;
        continue;
      }
      const Clock::time_point summing = Clock::now();
      absl::StatusOr<TotalsByTenant> want =
          MinuteTotalsByTenant(db->get(), query.since_ms, query.until_ms);
      if (!want.ok()) {
        return want.status();
      }
      query.want = *std::move(want);
      if (&query == &queries_.front()) {
        // What the day's answer would cost without its rollup, for comparison.
        const double ms = MillisBetween(summing, Clock::now());
        std::printf("expected totals for %s: %zu tenants, summed from the minute rows in %.0f ms\n",
                    query.since.c_str(), query.want.size(), ms);
        json_["day_sum_from_minutes_ms"] = std::llround(ms);
      }
    }
    return absl::OkStatus();
  }

  // Starts spillway-cp on the store and runs each query --runs times with spillwayctl,
  // checking every answer.
  absl::Status TimeQueries() {
    absl::StatusOr<std::unique_ptr<test::ChildProcess>> cp = StartControlPlane();
    if (!cp.ok()) {
      return cp.status();
    }
    // Forgotten before the process is killed by its destructor (declared later, goes first).
    struct ForgetGroup {
      SignalCleanup& cleanup;
      ~ForgetGroup() { cleanup.Set(kCpSlot, 0, ""); }
    } forget_group{cleanup_};
    const absl::StatusOr<int> port = (*cp)->WaitForListenPort(kStartLimit);
    if (!port.ok()) {
      return absl::UnavailableError(
          absl::StrCat("spillway-cp did not start: ", port.status().message()));
    }
    const std::string server = absl::StrCat("127.0.0.1:", *port);
    for (Query& query : queries_) {
      for (int r = 0; r < absl::GetFlag(FLAGS_runs); ++r) {
        if (absl::Status status = RunQuery(server, (*cp)->pid(), query); !status.ok()) {
          return status;
        }
      }
      std::vector<std::string> runs;
      for (double ms : query.ms) {
        runs.push_back(absl::StrCat(std::llround(ms)));
      }
      std::printf(
          "spillwayctl usage --since %s --until %s --by tenant -o %s: %zu tenants%s, %s; runs %s "
          "ms; medians: spillway-cp CPU %.0f ms%s and %.1f MB read from disk, spillwayctl CPU "
          "%.0f ms\n",
          query.since.c_str(), query.until.c_str(), query.format.c_str(), query.want.size(),
          Answered(query).c_str(), query.error.empty() ? "totals match" : "WRONG TOTALS",
          absl::StrJoin(runs, ", ").c_str(), Summarize(query.cp_cpu_ms).median,
          engine_.location.kind == StoreLocation::Kind::kPostgres ? " (PostgreSQL's not counted)"
                                                                  : "",
          Summarize(query.cp_read_mb).median, Summarize(query.ctl_cpu_ms).median);
      std::fflush(stdout);
    }
    return absl::OkStatus();
  }

  // The PASS/FAIL line of the target and INFO lines of the others; false on a FAIL.
  bool Report(boost::json::array& targets) {
    bool pass = true;
    for (const Query& query : queries_) {
      const Summary summary = Summarize(query.ms);
      const bool target = &query == &queries_.front();
      const std::string name =
          absl::StrCat("usage.", engine_.name, ".", query.name,
                       target ? absl::StrCat("_", shape_.rows, "_minute_rows") : "");
      std::string detail =
          absl::StrCat("worst of ", query.ms.size(), " runs, median ", std::llround(summary.median),
                       " ms; -o ", query.format, Answered(query));
      if (!query.granularity.empty() && query.granularity != query.level) {
        absl::StrAppend(&detail, " (expected ", query.level, " rows)");
      }
      boost::json::object entry = {{"name", name},
                                   {"value", std::llround(summary.max)},
                                   {"median", std::llround(summary.median)},
                                   {"unit", "ms"},
                                   {"runs_ms", RoundedJson(query.ms)},
                                   {"cp_cpu_ms", RoundedJson(query.cp_cpu_ms)},
                                   {"ctl_cpu_ms", RoundedJson(query.ctl_cpu_ms)},
                                   {"cp_read_mb", RoundedJson(query.cp_read_mb)},
                                   {"granularity", query.granularity},
                                   {"detail", detail}};
      if (!query.error.empty()) {
        std::printf("FAIL %s  %s\n", name.c_str(), query.error.c_str());
        entry["error"] = query.error;
        entry["pass"] = false;
        pass = false;
      } else if (target) {
        const bool fast = summary.max < kDayLimitMs;
        std::printf("%s %s  %.0f ms (target < %.0f ms; %s)\n", fast ? "PASS" : "FAIL", name.c_str(),
                    summary.max, kDayLimitMs, detail.c_str());
        entry["limit"] = std::llround(kDayLimitMs);
        entry["pass"] = fast;
        pass = pass && fast;
      } else {
        std::printf("INFO %s  %.0f ms (no target; %s)\n", name.c_str(), summary.max,
                    detail.c_str());
      }
      if (target || !query.error.empty()) {
        targets.push_back(entry);
      }
      json_[query.name] = std::move(entry);
    }
    std::fflush(stdout);
    return pass;
  }

 private:
  absl::StatusOr<std::unique_ptr<test::ChildProcess>> StartControlPlane() {
    std::vector<std::string> args = engine_.cp_store_args;
    // Minutes kept longer than the data reaches back: nothing is pruned under the
    // measurement, and each query is answered from the level its bounds call for.
    args.insert(args.end(), {"--listen", "127.0.0.1:0", "--usage-minute-retention-days",
                             absl::StrCat(shape_.days + 2)});
    test::ChildProcessOptions options;
    options.name = "cp";
    options.echo = false;
    absl::StatusOr<std::unique_ptr<test::ChildProcess>> cp =
        test::ChildProcess::Start(absl::GetFlag(FLAGS_cp), args, options);
    if (cp.ok()) {
      cleanup_.Set(kCpSlot, (*cp)->pid(), "");
    }
    return cp;
  }

  // One timed spillwayctl usage; a wrong answer is noted on the query (a FAIL line), only a
  // command that could not run at all is an error.
  absl::Status RunQuery(const std::string& server, pid_t cp_pid, Query& query) {
    const ProcessUse before = ReadProcessUse(cp_pid);
    absl::StatusOr<CommandResult> result = RunCommand(
        {absl::GetFlag(FLAGS_ctl), "--server", server, "--timeout-ms", "600000", "usage", "--since",
         query.since, "--until", query.until, "--by", "tenant", "-o", query.format},
        engine_.dir.path());
    if (!result.ok()) {
      return result.status();
    }
    if (result->exit_code != 0) {
      return absl::InternalError(
          absl::StrCat("spillwayctl usage exited with ", result->exit_code, ": ", result->err));
    }
    const ProcessUse after = ReadProcessUse(cp_pid);
    query.ms.push_back(result->ms);
    query.ctl_cpu_ms.push_back(result->cpu_ms);
    query.cp_cpu_ms.push_back(after.cpu_ms - before.cpu_ms);
    query.cp_read_mb.push_back(after.read_mb - before.read_mb);
    absl::StatusOr<Parsed> parsed =
        query.format == "json" ? ParseUsageJson(result->out) : ParseUsageTable(result->out);
    if (!parsed.ok()) {
      query.error = absl::StrCat("spillwayctl printed an unreadable ", query.format, ": ",
                                 parsed.status().message());
      return absl::OkStatus();
    }
    query.granularity = parsed->granularity;
    if (std::string difference = CompareTotals(parsed->totals, query.want);
        !difference.empty() && query.error.empty()) {
      query.error = std::move(difference);
    }
    return absl::OkStatus();
  }

  SignalCleanup& cleanup_;
  const UsageShape shape_;
  Engine& engine_;
  boost::json::object& json_;
  std::vector<Query> queries_;
};

// Runs one engine: a PASS/FAIL or SKIP line for its target whatever happens.
int RunEngine(const std::string& name, SignalCleanup& cleanup, const UsageShape& shape,
              boost::json::object& json, boost::json::array& targets) {
  const std::string target =
      absl::StrCat("usage.", name, ".day_by_tenant_", shape.rows, "_minute_rows");
  boost::json::object figures;
  auto fail = [&](const absl::Status& status) {
    const std::string reason(status.message());
    std::printf("FAIL %s  could not run: %s\n", target.c_str(), reason.c_str());
    figures["error"] = reason;
    targets.push_back({{"name", target}, {"error", reason}, {"pass", false}});
    json[name] = std::move(figures);
    std::fflush(stdout);
    return 1;
  };
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  if (!dir.ok()) {
    return fail(dir.status());
  }
  Engine engine{name, *std::move(dir)};
  cleanup.Set(kDirSlot, 0, engine.dir.path());
  if (name == "sqlite") {
    engine.location.sqlite_path = engine.dir.path() + "/usage.db";
    engine.cp_store_args = {"--db", engine.location.sqlite_path};
  } else {
#ifdef SPILLWAY_BENCH_HAVE_POSTGRES
    // The server's data directory goes inside ours, so an interrupted run leaves nothing;
    // the server runs as user postgres, which must be able to pass through it.
    chmod(engine.dir.path().c_str(), 0711);
    setenv("TEST_TMPDIR", engine.dir.path().c_str(), 1);
    absl::StatusOr<std::unique_ptr<test::PostgresServer>> server = test::PostgresServer::Start();
    unsetenv("TEST_TMPDIR");
    if (absl::IsNotFound(server.status())) {
      std::printf("SKIP %s  %s\n", target.c_str(), std::string(server.status().message()).c_str());
      json[name] = {{"skipped", std::string(server.status().message())}};
      return 0;
    }
    if (!server.ok()) {
      return fail(server.status());
    }
    engine.postgres = *std::move(server);
    absl::StatusOr<std::string> url = engine.postgres->CreateDatabase("usage_bench");
    if (!url.ok()) {
      return fail(url.status());
    }
    engine.location.kind = StoreLocation::Kind::kPostgres;
    engine.location.postgres_url = *url;
    engine.cp_store_args = {"--store", *url};
#else
    const std::string reason =
        "this build has no PostgreSQL test server (libpq was not found: apt-get install "
        "libpq-dev, then reconfigure)";
    std::printf("SKIP %s  %s\n", target.c_str(), reason.c_str());
    json[name] = {{"skipped", reason}};
    return 0;
#endif
  }
  std::printf("%s: %lld minute rows over %d days (%s to %s UTC), %d tenants x %d keys\n",
              name.c_str(), static_cast<long long>(shape.rows), shape.days,
              Day(shape.first_day_unix_ms).c_str(),
              Day(shape.first_day_unix_ms + (shape.days - 1) * kDayMs).c_str(), shape.tenants,
              kKeysPerTenant);
  std::fflush(stdout);
  UsageBench bench(cleanup, shape, engine, figures);
  if (absl::Status status = bench.Fill(); !status.ok()) {
    return fail(status);
  }
  if (absl::Status status = bench.TimeQueries(); !status.ok()) {
    return fail(status);
  }
  const bool pass = bench.Report(targets);
  json[name] = std::move(figures);
  return pass ? 0 : 1;
}

int Main() {
  SignalCleanup cleanup(
      kProgram);  // first: every thread started later inherits the blocked signals
  const std::string engine = absl::GetFlag(FLAGS_engine);
  UsageShape shape;
  shape.rows = absl::GetFlag(FLAGS_rows);
  shape.days = absl::GetFlag(FLAGS_days);
  shape.tenants = absl::GetFlag(FLAGS_tenants);
  if (shape.rows < 1 || shape.days < 2 || shape.tenants < 1 || absl::GetFlag(FLAGS_runs) < 1) {
    std::fprintf(stderr, "%s: --rows, --tenants and --runs must be positive, --days at least 2\n",
                 kProgram);
    return 2;
  }
  if (engine != "all" && engine != "sqlite" && engine != "postgres") {
    std::fprintf(stderr, "%s: --engine is all, sqlite or postgres, not '%s'\n", kProgram,
                 engine.c_str());
    return 2;
  }
  // The last whole days before today, as a store in use holds them.
  const int64_t today = absl::ToUnixMillis(absl::Now()) / kDayMs * kDayMs;
  shape.first_day_unix_ms = today - shape.days * kDayMs;

  boost::json::object json = {
      {"rows", shape.rows}, {"days", shape.days}, {"tenants", shape.tenants}};
  boost::json::array targets;
  int status = 0;
  // One engine at a time: each store is tens of gigabytes, gone before the next is filled.
  for (const char* name : {"sqlite", "postgres"}) {
    if (engine == "all" || engine == name) {
      status = std::max(status, RunEngine(name, cleanup, shape, json, targets));
      cleanup.Set(kDirSlot, 0, "");  // removed as RunEngine returned
    }
  }
  json["targets"] = std::move(targets);
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    std::ofstream out(path, std::ios::trunc);
    out << boost::json::serialize(json) << "\n";
    if (!out.good()) {
      std::fprintf(stderr, "%s: cannot write %s\n", kProgram, path.c_str());
      return 1;
    }
  }
  return status;
}

}  // namespace
}  // namespace spillway::bench

int main(int argc, char** argv) {
  spillway::ParseCommandLine(
      argc, argv,
      {"spillway-bench-usage",
       "the usage benchmark: fill a store with minute rows of usage (and their hour and day\n"
       "rollups) by server-side SQL, then time the real spillwayctl usage --by tenant against\n"
       "the real spillway-cp: a whole day (the target, < 1 s; again with -o table), and for\n"
       "comparison a day on whole hours and a day off the hour, answered from hour and minute\n"
       "rows. SQLite, then PostgreSQL where it is installed. Nothing is kept on disk.\n"
       "  spillway-bench-usage [--engine all|sqlite|postgres] [--rows 100000000] [--days 14]\n"
       "      [--tenants 10000] [--runs 5] [--json FILE]",
       "tests/bench/usage_bench.cc"});
  return spillway::bench::Main();
}
