// The schema's history, oldest step first, and the migration runner. Backend secrets have
// no column anywhere: instances are stored as their topology entries, which only hold
// references (env var, file, managed identity); client keys only as SHA-256 hashes.
#include "controlplane/store/schema.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace spillway {
namespace {

// Version 1. Why each table looks the way it does:
// - entries: one row per topology entry (the entry's deterministic protobuf bytes), keyed
//   by kind and qualified name so a change rewrites only the entries it touches; position
//   keeps the operator's order so a stored topology reads back equal to what was applied.
// - meta.topology_version: bumped in the same transaction as the entries it describes.
// - usage: per-minute aggregates summed in place (UPSERT); the primary key starts with the
//   minute so time-range queries use it. usage_batches remembers every (agent, sequence)
//   stored, so a replayed batch is recognized and not counted twice.
constexpr char kInitialSchema[] = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('topology_version', 0);
CREATE TABLE entries (
  kind INTEGER NOT NULL,
  name TEXT NOT NULL,
  position INTEGER NOT NULL,
  body BLOB NOT NULL,
  PRIMARY KEY (kind, name)
);
CREATE TABLE topology_history (
  version INTEGER PRIMARY KEY,
  applied_at_ms INTEGER NOT NULL,
  operation TEXT NOT NULL,
  diff TEXT NOT NULL
);
CREATE TABLE agents (
  agent_id TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  acked_version INTEGER NOT NULL,
  connected INTEGER NOT NULL,
  last_seen_unix_ms INTEGER NOT NULL,
  last_nack_reason TEXT NOT NULL,
  listen_address TEXT NOT NULL
);
CREATE TABLE usage_batches (
  agent_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  stored_at_ms INTEGER NOT NULL,
  PRIMARY KEY (agent_id, sequence)
);
CREATE TABLE usage (
  minute_unix_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  route TEXT NOT NULL,
  backend_id TEXT NOT NULL,
  instance TEXT NOT NULL,
  region TEXT NOT NULL,
  status INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  latency_ms_sum INTEGER NOT NULL,
  PRIMARY KEY (minute_unix_ms, tenant, route, backend_id, instance, region, status)
);
)sql";

// Version 2: drills (spillwayctl drill). `finished` is kept apart from the record so the
// control plane finds drills a crash left running without reading every report.
constexpr char kDrills[] = R"sql(
CREATE TABLE drills (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  region TEXT NOT NULL,
  finished INTEGER NOT NULL,
  body BLOB NOT NULL
);
)sql";

// Version 3: usage rolled up to hours and days as it is stored (a batch arriving late, from
// an agent's spool, lands in all three), so minute rows can be deleted after a while and a
// month's totals read thousands of times fewer rows. Filled from the minute rows once.
constexpr char kUsageRollups[] = R"sql(
CREATE TABLE usage_hour (
  period_unix_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  route TEXT NOT NULL,
  backend_id TEXT NOT NULL,
  instance TEXT NOT NULL,
  region TEXT NOT NULL,
  status INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  latency_ms_sum INTEGER NOT NULL,
  PRIMARY KEY (period_unix_ms, tenant, route, backend_id, instance, region, status)
);
CREATE TABLE usage_day (
  period_unix_ms INTEGER NOT NULL,
  tenant TEXT NOT NULL,
  route TEXT NOT NULL,
  backend_id TEXT NOT NULL,
  instance TEXT NOT NULL,
  region TEXT NOT NULL,
  status INTEGER NOT NULL,
  requests INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cached_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  latency_ms_sum INTEGER NOT NULL,
  PRIMARY KEY (period_unix_ms, tenant, route, backend_id, instance, region, status)
);
INSERT INTO usage_hour SELECT minute_unix_ms - minute_unix_ms % 3600000, tenant, route,
  backend_id, instance, region, status, SUM(requests), SUM(prompt_tokens),
  SUM(completion_tokens), SUM(cached_tokens), SUM(total_tokens), SUM(attempts),
  SUM(latency_ms_sum)
  FROM usage GROUP BY 1, tenant, route, backend_id, instance, region, status;
