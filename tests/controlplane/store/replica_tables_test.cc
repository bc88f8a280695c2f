// What replicas share through the store (replica_tables.h), on SQLite and PostgreSQL: the
// health overlay by backend with its deadlines, and each replica's agents per region, read
// back only while fresh.
#include "controlplane/store/replica_tables.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/controlplane/store/store_test_util.h"

namespace spillway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::BackendHealth Health(const std::string& backend, int64_t until, const std::string& reason) {
  v1::BackendHealth health;
  health.set_backend_id(backend);
  health.set_state(v1::HEALTH_STATE_THROTTLED);
  health.set_until_unix_ms(until);
  health.set_reason(reason);
  return health;
}

std::vector<std::string> Describe(const std::vector<v1::BackendHealth>& entries) {
  std::vector<std::string> out;
  for (const v1::BackendHealth& entry : entries) {
    out.push_back(entry.backend_id() + " " + entry.reason());
  }
  return out;
}

class ReplicaTablesTest : public test::StoreTest {};

TEST_P(ReplicaTablesTest, HealthIsSharedReplacedClearedAndExpires) {
  const v1::BackendHealth ptu = Health("aoai-eus2-ptu/gpt-4o", 2000, "429");
  const v1::BackendHealth pool = Health("aoai-wus3-ptu/pool", 0, "circuit open");
  ASSERT_TRUE(Store().ShareHealth(ptu.backend_id(), &ptu).ok());
  ASSERT_TRUE(Store().ShareHealth(pool.backend_id(), &pool).ok());
  absl::StatusOr<std::vector<v1::BackendHealth>> shared = Store().SharedHealth(1000);
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_THAT(Describe(*shared),
              ElementsAre("aoai-eus2-ptu/gpt-4o 429", "aoai-wus3-ptu/pool circuit open"));
  // Past its deadline an entry is no longer read; one without a deadline holds.
  EXPECT_THAT(Describe(Store().SharedHealth(2000).value_or(std::vector<v1::BackendHealth>{})),
              ElementsAre("aoai-wus3-ptu/pool circuit open"));

  const v1::BackendHealth later = Health("aoai-eus2-ptu/gpt-4o", 5000, "429 again");
  ASSERT_TRUE(Store().ShareHealth(later.backend_id(), &later).ok());
  EXPECT_THAT(Describe(Store().SharedHealth(3000).value_or(std::vector<v1::BackendHealth>{})),
              ElementsAre("aoai-eus2-ptu/gpt-4o 429 again", "aoai-wus3-ptu/pool circuit open"));
  ASSERT_TRUE(Store().ShareHealth(pool.backend_id(), nullptr).ok());  // healthy again
  ASSERT_TRUE(Store().ShareHealth("never-reported", nullptr).ok());
  EXPECT_THAT(Describe(Store().SharedHealth(3000).value_or(std::vector<v1::BackendHealth>{})),
              ElementsAre("aoai-eus2-ptu/gpt-4o 429 again"));

  EXPECT_EQ(Store().PruneSharedHealth(4000).value_or(-1), 0);
  EXPECT_EQ(Store().PruneSharedHealth(5000).value_or(-1), 1);
  EXPECT_EQ(test::QueryText(Db(), "SELECT count(*) FROM fleet_health"), "0");
}

TEST_P(ReplicaTablesTest, ReplicaAgentsAreReplacedAndReadWhileFresh) {
  ASSERT_TRUE(Store().RecordReplicaAgents("b", {{"eastus2", 3}, {"swedencentral", 1}}, 1000).ok());
  ASSERT_TRUE(Store().RecordReplicaAgents("a", {{"eastus2", 2}}, 1500).ok());
  auto read = [&](int64_t since) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<ReplicaAgents>> rows = Store().ReplicaAgentCounts(since);
    if (!rows.ok()) {
      out.push_back(rows.status().ToString());
      return out;
    }
    for (const ReplicaAgents& row : *rows) {
      out.push_back(row.region + " " + row.replica_id + " " + std::to_string(row.agents));
    }
    return out;
  };
  // Ordered by region, then replica: every replica builds the same split.
  EXPECT_THAT(read(0), ElementsAre("eastus2 a 2", "eastus2 b 3", "swedencentral b 1"));
  EXPECT_THAT(read(1200), ElementsAre("eastus2 a 2")) << "b's rows are stale";
  // A replica's new counts replace all its old ones (it left "swedencentral").
  ASSERT_TRUE(Store().RecordReplicaAgents("b", {{"eastus2", 4}}, 2000).ok());
  EXPECT_THAT(read(0), ElementsAre("eastus2 a 2", "eastus2 b 4"));
  ASSERT_TRUE(Store().RecordReplicaAgents("a", {}, 2500).ok());
  EXPECT_THAT(read(0), ElementsAre("eastus2 b 4"));
  EXPECT_THAT(read(3000), IsEmpty());
}

SPILLWAY_STORE_BACKENDS(ReplicaTablesTest);

}  // namespace
}  // namespace spillway
