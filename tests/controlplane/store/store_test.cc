// The topology store on a real SQLite file and a real PostgreSQL database: schema and
// migrations, apply/create/delete with validation and exact diffs, tenant keys that never
// reach the disk in plaintext; SQLite's pragmas.
#include "controlplane/store/store.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/file_io.h"
#include "controlplane/store/schema.h"
#include "controlplane/store/topology_diff.h"
#include "tests/controlplane/store/store_test_util.h"

namespace spillway {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using test::ReferenceTopology;
using test::TableExists;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;

std::vector<std::string> Describe(const v1::ApplyResponse& response) {
  std::vector<std::string> lines;
  for (const v1::DiffEntry& entry : response.diff()) {
    lines.push_back(absl::StrCat(v1::DiffEntry::Change_Name(entry.change()), " ",
                                 KindName(entry.kind()), " ", entry.name()));
  }
  return lines;
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

class TopologyStoreTest : public test::StoreTest {
 protected:
  StoredTopology MustLoad() {
    absl::StatusOr<StoredTopology> stored = Store().Load();
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.value_or(StoredTopology());
  }

  void ExpectStored(uint64_t version, const v1::Topology& topology) {
    const StoredTopology stored = MustLoad();
    EXPECT_EQ(stored.version, version);
    std::string differences;
    MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&differences);
    EXPECT_TRUE(differencer.Compare(topology, stored.topology)) << differences;
  }

  void ApplyReference() {
    absl::StatusOr<v1::ApplyResponse> applied = Store().Apply(ReferenceTopology(), false);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
  }

  std::string HistoryCount() {
    return test::QueryText(Db(), "SELECT count(*) FROM topology_history");
  }

  const v1::Tenant& TenantOf(const StoredTopology& stored, const std::string& name) {
    for (const v1::Tenant& tenant : stored.topology.tenants()) {
      if (tenant.name() == name) {
        return tenant;
      }
    }
    ADD_FAILURE() << "no tenant " << name;
    return v1::Tenant::default_instance();
  }
};

TEST_P(TopologyStoreTest, OpensWithWalForeignKeysAndFullSync) {
  if (!sqlite()) {
    GTEST_SKIP() << "SQLite's pragmas";
  }
  EXPECT_EQ(test::QueryText(Db(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(test::QueryText(Db(), "PRAGMA foreign_keys"), "1");
  EXPECT_EQ(test::QueryText(Db(), "PRAGMA synchronous"), "2");  // FULL
  EXPECT_NE(test::QueryText(Db(), "PRAGMA busy_timeout"), "0");
  // WAL is a property of the file: another process sees it too.
  EXPECT_EQ(test::QueryText(OpenRaw().get(), "PRAGMA journal_mode"), "wal");
}

TEST_P(TopologyStoreTest, RecordsTheSchemaVersion) {
  Store();
  std::unique_ptr<sql::Connection> raw = OpenRaw();
  ASSERT_NE(raw, nullptr);
  EXPECT_EQ(test::QueryText(raw.get(), "SELECT version FROM schema_version"),
            std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(StoredSchemaVersion(raw.get()).value_or(-1), LatestSchemaVersion());
  EXPECT_EQ(MustLoad().version, 0u);
  EXPECT_EQ(MustLoad().topology.ByteSizeLong(), 0u);
}

TEST_P(TopologyStoreTest, ReopenKeepsTopologyAndVersion) {
  ApplyReference();
  Close();
  ExpectStored(1, ReferenceTopology());
}

TEST_P(TopologyStoreTest, RefusesADatabaseFromANewerSchema) {
  Store();
  Close();
  ASSERT_TRUE(OpenRaw()->Exec("UPDATE schema_version SET version = version + 5", "test").ok());
  absl::StatusOr<std::unique_ptr<TopologyStore>> opened = TopologyStore::Open(location_);
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  EXPECT_THAT(
      opened.status().message(),
      AllOf(HasSubstr(Where()), HasSubstr(absl::StrCat("version ", LatestSchemaVersion() + 5)),
            HasSubstr(absl::StrCat("version ", LatestSchemaVersion()))));
}

TEST_P(TopologyStoreTest, RefusesAFileThatIsNotADatabase) {
  if (!sqlite()) {
    GTEST_SKIP() << "a SQLite file";
  }
  ASSERT_TRUE(WriteFileAtomically(path_, std::string(4096, 'x')).ok());
  absl::StatusOr<std::unique_ptr<TopologyStore>> opened = TopologyStore::Open(path_);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr(path_));
}

TEST_P(TopologyStoreTest, MigrationsRunOnlyPendingStepsEachWhole) {
  std::unique_ptr<sql::Connection> raw = OpenRaw();
  ASSERT_NE(raw, nullptr);
  const Migration v1_steps[] = {
      {1, "create t", "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);"}};
  const Migration v2_steps[] = {v1_steps[0], {2, "add a row", "INSERT INTO t VALUES (2);"}};
  const Migration v3_steps[] = {
      v2_steps[0],
      v2_steps[1],
      {3, "broken step", "CREATE TABLE u (x INTEGER); INSERT INTO missing VALUES (1);"}};
  ASSERT_TRUE(MigrateSchema(raw.get(), v1_steps).ok());
  ASSERT_TRUE(MigrateSchema(raw.get(), v2_steps).ok());
  ASSERT_TRUE(MigrateSchema(raw.get(), v2_steps).ok());
  EXPECT_EQ(test::QueryText(raw.get(), "SELECT count(*) FROM t"), "2");  // each step ran once
  EXPECT_EQ(StoredSchemaVersion(raw.get()).value_or(-1), 2);

  absl::Status broken = MigrateSchema(raw.get(), v3_steps);
  EXPECT_THAT(broken.message(),
              AllOf(HasSubstr("version 3"), HasSubstr("broken step"), HasSubstr(Where())));
  EXPECT_EQ(StoredSchemaVersion(raw.get()).value_or(-1), 2);
  EXPECT_TRUE(TableExists(raw.get(), "t"));
  EXPECT_FALSE(TableExists(raw.get(), "u"));  // rolled back

  EXPECT_EQ(MigrateSchema(raw.get(), v1_steps).code(), absl::StatusCode::kFailedPrecondition);
  const Migration gap[] = {{2, "skips one", "SELECT 1;"}};
  EXPECT_EQ(MigrateSchema(raw.get(), gap).code(), absl::StatusCode::kInternal);
}

TEST_P(TopologyStoreTest, ApplyStoresTheReferenceAsVersionOne) {
  absl::StatusOr<v1::ApplyResponse> applied = Store().Apply(ReferenceTopology(), false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->version(), 1u);
  EXPECT_TRUE(applied->changed());
  ASSERT_EQ(static_cast<std::size_t>(applied->diff_size()),
            TopologyEntries(ReferenceTopology()).size());
  for (const v1::DiffEntry& entry : applied->diff()) {
    EXPECT_EQ(entry.change(), v1::DiffEntry::CHANGE_ADDED);
  }
  ExpectStored(1, ReferenceTopology());
  EXPECT_EQ(test::QueryText(Db(), "SELECT operation FROM topology_history WHERE version = 1"),
            "apply");
  EXPECT_THAT(test::QueryText(Db(), "SELECT diff FROM topology_history WHERE version = 1"),
              HasSubstr("added route eu/gpt-4o\n"));
}

TEST_P(TopologyStoreTest, ReapplyingTheSameTopologyIsANoOp) {
  ApplyReference();
  absl::StatusOr<v1::ApplyResponse> again = Store().Apply(ReferenceTopology(), false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->changed());
  EXPECT_EQ(again->version(), 1u);
  EXPECT_THAT(again->diff(), IsEmpty());
  EXPECT_EQ(HistoryCount(), "1");
}

v1::Topology Modified() {
  v1::Topology modified = ReferenceTopology();
  modified.mutable_deployments(2)->set_capacity(500);  // aoai-eus2-std/gpt-4o
  modified.mutable_tenants()->erase(modified.mutable_tenants()->begin() + 1);
  v1::Pool* pool = modified.add_pools();
  pool->set_name("us-standard-west");
  pool->add_members()->set_deployment("aoai-wus3-std/gpt-4o");
  return modified;
}

TEST_P(TopologyStoreTest, ChangedApplyBumpsTheVersionWithTheExactDiff) {
  ApplyReference();
  absl::StatusOr<v1::ApplyResponse> applied = Store().Apply(Modified(), false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(applied->changed());
  EXPECT_EQ(applied->version(), 2u);
  EXPECT_THAT(Describe(*applied), ElementsAre("CHANGE_CHANGED deployment aoai-eus2-std/gpt-4o",
                                              "CHANGE_ADDED pool us-standard-west",
                                              "CHANGE_REMOVED tenant nightly-summaries"));
  ExpectStored(2, Modified());
  Close();
  ExpectStored(2, Modified());
  EXPECT_EQ(HistoryCount(), "2");
}

TEST_P(TopologyStoreTest, DryRunDiffsAndWritesNothing) {
  absl::StatusOr<v1::ApplyResponse> first = Store().Apply(ReferenceTopology(), true);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->version(), 0u);
  EXPECT_FALSE(first->changed());
  EXPECT_EQ(static_cast<std::size_t>(first->diff_size()),
            TopologyEntries(ReferenceTopology()).size());
  ExpectStored(0, v1::Topology());

  ApplyReference();
  absl::StatusOr<v1::ApplyResponse> dry = Store().Apply(Modified(), true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->version(), 1u);
  EXPECT_FALSE(dry->changed());
  EXPECT_EQ(dry->diff_size(), 3);
  ExpectStored(1, ReferenceTopology());
  EXPECT_EQ(HistoryCount(), "1");
}

TEST_P(TopologyStoreTest, InvalidApplyNamesEveryProblemAndChangesNothing) {
  v1::Topology invalid = ReferenceTopology();
  invalid.mutable_routes(0)->set_tiers(1, "no-such-pool");
  invalid.mutable_tenants(0)->set_stamp("mars");
  absl::StatusOr<v1::ApplyResponse> refused = Store().Apply(invalid, false);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  ExpectStored(0, v1::Topology());

  ApplyReference();
  for (bool dry_run : {false, true}) {
    refused = Store().Apply(invalid, dry_run);
    ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(),
                AllOf(HasSubstr("route 'gpt-4o': (stamp us) pool 'no-such-pool' does not exist"),
                      HasSubstr("tenant 'checkout-assistant': stamp 'mars' does not exist")));
  }
  ExpectStored(1, ReferenceTopology());
  EXPECT_EQ(HistoryCount(), "1");
}

TEST_P(TopologyStoreTest, CreateAddsOrReplacesEntriesValidatedAsAWhole) {
  ApplyReference();
  v1::Topology entries;
  v1::Region* region = entries.add_regions();
  region->set_name("centralus");
  region->set_stamp("us");
  *entries.add_deployments() = ReferenceTopology().deployments(0);
  entries.mutable_deployments(0)->set_capacity(200);

  absl::StatusOr<v1::ApplyResponse> dry = Store().Create(entries, true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->version(), 1u);
  ExpectStored(1, ReferenceTopology());

  absl::StatusOr<v1::ApplyResponse> created = Store().Create(entries, false);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->version(), 2u);
  EXPECT_THAT(Describe(*created),
              ElementsAre("CHANGE_ADDED region centralus",
                          "CHANGE_CHANGED deployment aoai-eus2-ptu/gpt-4o-ptu"));
  v1::Topology expected = ReferenceTopology();
  *expected.add_regions() = *region;                   // appended
  expected.mutable_deployments(0)->set_capacity(200);  // replaced where it stood
  ExpectStored(2, expected);

  absl::StatusOr<v1::ApplyResponse> same = Store().Create(entries, false);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(same->changed());
  EXPECT_EQ(same->version(), 2u);

  v1::Topology dangling;
  v1::Instance* instance = dangling.add_instances();
  *instance = ReferenceTopology().instances(0);
  instance->set_name("aoai-cus");
  instance->set_region("nowhere");
  absl::StatusOr<v1::ApplyResponse> refused = Store().Create(dangling, false);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("instance 'aoai-cus': region 'nowhere' does not exist"));
  EXPECT_EQ(Store().Create(v1::Topology(), false).status().code(),
            absl::StatusCode::kInvalidArgument);
  ExpectStored(2, expected);
}

TEST_P(TopologyStoreTest, DeleteRemovesOneEntryUnlessItIsStillUsed) {
  ApplyReference();
  absl::StatusOr<v1::ApplyResponse> refused = Store().Delete(v1::KIND_POOL, "us-standard", false);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("route 'gpt-4o': (stamp us) pool 'us-standard' does not exist"));
  refused = Store().Delete(v1::KIND_DEPLOYMENT, "aoai-eus2-std/embed-3", false);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("pool 'us-embeddings': member deployment 'aoai-eus2-std/embed-3'"));
  ExpectStored(1, ReferenceTopology());

  absl::StatusOr<v1::ApplyResponse> dry = Store().Delete(v1::KIND_TENANT, "eu-helpdesk", true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_THAT(Describe(*dry), ElementsAre("CHANGE_REMOVED tenant eu-helpdesk"));
  ExpectStored(1, ReferenceTopology());

  absl::StatusOr<v1::ApplyResponse> deleted = Store().Delete(v1::KIND_TENANT, "eu-helpdesk", false);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->version(), 2u);
  deleted = Store().Delete(v1::KIND_ROUTE, "us/gpt-4o-canary", false);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_THAT(Describe(*deleted), ElementsAre("CHANGE_REMOVED route us/gpt-4o-canary"));
  v1::Topology expected = ReferenceTopology();
  expected.mutable_tenants()->RemoveLast();
  expected.mutable_routes()->erase(expected.mutable_routes()->begin() + 1);
  ExpectStored(3, expected);

  absl::StatusOr<v1::ApplyResponse> missing = Store().Delete(v1::KIND_ROUTE, "gpt-4o", false);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);  // routes are stamp/name
  missing = Store().Delete(v1::KIND_TENANT, "nobody", false);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("tenant 'nobody'"));
  EXPECT_EQ(Store().Delete(v1::KIND_UNSPECIFIED, "us", false).status().code(),
            absl::StatusCode::kInvalidArgument);
  ExpectStored(3, expected);
}

