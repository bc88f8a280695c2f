// See replica_tables.h. Health rows hold the BackendHealth message's bytes; the deadline is a
// column of its own so that reads and pruning skip expired rows without parsing them.
#include "controlplane/store/replica_tables.h"

#include "absl/strings/str_cat.h"

namespace spillway {

using sql::Statement;
using sql::Transaction;
using sql::TransactionMode;

absl::Status PutHealthRow(sql::Connection* db, const v1::BackendHealth& health) {
  absl::StatusOr<Statement> put = Statement::Prepare(
      db,
      "INSERT INTO fleet_health (backend_id, until_unix_ms, body) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (backend_id) DO UPDATE SET until_unix_ms = excluded.until_unix_ms, "
      "body = excluded.body",
      absl::StrCat("share the health of backend '", health.backend_id(), "'"));
  if (!put.ok()) {
    return put.status();
  }
  return put->Bind(1, health.backend_id())
      .Bind(2, health.until_unix_ms())
      .BindBlob(3, health.SerializeAsString())
      .Run();
}

absl::Status DeleteHealthRow(sql::Connection* db, const std::string& backend_id) {
  absl::StatusOr<Statement> remove =
      Statement::Prepare(db, "DELETE FROM fleet_health WHERE backend_id = ?1",
                         absl::StrCat("clear the health of backend '", backend_id, "'"));
  if (!remove.ok()) {
    return remove.status();
  }
  return remove->Bind(1, backend_id).Run();
}

absl::StatusOr<std::vector<v1::BackendHealth>> ReadHealthRows(sql::Connection* db, int64_t now_ms) {
  absl::StatusOr<Statement> read = Statement::Prepare(
      db,
      "SELECT backend_id, body FROM fleet_health WHERE until_unix_ms = 0 OR until_unix_ms > ?1 "
      "ORDER BY backend_id",
      "read the fleet's health");
  if (!read.ok()) {
    return read.status();
  }
  read->Bind(1, now_ms);
  std::vector<v1::BackendHealth> entries;
  for (;;) {
    absl::StatusOr<bool> row = read->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return entries;
    }
    const absl::string_view body = read->Blob(1);
    v1::BackendHealth& health = entries.emplace_back();
    if (!health.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::DataLossError(
          absl::StrCat(db->name(), ": the health of backend '", read->Text(0), "' cannot be read"));
    }
  }
}

absl::StatusOr<int64_t> PruneHealthRows(sql::Connection* db, int64_t now_ms) {
  absl::StatusOr<Statement> prune = Statement::Prepare(
      db, "DELETE FROM fleet_health WHERE until_unix_ms <> 0 AND until_unix_ms <= ?1",
      "prune the fleet's health");
  if (!prune.ok()) {
    return prune.status();
  }
  if (absl::Status status = prune->Bind(1, now_ms).Run(); !status.ok()) {
    return status;
  }
  return prune->Changes();
}

absl::Status WriteReplicaAgents(sql::Connection* db, const std::string& replica_id,
                                const absl::flat_hash_map<std::string, int64_t>& agents_per_region,
                                int64_t now_ms) {
  const std::string what = absl::StrCat("record the agents of replica '", replica_id, "'");
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  absl::StatusOr<Statement> clear =
      Statement::Prepare(db, "DELETE FROM replica_agents WHERE replica_id = ?1", what);
  absl::StatusOr<Statement> insert =
      Statement::Prepare(db,
                         "INSERT INTO replica_agents (replica_id, region, agents, seen_unix_ms) "
                         "VALUES (?1, ?2, ?3, ?4)",
                         what);
  if (!clear.ok()) {
    return clear.status();
  }
  if (!insert.ok()) {
    return insert.status();
  }
  if (absl::Status status = clear->Bind(1, replica_id).Run(); !status.ok()) {
    return status;
  }
  for (const auto& [region, agents] : agents_per_region) {
    if (absl::Status status =
            insert->Bind(1, replica_id).Bind(2, region).Bind(3, agents).Bind(4, now_ms).Run();
        !status.ok()) {
      return status;
    }
  }
  return transaction.Commit();
}

absl::StatusOr<std::vector<ReplicaAgents>> ReadReplicaAgents(sql::Connection* db,
                                                             int64_t fresh_since_ms) {
  absl::StatusOr<Statement> read = Statement::Prepare(
      db,
      "SELECT replica_id, region, agents FROM replica_agents WHERE seen_unix_ms >= ?1 "
      "ORDER BY region, replica_id",
      "read the replicas' agents");
  if (!read.ok()) {
    return read.status();
  }
  read->Bind(1, fresh_since_ms);
  std::vector<ReplicaAgents> rows;
  for (;;) {
    absl::StatusOr<bool> row = read->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return rows;
    }
    rows.push_back({read->Text(0), read->Text(1), read->Int(2)});
  }
}

}  // namespace spillway