INSERT INTO usage_day SELECT period_unix_ms - period_unix_ms % 86400000, tenant, route,
  backend_id, instance, region, status, SUM(requests), SUM(prompt_tokens),
  SUM(completion_tokens), SUM(cached_tokens), SUM(total_tokens), SUM(attempts),
  SUM(latency_ms_sum)
  FROM usage_hour GROUP BY 1, tenant, route, backend_id, instance, region, status;
CREATE INDEX usage_batches_stored_at ON usage_batches (stored_at_ms);
)sql";

// Version 4: what replicas on one PostgreSQL database share beyond the topology (SQLite has
// the tables too, unused, so both engines keep one schema history):
// - fleet_health: the health overlay agents reported to any replica, one row per backend;
//   until_unix_ms 0 holds until an agent reports the backend healthy.
// - replica_agents: how many agents each replica serves per stamp (per region since version
//   5), refreshed while it lives (seen_unix_ms), from which every replica takes its part of
//   each tenant's limits.
constexpr char kReplicaTables[] = R"sql(
CREATE TABLE fleet_health (
  backend_id TEXT PRIMARY KEY,
  until_unix_ms INTEGER NOT NULL,
  body BLOB NOT NULL
);
CREATE TABLE replica_agents (
  replica_id TEXT NOT NULL,
  stamp TEXT NOT NULL,
  agents INTEGER NOT NULL,
  seen_unix_ms INTEGER NOT NULL,
  PRIMARY KEY (replica_id, stamp)
);
)sql";

// Version 5: replicas publish their agents per region, not per stamp, so each can take its
// part of a stamp the moment a topology introduces or moves it (per stamp, a replica learned
// its part only after the topology, and split the whole limit among its agents until then).
// The rows live for seconds: a replica of an older build fails to publish into the new table,
// logs it, and its part goes to the others until it is upgraded.
constexpr char kReplicaAgentsByRegion[] = R"sql(
DROP TABLE replica_agents;
CREATE TABLE replica_agents (
  replica_id TEXT NOT NULL,
  region TEXT NOT NULL,
  agents INTEGER NOT NULL,
  seen_unix_ms INTEGER NOT NULL,
  PRIMARY KEY (replica_id, region)
);
)sql";

// Version 6: which replica each agent's stream is on, so any replica can tell whether an agent
// another replica serves is connected (the row says so while that replica lives).
constexpr char kAgentReplica[] = R"sql(
ALTER TABLE agents ADD COLUMN replica TEXT NOT NULL DEFAULT '';
)sql";

// Version 7: on PostgreSQL, usage minutes partitioned by UTC day (usage_partitions.h), the
// rows there so far moved into the default partition. SQLite has no partitions.
constexpr char kUsageByDay[] = R"sql(
CREATE TABLE usage_by_day (LIKE usage INCLUDING DEFAULTS) PARTITION BY RANGE (minute_unix_ms);
ALTER TABLE usage_by_day
  ADD PRIMARY KEY (minute_unix_ms, tenant, route, backend_id, instance, region, status);
CREATE TABLE usage_default PARTITION OF usage_by_day DEFAULT;
INSERT INTO usage_by_day SELECT * FROM usage;
DROP TABLE usage;
ALTER TABLE usage_by_day RENAME TO usage;
)sql";

constexpr Migration kMigrations[] = {
    {1, "initial schema", kInitialSchema},
    {2, "drills", kDrills},
    {3, "usage rollups", kUsageRollups},
    {4, "replica tables", kReplicaTables},
    {5, "replica agents by region", kReplicaAgentsByRegion},
    {6, "agent replica", kAgentReplica},
    {7, "usage minutes by day", "", kUsageByDay},
};

// The steps are written in SQLite's words; PostgreSQL reads them with 64-bit integers (SQLite's
// INTEGER is 64 bits, PostgreSQL's 32), bytea for blobs and an identity column for
// AUTOINCREMENT. One text per step for both, so the two schemas cannot drift apart.
std::string StepSql(sql::Dialect dialect, const char* sql) {
  if (dialect == sql::Dialect::kSqlite) {
    return sql;
  }
  std::string text =
      absl::StrReplaceAll(sql, {{"INTEGER PRIMARY KEY AUTOINCREMENT",
                                 "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"}});
  return absl::StrReplaceAll(text, {{" INTEGER", " BIGINT"}, {" BLOB", " BYTEA"}});
}