TEST_P(TopologyStoreTest, CreateKeyStoresOnlyTheHash) {
  ApplyReference();
  absl::StatusOr<KeyMaterial> key = Store().CreateKey("checkout-assistant", "ci");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_THAT(key->api_key, MatchesRegex("sk-spw-[A-Za-z0-9_-]{43}"));
  EXPECT_EQ(key->version, 2u);

  const StoredTopology stored = MustLoad();
  EXPECT_EQ(stored.version, 2u);
  const v1::Tenant& tenant = TenantOf(stored, "checkout-assistant");
  ASSERT_EQ(tenant.api_keys_size(), 2);
  EXPECT_EQ(tenant.api_keys(0).name(), "prod");
  EXPECT_EQ(tenant.api_keys(1).name(), "ci");
  EXPECT_EQ(tenant.api_keys(1).sha256(), Sha256Hex(key->api_key));
  absl::Time created;
  std::string error;
  ASSERT_TRUE(
      absl::ParseTime(absl::RFC3339_full, tenant.api_keys(1).created_at(), &created, &error))
      << error;
  EXPECT_LT(absl::AbsDuration(absl::Now() - created), absl::Minutes(1));

  // Neither the key nor its random part is anywhere in the files; the hash is (so the
  // search itself works), first in the WAL, then in the checkpointed database. (PostgreSQL
  // holds the entries the same bytes; its files are the server's.)
  const std::string secret = key->api_key.substr(7);
  for (bool closed : {false, true}) {
    if (!sqlite()) {
      break;
    }
    if (closed) {
      Close();
    }
    std::string bytes = ReadFile(path_).value_or("");
    bytes += ReadFile(path_ + "-wal").value_or("");
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes.find(key->api_key), std::string::npos) << "closed=" << closed;
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "closed=" << closed;
    EXPECT_NE(bytes.find(tenant.api_keys(1).sha256()), std::string::npos) << "closed=" << closed;
  }

  absl::StatusOr<KeyMaterial> other = Store().CreateKey("eu-helpdesk", "ci");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_NE(other->api_key, key->api_key);
  EXPECT_EQ(Store().CreateKey("checkout-assistant", "ci").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Store().CreateKey("nobody", "ci").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Store().CreateKey("checkout-assistant", "bad name!").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MustLoad().version, 3u);
}

