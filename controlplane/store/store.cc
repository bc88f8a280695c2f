// TopologyStore on SQLite: every topology change reads the current state, applies one edit
// in memory, validates the result as a whole and writes only what changed, together with
// the version bump and a history row, in one IMMEDIATE transaction.
#include "controlplane/store/store.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <functional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/drain_names.h"
#include "common/topology_validate.h"
#include "common/wall_clock.h"
#include "controlplane/store/drain_edits.h"
#include "controlplane/store/drill_table.h"
#include "controlplane/store/postgres_connection.h"
#include "controlplane/store/schema.h"
#include "controlplane/store/sql.h"
#include "controlplane/store/sqlite_connection.h"
#include "controlplane/store/topology_diff.h"
#include "controlplane/store/usage_partitions.h"
#include "controlplane/store/usage_table.h"

namespace spillway {
namespace {

using sql::Statement;
using sql::Transaction;
using sql::TransactionMode;

// Agent records queued before they are written at once rather than at the next flush: one
// per agent, so only a fleet this large (or made-up agent ids) reaches it.
constexpr std::size_t kMaxPendingAgents = 100'000;
// Two replicas changing the topology at once on PostgreSQL: one of them fails to serialize
// and runs its change again on the other's result. More attempts than replicas would ever
// race for; a change still failing after them is reported (Aborted).
constexpr int kSerializationAttempts = 8;
// The prefix makes leaked keys recognizable by secret scanners; 32 random bytes follow.
constexpr absl::string_view kKeyPrefix = "sk-spw-";
constexpr int kKeyRandomBytes = 32;

template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& value) {
  return value.status();
}

// The stored version and entries; the caller holds a transaction so both are consistent.
absl::StatusOr<StoredTopology> ReadTopology(sql::Connection* db) {
  StoredTopology stored;
  absl::StatusOr<Statement> version = Statement::Prepare(
      db, "SELECT value FROM meta WHERE key = 'topology_version'", "read topology version");
  if (!version.ok()) {
    return version.status();
  }
  absl::StatusOr<bool> row = version->Step();
  if (!row.ok()) {
    return row.status();
  }
  if (!*row) {
    return absl::DataLossError(absl::StrCat(db->name(), ": the topology version is missing"));
  }
  stored.version = static_cast<uint64_t>(version->Int(0));

  absl::StatusOr<Statement> entries = Statement::Prepare(
      db, "SELECT kind, name, body FROM entries ORDER BY kind, position", "read entries");
  if (!entries.ok()) {
    return entries.status();
  }
  while (true) {
    row = entries->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      break;
    }
    const auto kind = static_cast<v1::Kind>(entries->Int(0));
    if (!AppendEntryBytes(kind, entries->Blob(2), stored.topology)) {
      return absl::DataLossError(absl::StrCat(db->name(), ": entry ", entries->Int(0), " '",
                                              entries->Text(1),
                                              "' cannot be read (unknown kind or bad bytes)"));
    }
  }
  return stored;
}

// Tells every replica listening on `channel`, when (and only if) the caller's transaction
// commits. SQLite has one process and nobody to tell.
absl::Status NotifyReplicas(sql::Connection* db, absl::string_view channel) {
  if (db->dialect() != sql::Dialect::kPostgres) {
    return absl::OkStatus();
  }
  return db->Exec(absl::StrCat("NOTIFY ", channel), "notify the replicas");
}

