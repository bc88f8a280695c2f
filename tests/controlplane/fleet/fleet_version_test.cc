// The fleet's current version only moves forward (issue 15, item 10): concurrent applies load
// the store in either order, and the one that read the older version must not be pushed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/topology_yaml.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

// Records the versions of the tables it is sent.
class RecordingStream : public AgentStream {
 public:
  void Send(std::shared_ptr<const v1::ControlMessage> message) override {
    if (message->has_table()) {
      absl::MutexLock lock(&mu_);
      versions_.push_back(message->table().version());
    }
  }
  std::vector<uint64_t> versions() {
    absl::MutexLock lock(&mu_);
    return versions_;
  }

 private:
  absl::Mutex mu_;
  std::vector<uint64_t> versions_;
};

TEST(FleetVersion, AnOlderLoadNeverReplacesOrIsPushedOverANewerOne) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<TopologyStore>> store =
      TopologyStore::Open(dir->path() + "/cp.db");
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<v1::Topology> topology = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
  ASSERT_TRUE(topology.ok()) << topology.status();

  Fleet fleet(**store, CompileOptions{});
  ASSERT_TRUE(fleet.Init().ok());
  RecordingStream agent;
  fleet.Register(&agent, AgentIdentity{"eus2-1", topology->regions(0).name(), ""}, 0);

  // Two applies commit versions 1 and 2; their reloads reach the fleet newest first.
  ASSERT_TRUE((*store)->Apply(*topology, false).ok());
  absl::StatusOr<StoredTopology> first = (*store)->Load();
  topology->mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(123456);
  ASSERT_TRUE((*store)->Apply(*topology, false).ok());
  absl::StatusOr<StoredTopology> second = (*store)->Load();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->version, 1u);
  ASSERT_EQ(second->version, 2u);

  EXPECT_TRUE(fleet.Adopt(*second));
  EXPECT_FALSE(fleet.Adopt(*first)) << "version 1 arrived after version 2";
  EXPECT_FALSE(fleet.Adopt(*second)) << "the same version twice pushes nothing new";
  EXPECT_EQ(fleet.version(), 2u);
  EXPECT_EQ(fleet.topology().tenants(0).limits().tokens_per_minute(), 123456u);
  EXPECT_THAT(agent.versions(), ::testing::ElementsAre(2u));
  fleet.Unregister(&agent);
}

}  // namespace
}  // namespace spillway