TEST_P(TopologyStoreTest, UnnamedRotationsNeverCollide) {
  ApplyReference();
  std::vector<std::string> names;
  for (const char* from : {"prod", "prod", "prod-3"}) {
    absl::StatusOr<KeyMaterial> rotated = Store().RotateKey("checkout-assistant", from, "");
    ASSERT_TRUE(rotated.ok()) << rotated.status();
    names.push_back(rotated->key_name);
  }
  EXPECT_THAT(names, ElementsAre("prod-2", "prod-3", "prod-4"));
}

TEST_P(TopologyStoreTest, RotateKeepsBothKeysAndRevokeRemovesOne) {
  ApplyReference();
  absl::StatusOr<KeyMaterial> rotated = Store().RotateKey("checkout-assistant", "prod", "");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->version, 2u);
  absl::StatusOr<KeyMaterial> named = Store().RotateKey("checkout-assistant", "prod", "prod-b");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(named->version, 3u);
  {
    const StoredTopology stored = MustLoad();
    const v1::Tenant& tenant = TenantOf(stored, "checkout-assistant");
    ASSERT_EQ(tenant.api_keys_size(), 3);
    EXPECT_EQ(tenant.api_keys(0).sha256(), ReferenceTopology().tenants(0).api_keys(0).sha256());
    EXPECT_EQ(tenant.api_keys(1).name(), "prod-2");
    EXPECT_EQ(tenant.api_keys(1).sha256(), Sha256Hex(rotated->api_key));
    EXPECT_EQ(tenant.api_keys(2).name(), "prod-b");
    EXPECT_EQ(tenant.api_keys(2).sha256(), Sha256Hex(named->api_key));
  }
  EXPECT_EQ(Store().RotateKey("checkout-assistant", "missing", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Store().RotateKey("checkout-assistant", "prod", "prod-b").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Store().RotateKey("nobody", "prod", "").status().code(), absl::StatusCode::kNotFound);

  absl::StatusOr<v1::ApplyResponse> revoked = Store().RevokeKey("checkout-assistant", "prod");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->version(), 4u);
  EXPECT_THAT(Describe(*revoked), ElementsAre("CHANGE_CHANGED tenant checkout-assistant"));
  const StoredTopology stored = MustLoad();
  const v1::Tenant& tenant = TenantOf(stored, "checkout-assistant");
  ASSERT_EQ(tenant.api_keys_size(), 2);
  EXPECT_EQ(tenant.api_keys(0).sha256(), Sha256Hex(rotated->api_key));
  EXPECT_EQ(Store().RevokeKey("checkout-assistant", "prod").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Store().RevokeKey("nobody", "prod").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MustLoad().version, 4u);
}

}  // namespace
}  // namespace spillway