// Entries, inserted or replaced, many rows per statement: a first apply of a large fleet is
// 11,000 entries, and on PostgreSQL a statement per row is a network round trip per row.
absl::Status UpsertEntries(sql::Connection* db,
                           const std::vector<const EntryMap::value_type*>& entries) {
  constexpr std::size_t kRowsPerStatement = 250;  // 1,000 parameters: within both engines' limits
  for (std::size_t first = 0; first < entries.size(); first += kRowsPerStatement) {
    const std::size_t rows = std::min(kRowsPerStatement, entries.size() - first);
    std::string sql = "INSERT INTO entries (kind, name, position, body) VALUES ";
    for (std::size_t row = 0; row < rows; ++row) {
      const std::size_t p = 4 * row;
      absl::StrAppend(&sql, row == 0 ? "" : ", ", "(?", p + 1, ", ?", p + 2, ", ?", p + 3, ", ?",
                      p + 4, ")");
    }
    absl::StrAppend(&sql,
                    " ON CONFLICT (kind, name) DO UPDATE SET position = excluded.position, "
                    "body = excluded.body");
    absl::StatusOr<Statement> upsert = Statement::Prepare(db, sql, "write entries");
    if (!upsert.ok()) {
      return upsert.status();
    }
    for (std::size_t row = 0; row < rows; ++row) {
      const auto& [key, entry] = *entries[first + row];
      const int p = static_cast<int>(4 * row);
      upsert->Bind(p + 1, int64_t{key.first})
          .Bind(p + 2, key.second)
          .Bind(p + 3, int64_t{entry.position})
          .BindBlob(p + 4, entry.bytes);
    }
    if (absl::Status status = upsert->Run(); !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

// Writes what turns `before` into `after` (entries whose bytes or position changed,
// removals), the new version and its history row. The caller holds the write transaction.
absl::Status WriteTopology(sql::Connection* db, const EntryMap& before, const EntryMap& after,
                           uint64_t version, absl::string_view operation,
                           const std::vector<v1::DiffEntry>& diff) {
  absl::StatusOr<Statement> remove =
      Statement::Prepare(db, "DELETE FROM entries WHERE kind = ?1 AND name = ?2", "delete entry");
  absl::StatusOr<Statement> bump = Statement::Prepare(
      db, "UPDATE meta SET value = ?1 WHERE key = 'topology_version'", "bump topology version");
  absl::StatusOr<Statement> history =
      Statement::Prepare(db,
                         "INSERT INTO topology_history (version, applied_at_ms, operation, diff) "
                         "VALUES (?1, ?2, ?3, ?4)",
                         "record topology history");
  for (const absl::Status& status : {StatusOf(remove), StatusOf(bump), StatusOf(history)}) {
    if (!status.ok()) {
      return status;
    }
  }
  std::vector<const EntryMap::value_type*> changed;
  for (const auto& item : after) {
    auto old = before.find(item.first);
    if (old == before.end() || old->second.position != item.second.position ||
        old->second.bytes != item.second.bytes) {
      changed.push_back(&item);
    }
  }
  if (absl::Status status = UpsertEntries(db, changed); !status.ok()) {
    return status;
  }
  for (const auto& [key, unused] : before) {
    if (after.contains(key)) {
      continue;
    }
    if (absl::Status status = remove->Bind(1, int64_t{key.first}).Bind(2, key.second).Run();
        !status.ok()) {
      return status;
    }
  }
  if (absl::Status status = bump->Bind(1, static_cast<int64_t>(version)).Run(); !status.ok()) {
    return status;
  }
  return history->Bind(1, static_cast<int64_t>(version))
      .Bind(2, UnixMillisNow())
      .Bind(3, operation)
      .Bind(4, FormatDiff(diff))
      .Run();
}

// One attempt at a topology change: `edit` turns the current topology into the desired one
// (or refuses), the result is validated as a whole, and only a non-empty diff is written,
// with a new version. Invalid input and dry runs write nothing.
absl::StatusOr<v1::ApplyResponse> TryChangeTopology(
    sql::Connection* db, absl::string_view operation, bool dry_run,
    const std::function<absl::Status(v1::Topology&)>& edit) {
  Transaction transaction(db);
  if (absl::Status status =
          transaction.Begin(dry_run ? TransactionMode::kRead : TransactionMode::kSerializable);
      !status.ok()) {
    return status;
  }
  absl::StatusOr<StoredTopology> current = ReadTopology(db);
  if (!current.ok()) {
    return current.status();
  }
  // The current entries' bytes serve the diff and the write; the topology itself becomes
  // the desired one in place (no copy of a large fleet's topology per change).
  const EntryMap before = EntriesByKey(current->topology);
  v1::Topology desired = std::move(current->topology);
  if (absl::Status status = edit(desired); !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidationStatus(ValidateTopology(desired)); !status.ok()) {
    return status;
  }
  const EntryMap after = EntriesByKey(desired);
  std::vector<v1::DiffEntry> diff = DiffEntries(before, after);
  v1::ApplyResponse response;
  response.set_version(current->version);
  for (v1::DiffEntry& entry : diff) {
    *response.add_diff() = entry;
  }
  if (dry_run || diff.empty()) {
    return response;  // the transaction rolls back; it wrote nothing
  }
  const uint64_t version = current->version + 1;
  if (absl::Status status = WriteTopology(db, before, after, version, operation, diff);
      !status.ok()) {
    return status;
  }
  if (absl::Status status = NotifyReplicas(db, kTopologyChannel); !status.ok()) {
    return status;
  }
  if (absl::Status status = transaction.Commit(); !status.ok()) {
    return status;
  }
  response.set_version(version);
  response.set_changed(true);
  return response;
}

// The edit runs again on each attempt, on the state the winner of a race left (a key minted
// in a lost attempt was never stored, and a new one is minted).
absl::StatusOr<v1::ApplyResponse> ChangeTopology(
    sql::Connection* db, absl::string_view operation, bool dry_run,
    const std::function<absl::Status(v1::Topology&)>& edit) {
  absl::StatusOr<v1::ApplyResponse> response;
  absl::BitGen random;
  for (int attempt = 1;; ++attempt) {
    response = TryChangeTopology(db, operation, dry_run, edit);
    if (response.ok() || !absl::IsAborted(response.status()) || attempt == kSerializationAttempts) {
      return response;
    }
    // Apart, so two losers do not collide again at once.
    absl::SleepFor(absl::Milliseconds(absl::Uniform(random, 1, 10 * attempt)));
  }
}

v1::Tenant* FindTenant(v1::Topology& topology, absl::string_view name) {
  for (v1::Tenant& tenant : *topology.mutable_tenants()) {
    if (tenant.name() == name) {
      return &tenant;
    }
  }
  return nullptr;
}

int FindKey(const v1::Tenant& tenant, absl::string_view name) {
  for (int i = 0; i < tenant.api_keys_size(); ++i) {
    if (tenant.api_keys(i).name() == name) {
      return i;
    }
  }
  return -1;
}

// The name a rotation without a new name gives: "prod" -> "prod-2", "prod-2" -> "prod-3",
// skipping names the tenant already has, so unnamed rotations never collide.
std::string NextKeyName(const v1::Tenant& tenant, const std::string& key_name) {
  absl::string_view base = key_name;
  int next = 2;
  if (const std::size_t dash = base.rfind('-'); dash != absl::string_view::npos) {
    int number = 0;
    if (absl::SimpleAtoi(base.substr(dash + 1), &number) && number > 0) {
      base = base.substr(0, dash);
      next = number + 1;
    }
  }
  for (;; ++next) {
    std::string name = absl::StrCat(base, "-", next);
    if (FindKey(tenant, name) < 0) {
      return name;
    }
  }
}

// A new client key and the ApiKey entry that records only its hash. The agent hashes the
// whole presented key, prefix included.
absl::StatusOr<v1::ApiKey> MintKey(absl::string_view name, std::string& plaintext) {
  std::array<unsigned char, kKeyRandomBytes> random;
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return absl::InternalError("cannot mint a key: the OpenSSL random generator failed");
  }
  plaintext =
      absl::StrCat(kKeyPrefix, absl::WebSafeBase64Escape(absl::string_view(
                                   reinterpret_cast<const char*>(random.data()), random.size())));
  OPENSSL_cleanse(random.data(), random.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(), digest);
  v1::ApiKey key;
  key.set_name(std::string(name));
  key.set_sha256(absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest))));
  key.set_created_at(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  return key;
}