// The runner's own bookkeeping, created with the first step rather than by it, so that any
// list of steps can be run (tests run lists of their own).
absl::Status SetStoredVersion(sql::Connection* db, int version) {
  if (absl::Status status = db->Exec("CREATE TABLE IF NOT EXISTS schema_version ("
                                     "id INTEGER PRIMARY KEY CHECK (id = 1), "
                                     "version INTEGER NOT NULL)",
                                     "create schema_version");
      !status.ok()) {
    return status;
  }
  absl::StatusOr<sql::Statement> update =
      sql::Statement::Prepare(db,
                              "INSERT INTO schema_version (id, version) VALUES (1, ?1) "
                              "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                              "record schema version");
  if (!update.ok()) {
    return update.status();
  }
  return update->Bind(1, int64_t{version}).Run();
}

}  // namespace

absl::Span<const Migration> SchemaMigrations() { return kMigrations; }

int LatestSchemaVersion() { return SchemaMigrations().back().version; }

absl::StatusOr<int> StoredSchemaVersion(sql::Connection* db) {
  absl::StatusOr<sql::Statement> has_table = sql::Statement::Prepare(
      db,
      db->dialect() == sql::Dialect::kSqlite
          ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
          : "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = 'schema_version'",
      "look for the schema_version table");
  if (!has_table.ok()) {
    return has_table.status();
  }
  absl::StatusOr<bool> row = has_table->Step();
  if (!row.ok()) {
    return row.status();
  }
  if (!*row || has_table->Int(0) == 0) {
    return 0;
  }
  absl::StatusOr<sql::Statement> read = sql::Statement::Prepare(
      db, "SELECT version FROM schema_version WHERE id = 1", "read schema version");
  if (!read.ok()) {
    return read.status();
  }
  row = read->Step();
  if (!row.ok()) {
    return row.status();
  }
  return *row ? static_cast<int>(read->Int(0)) : 0;
}

absl::Status MigrateSchema(sql::Connection* db, absl::Span<const Migration> migrations) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InternalError(absl::StrCat("schema step '", migrations[i].summary,
                                              "' has version ", migrations[i].version,
                                              ", expected ", i + 1));
    }
  }
  const std::string& path = db->name();
  auto check = [&](int stored) {
    if (stored <= latest) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": database schema version ", stored, " is newer than version ", latest,
                     ", the newest this binary knows; run a newer spillway-cp"));
  };
  absl::StatusOr<int> stored = StoredSchemaVersion(db);
  if (!stored.ok()) {
    return stored.status();
  }
  if (absl::Status status = check(*stored); !status.ok()) {
    return status;
  }
  for (const Migration& step : migrations) {
    if (*stored >= step.version) {
      continue;
    }
    sql::Transaction transaction(db);
    if (absl::Status status = transaction.Begin(sql::TransactionMode::kSchema); !status.ok()) {
      return status;
    }
    // Read again under the lock: another process (a replica) may have migrated meanwhile.
    stored = StoredSchemaVersion(db);
    if (!stored.ok()) {
      return stored.status();
    }
    if (absl::Status status = check(*stored); !status.ok()) {
      return status;
    }
    if (*stored >= step.version) {
      continue;  // the transaction rolls back; nothing was written
    }
    const std::string label =
        absl::StrCat("schema migration to version ", step.version, " (", step.summary, ")");
    const char* sql = db->dialect() == sql::Dialect::kPostgres && step.postgres_sql != nullptr
                          ? step.postgres_sql
                          : step.sql;
    if (absl::Status status =
            *sql == '\0' ? absl::OkStatus() : db->Exec(StepSql(db->dialect(), sql), label);
        !status.ok()) {
      return status;
    }
    if (absl::Status status = SetStoredVersion(db, step.version); !status.ok()) {
      return status;
    }
    if (absl::Status status = transaction.Commit(); !status.ok()) {
      return status;
    }
    stored = step.version;
  }
  return absl::OkStatus();
}

}  // namespace spillway