namespace spillway {
namespace {

// Keys minted through the key API survive a re-apply of the operator's YAML (which never
// lists them); a YAML key of the same name replaces one, and revoke removes one.
TEST_P(TopologyStoreTest, ReapplyingTheYamlKeepsMintedKeys) {
  ApplyReference();
  absl::StatusOr<KeyMaterial> key = Store().CreateKey("checkout-assistant", "ci");
  ASSERT_TRUE(key.ok()) << key.status();
  v1::Topology changed = ReferenceTopology();
  changed.mutable_stamps(0)->set_description("re-applied");
  absl::StatusOr<v1::ApplyResponse> applied = Store().Apply(changed, false);
  ASSERT_TRUE(applied.ok()) << applied.status();
  StoredTopology stored = MustLoad();
  const v1::Tenant& tenant = stored.topology.tenants(0);
  ASSERT_EQ(tenant.api_keys_size(), 2);
  EXPECT_EQ(tenant.api_keys(1).name(), "ci");
  EXPECT_FALSE(tenant.api_keys(1).created_at().empty());
  // The same apply again is a no-op: the kept key is not a change.
  absl::StatusOr<v1::ApplyResponse> again = Store().Apply(changed, false);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed());
  // Revoking it through the API removes it for good.
  ASSERT_TRUE(Store().RevokeKey("checkout-assistant", "ci").ok());
  ASSERT_TRUE(Store().Apply(changed, false).ok());
  EXPECT_EQ(MustLoad().topology.tenants(0).api_keys_size(), 1);
}

SPILLWAY_STORE_BACKENDS(TopologyStoreTest);

}  // namespace
}  // namespace spillway