// Adds a freshly minted key called `name` to `tenant` of `topology`.
absl::Status AddKey(v1::Topology& topology, absl::string_view tenant, absl::string_view name,
                    std::string& plaintext) {
  v1::Tenant* entry = FindTenant(topology, tenant);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat("tenant '", tenant, "' does not exist"));
  }
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("tenant '", tenant, "': the key needs a name"));
  }
  if (FindKey(*entry, name) >= 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("tenant '", tenant, "' already has a key named '", name, "'"));
  }
  absl::StatusOr<v1::ApiKey> key = MintKey(name, plaintext);
  if (!key.ok()) {
    return key.status();
  }
  *entry->add_api_keys() = *std::move(key);
  return absl::OkStatus();
}

}  // namespace

struct TopologyStore::Impl {
  // One connection, one caller at a time: neither engine's connection is safe to share.
  absl::Mutex mu;
  UsageRetention usage_retention ABSL_GUARDED_BY(mu);
  // Agent records waiting for FlushAgentRecords, the latest per agent. Taken before `mu`,
  // never while holding it.
  absl::Mutex pending_mu ABSL_ACQUIRED_BEFORE(mu);
  absl::flat_hash_map<std::string, v1::AgentInfo> pending_agents ABSL_GUARDED_BY(pending_mu);
};

TopologyStore::TopologyStore(std::unique_ptr<sql::Connection> db)
    : db_(std::move(db)), impl_(std::make_unique<Impl>()) {}

TopologyStore::~TopologyStore() {
  (void)FlushAgentRecords();  // best effort: the rows are advisory
}

absl::StatusOr<std::unique_ptr<TopologyStore>> TopologyStore::Open(const std::string& path) {
  StoreLocation location;
  location.sqlite_path = path;
  return Open(location);
}

absl::StatusOr<std::unique_ptr<TopologyStore>> TopologyStore::Open(const StoreLocation& location) {
  absl::StatusOr<std::unique_ptr<sql::Connection>> db =
      location.kind == StoreLocation::Kind::kSqlite
          ? sql::OpenSqlite(location.sqlite_path)
          : sql::OpenPostgres(location.postgres_url, location.Display());
  if (!db.ok()) {
    return db.status();
  }
  std::unique_ptr<TopologyStore> store(new TopologyStore(*std::move(db)));
  if (absl::Status status = MigrateSchema(store->db_.get(), SchemaMigrations()); !status.ok()) {
    return status;
  }
  if (absl::Status status = store->PrepareUsageDays(absl::ToUnixMillis(absl::Now()));
      !status.ok()) {
    return status;
  }
  return store;
}

absl::StatusOr<StoredTopology> TopologyStore::Load() {
  absl::MutexLock lock(&impl_->mu);
  Transaction transaction(db_.get());
  if (absl::Status status = transaction.Begin(TransactionMode::kRead); !status.ok()) {
    return status;
  }
  return ReadTopology(db_.get());
}

namespace {

// Keys minted by the control plane (CreateKey/RotateKey, the ones with created_at) belong
// to the key API, not to the operator's YAML: an apply that does not mention them keeps
// them, so re-applying a file never locks a tenant's clients out. A YAML key of the same
// name replaces one; `keys revoke` removes one.
void KeepMintedKeys(const v1::Topology& current, v1::Topology& desired) {
  // By tenant name, only the tenants holding minted keys: few, and a fleet has thousands
  // of tenants, so no pass over one list per entry of the other.
  absl::flat_hash_map<absl::string_view, std::vector<const v1::ApiKey*>> minted;
  for (const v1::Tenant& before : current.tenants()) {
    for (const v1::ApiKey& key : before.api_keys()) {
      if (!key.created_at().empty()) {
        minted[before.name()].push_back(&key);
      }
    }
  }
  if (minted.empty()) {
    return;
  }
  for (v1::Tenant& tenant : *desired.mutable_tenants()) {
    auto keys = minted.find(tenant.name());
    if (keys == minted.end()) {
      continue;
    }
    for (const v1::ApiKey* key : keys->second) {
      bool named = false;
      for (const v1::ApiKey& given : tenant.api_keys()) {
        named |= given.name() == key->name();
      }
      if (!named) {
        *tenant.add_api_keys() = *key;
      }
    }
  }
}

}  // namespace

absl::StatusOr<v1::ApplyResponse> TopologyStore::Apply(const v1::Topology& desired, bool dry_run) {
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(db_.get(), "apply", dry_run, [&](v1::Topology& topology) {
    v1::Topology next = desired;
    KeepMintedKeys(topology, next);
    KeepDrains(topology, next);
    topology = std::move(next);
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ApplyResponse> TopologyStore::Create(const v1::Topology& entries, bool dry_run) {
  const std::vector<TopologyEntry> given = TopologyEntries(entries);
  if (given.empty()) {
    return absl::InvalidArgumentError("create: no entries given");
  }
  std::vector<std::string> names;
  for (const TopologyEntry& entry : given) {
    names.push_back(absl::StrCat(KindName(entry.kind), " ", entry.name));
  }
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(db_.get(), absl::StrCat("create ", absl::StrJoin(names, ", ")), dry_run,
                        [&](v1::Topology& topology) {
                          MergeEntries(entries, topology);
                          return absl::OkStatus();
                        });
}

absl::StatusOr<v1::ApplyResponse> TopologyStore::Delete(v1::Kind kind, const std::string& name,
                                                        bool dry_run) {
  if (KindName(kind).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("delete: kind ", static_cast<int>(kind), " is not a kind of entry"));
  }
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(
      db_.get(), absl::StrCat("delete ", KindName(kind), " ", name), dry_run,
      [&](v1::Topology& topology) {
        if (!RemoveEntry(kind, name, topology)) {
          return absl::NotFoundError(absl::StrCat(KindName(kind), " '", name, "' does not exist"));
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<v1::ApplyResponse> TopologyStore::Drain(const v1::DrainRequest& request) {
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(
      db_.get(), absl::StrCat("drain ", DrainScopeName(request.scope()), " ", request.name()),
      request.dry_run(),
      [&](v1::Topology& topology) { return AddDrain(request, absl::Now(), topology); });
}

absl::StatusOr<v1::ApplyResponse> TopologyStore::Undrain(const v1::UndrainRequest& request) {
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(
      db_.get(), absl::StrCat("undrain ", DrainScopeName(request.scope()), " ", request.name()),
      request.dry_run(), [&](v1::Topology& topology) {
        return RemoveDrain(request.scope(), request.name(), topology);
      });
}

absl::StatusOr<KeyMaterial> TopologyStore::CreateKey(const std::string& tenant,
                                                     const std::string& key_name) {
  absl::MutexLock lock(&impl_->mu);
  KeyMaterial key;
  key.key_name = key_name;
  absl::StatusOr<v1::ApplyResponse> response = ChangeTopology(
      db_.get(), absl::StrCat("create key ", tenant, "/", key_name), /*dry_run=*/false,
      [&](v1::Topology& topology) { return AddKey(topology, tenant, key_name, key.api_key); });
  if (!response.ok()) {
    return response.status();
  }
  key.version = response->version();
  return key;
}

absl::StatusOr<KeyMaterial> TopologyStore::RotateKey(const std::string& tenant,
                                                     const std::string& key_name,
                                                     const std::string& new_key_name) {
  absl::MutexLock lock(&impl_->mu);
  KeyMaterial key;
  absl::StatusOr<v1::ApplyResponse> response = ChangeTopology(
      db_.get(), absl::StrCat("rotate key ", tenant, "/", key_name), /*dry_run=*/false,
      [&](v1::Topology& topology) {
        v1::Tenant* entry = FindTenant(topology, tenant);
        if (entry != nullptr && FindKey(*entry, key_name) < 0) {
          return absl::NotFoundError(
              absl::StrCat("tenant '", tenant, "' has no key named '", key_name, "'"));
        }
        key.key_name =
            new_key_name.empty() && entry != nullptr ? NextKeyName(*entry, key_name) : new_key_name;
        return AddKey(topology, tenant, key.key_name, key.api_key);
      });
  if (!response.ok()) {
    return response.status();
  }
  key.version = response->version();
  return key;
}

absl::StatusOr<v1::ApplyResponse> TopologyStore::RevokeKey(const std::string& tenant,
                                                           const std::string& key_name) {
  absl::MutexLock lock(&impl_->mu);
  return ChangeTopology(
      db_.get(), absl::StrCat("revoke key ", tenant, "/", key_name), /*dry_run=*/false,
      [&](v1::Topology& topology) {
        v1::Tenant* entry = FindTenant(topology, tenant);
        if (entry == nullptr) {
          return absl::NotFoundError(absl::StrCat("tenant '", tenant, "' does not exist"));
        }
        const int index = FindKey(*entry, key_name);
        if (index < 0) {
          return absl::NotFoundError(
              absl::StrCat("tenant '", tenant, "' has no key named '", key_name, "'"));
        }
        entry->mutable_api_keys()->erase(entry->mutable_api_keys()->begin() + index);
        return absl::OkStatus();
      });
}

namespace {

// Agent rows, inserted or replaced, in one transaction.
absl::Status WriteAgentRows(sql::Connection* db, const std::vector<v1::AgentInfo>& agents) {
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  if (db->dialect() == sql::Dialect::kPostgres) {
    // See UpsertAgents: for this transaction only.
    if (absl::Status status = db->Exec("SET LOCAL synchronous_commit = off", "agent records");
        !status.ok()) {
      return status;
    }
  }
  absl::StatusOr<Statement> upsert = Statement::Prepare(
      db,
      "INSERT INTO agents (agent_id, region, acked_version, connected, last_seen_unix_ms, "
      "last_nack_reason, listen_address, replica) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
      "ON CONFLICT (agent_id) DO UPDATE SET region = excluded.region, "
      "acked_version = excluded.acked_version, connected = excluded.connected, "
      "last_seen_unix_ms = excluded.last_seen_unix_ms, "
      "last_nack_reason = excluded.last_nack_reason, listen_address = excluded.listen_address, "
      "replica = excluded.replica "
      // A stream's end on one replica does not undo the agent's newer stream on another
      // (each replica writes its agents' rows on its own schedule).
      "WHERE excluded.connected = 1 OR agents.connected = 0 OR agents.replica = excluded.replica",
      "record agents");
  if (!upsert.ok()) {
    return upsert.status();
  }
  for (const v1::AgentInfo& agent : agents) {
    if (absl::Status status = upsert->Bind(1, agent.agent_id())
                                  .Bind(2, agent.region())
                                  .Bind(3, static_cast<int64_t>(agent.acked_version()))
                                  .Bind(4, int64_t{agent.connected() ? 1 : 0})
                                  .Bind(5, agent.last_seen_unix_ms())
                                  .Bind(6, agent.last_nack_reason())
                                  .Bind(7, agent.listen_address())
                                  .Bind(8, agent.replica())
                                  .Run();
        !status.ok()) {
      return status;
    }
  }
  return transaction.Commit();
}

// An agent row is advisory (the agent states its version again on every hello), so it is
// committed without waiting for the disk: the next topology commit syncs it along, and a
// crash can lose only the last few acks, never a topology change, and never consistency.
// SQLite sets that per connection (around the transaction), PostgreSQL per transaction.
absl::Status UpsertAgents(sql::Connection* db, const std::vector<v1::AgentInfo>& agents) {
  const bool sqlite = db->dialect() == sql::Dialect::kSqlite;
  if (sqlite) {
    if (absl::Status status = db->Exec("PRAGMA synchronous = NORMAL", "agent records");
        !status.ok()) {
      return status;
    }
  }
  absl::Status recorded = WriteAgentRows(db, agents);
  if (sqlite) {
    if (absl::Status status = db->Exec("PRAGMA synchronous = FULL", "agent records");
        !status.ok()) {
      return status;
    }
  }
  return recorded;
}

}  // namespace

absl::Status TopologyStore::RecordAgent(const v1::AgentInfo& agent) {
  if (agent.agent_id().empty()) {
    return absl::InvalidArgumentError("agent: agent_id is empty");
  }
  // Every agent's hello and every ack lands here, 1,000 of them within a second of an apply,
  // on the threads that serve the streams: queued, and written together by the next flush
  // (FlushAgentRecords, twice a second, and before ListAgents), not one transaction each.
  bool full = false;
  {
    absl::MutexLock lock(&impl_->pending_mu);
    impl_->pending_agents[agent.agent_id()] = agent;
    full = impl_->pending_agents.size() >= kMaxPendingAgents;
  }
  return full ? FlushAgentRecords() : absl::OkStatus();
}

absl::Status TopologyStore::FlushAgentRecords() {
  std::vector<v1::AgentInfo> agents;
  {
    absl::MutexLock lock(&impl_->pending_mu);
    agents.reserve(impl_->pending_agents.size());
    for (auto& [id, agent] : impl_->pending_agents) {
      agents.push_back(std::move(agent));
    }
    impl_->pending_agents.clear();
  }
  if (agents.empty()) {
    return absl::OkStatus();
  }
  absl::Status recorded;
  {
    absl::MutexLock lock(&impl_->mu);
    recorded = UpsertAgents(db_.get(), agents);
  }
  if (!recorded.ok()) {
    // Back in the queue for the next flush, unless a newer record of the agent came in.
    absl::MutexLock pending(&impl_->pending_mu);
    for (v1::AgentInfo& agent : agents) {
      const std::string id = agent.agent_id();
      impl_->pending_agents.try_emplace(id, std::move(agent));
    }
  }
  return recorded;
}

absl::StatusOr<std::vector<v1::AgentInfo>> TopologyStore::ListAgents() {
  if (absl::Status status = FlushAgentRecords(); !status.ok()) {
    return status;
  }
  absl::MutexLock lock(&impl_->mu);
  absl::StatusOr<Statement> select = Statement::Prepare(
      db_.get(),
      "SELECT agent_id, region, acked_version, connected, last_seen_unix_ms, last_nack_reason, "
      "listen_address, replica FROM agents ORDER BY region, agent_id",
      "list agents");
  if (!select.ok()) {
    return select.status();
  }
  std::vector<v1::AgentInfo> agents;
  while (true) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) {
      return row.status();
    }
    if (!*row) {
      return agents;
    }
    v1::AgentInfo& agent = agents.emplace_back();
    agent.set_agent_id(select->Text(0));
    agent.set_region(select->Text(1));
    agent.set_acked_version(static_cast<uint64_t>(select->Int(2)));
    agent.set_connected(select->Int(3) != 0);
    agent.set_last_seen_unix_ms(select->Int(4));
    agent.set_last_nack_reason(select->Text(5));
    agent.set_listen_address(select->Text(6));
    agent.set_replica(select->Text(7));
  }
}

absl::Status TopologyStore::StoreUsage(const v1::UsageBatch& batch, bool* newly_stored) {
  absl::MutexLock lock(&impl_->mu);
  return StoreUsageBatch(db_.get(), batch, newly_stored);
}

absl::StatusOr<v1::UsageQueryResponse> TopologyStore::QueryUsage(const v1::UsageQuery& query) {
  absl::MutexLock lock(&impl_->mu);
  return QueryUsageTable(db_.get(), query, impl_->usage_retention, absl::ToUnixMillis(absl::Now()));
}

void TopologyStore::SetUsageRetention(const UsageRetention& retention) {
  absl::MutexLock lock(&impl_->mu);
  impl_->usage_retention = retention;
}

absl::StatusOr<int64_t> TopologyStore::PruneUsage(int64_t now_unix_ms, int64_t max_rows) {
  absl::MutexLock lock(&impl_->mu);
  return PruneUsageTable(db_.get(), impl_->usage_retention, now_unix_ms, max_rows);
}

absl::Status TopologyStore::PrepareUsageDays(int64_t now_unix_ms) {
  absl::MutexLock lock(&impl_->mu);
  return EnsureUsagePartitions(db_.get(), now_unix_ms);
}

}  // namespace spillway

namespace spillway {

absl::StatusOr<uint64_t> TopologyStore::InsertDrill(const v1::Drill& drill) {
  absl::MutexLock lock(&impl_->mu);
  return InsertDrillRow(db_.get(), drill);
}

absl::Status TopologyStore::UpdateDrill(const v1::Drill& drill) {
  absl::MutexLock lock(&impl_->mu);
  return UpdateDrillRow(db_.get(), drill);
}

absl::StatusOr<std::optional<v1::Drill>> TopologyStore::GetDrill(uint64_t id) {
  absl::MutexLock lock(&impl_->mu);
  return ReadDrillRow(db_.get(), id);
}

absl::StatusOr<std::vector<v1::Drill>> TopologyStore::ListDrills(int limit, bool unfinished_only) {
  absl::MutexLock lock(&impl_->mu);
  return ReadDrillRows(db_.get(), limit, unfinished_only);
}

}  // namespace spillway

namespace spillway {

absl::Status TopologyStore::ShareHealth(const std::string& backend_id,
                                        const v1::BackendHealth* health) {
  absl::MutexLock lock(&impl_->mu);
  sql::Connection* db = db_.get();
  Transaction transaction(db);
  if (absl::Status status = transaction.Begin(TransactionMode::kWrite); !status.ok()) {
    return status;
  }
  absl::Status written =
      health == nullptr ? DeleteHealthRow(db, backend_id) : PutHealthRow(db, *health);
  if (!written.ok()) {
    return written;
  }
  if (absl::Status status = NotifyReplicas(db, kHealthChannel); !status.ok()) {
    return status;
  }
  return transaction.Commit();
}

absl::StatusOr<std::vector<v1::BackendHealth>> TopologyStore::SharedHealth(int64_t now_unix_ms) {
  absl::MutexLock lock(&impl_->mu);
  return ReadHealthRows(db_.get(), now_unix_ms);
}

absl::StatusOr<int64_t> TopologyStore::PruneSharedHealth(int64_t now_unix_ms) {
  absl::MutexLock lock(&impl_->mu);
  return PruneHealthRows(db_.get(), now_unix_ms);
}

absl::Status TopologyStore::RecordReplicaAgents(
    const std::string& replica_id, const absl::flat_hash_map<std::string, int64_t>& per_region,
    int64_t now_unix_ms) {
  absl::MutexLock lock(&impl_->mu);
  return WriteReplicaAgents(db_.get(), replica_id, per_region, now_unix_ms);
}

absl::StatusOr<std::vector<ReplicaAgents>> TopologyStore::ReplicaAgentCounts(
    int64_t fresh_since_unix_ms) {
  absl::MutexLock lock(&impl_->mu);
  return ReadReplicaAgents(db_.get(), fresh_since_unix_ms);
}

}  // namespace spillway
