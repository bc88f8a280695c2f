// Object pins one agent learns reach the other agents of its region, and only them; malformed
// updates from an agent are left out (docs/pinning.md).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/topology_yaml.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

// Records the pin updates it is sent; refuses droppable messages when told to be "behind".
class PinRecordingStream : public AgentStream {
 public:
  void Send(std::shared_ptr<const v1::ControlMessage> message) override {
    if (message->has_pins()) {
      absl::MutexLock lock(&mu_);
      for (const v1::PinUpdate& update : message->pins().updates()) {
        digests_.push_back(update.digest());
      }
    }
  }
  bool SendDroppable(std::shared_ptr<const v1::ControlMessage> message) override {
    if (behind_) {
      return false;
    }
    Send(std::move(message));
    return true;
  }
  std::vector<std::string> digests() {
    absl::MutexLock lock(&mu_);
    return digests_;
  }
  bool behind_ = false;

 private:
  absl::Mutex mu_;
  std::vector<std::string> digests_;
};

v1::PinUpdate Update(std::string digest, std::string backend = "a/gpt-4o") {
  v1::PinUpdate update;
  update.set_digest(std::move(digest));
  update.set_backend_id(std::move(backend));
  update.set_tenant("app");
  update.set_expires_unix_s(4102444800);
  return update;
}

class FleetPinSharing : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    absl::StatusOr<std::unique_ptr<TopologyStore>> store =
        TopologyStore::Open(dir_->path() + "/cp.db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    fleet_ = std::make_unique<Fleet>(*store_, CompileOptions{});
    ASSERT_TRUE(fleet_->Init().ok());
  }

  std::optional<test::ScopedTempDir> dir_;
  std::unique_ptr<TopologyStore> store_;
  std::unique_ptr<Fleet> fleet_;
};

TEST_F(FleetPinSharing, APinReachesTheOtherAgentsOfTheRegionOnly) {
  PinRecordingStream sender, peer, elsewhere;
  fleet_->Register(&sender, AgentIdentity{"eus2-1", "eastus2", ""}, 0);
  fleet_->Register(&peer, AgentIdentity{"eus2-2", "eastus2", ""}, 0);
  fleet_->Register(&elsewhere, AgentIdentity{"weu-1", "westeurope", ""}, 0);

  v1::PinUpdates updates;
  *updates.add_updates() = Update(std::string(16, 'k'));
  *updates.add_updates() = Update("short");                                      // not a digest
  *updates.add_updates() = Update(std::string(16, 'x'), std::string(600, 'b'));  // oversized
  EXPECT_EQ(fleet_->SharePins(&sender, updates), 1);

  EXPECT_EQ(peer.digests(), std::vector<std::string>{std::string(16, 'k')});
  EXPECT_TRUE(sender.digests().empty()) << "an agent is not told what it said itself";
  EXPECT_TRUE(elsewhere.digests().empty()) << "pins stay in their region";

  // A peer too far behind misses the update; the sender is not held up by it.
  peer.behind_ = true;
  v1::PinUpdates more;
  *more.add_updates() = Update(std::string(16, 'm'));
  EXPECT_EQ(fleet_->SharePins(&sender, more), 1);
  EXPECT_EQ(peer.digests().size(), 1u);

  // At most kMaxPinUpdatesPerMessage updates of one message are relayed.
  peer.behind_ = false;
  v1::PinUpdates flood;
  for (int i = 0; i < Fleet::kMaxPinUpdatesPerMessage + 10; ++i) {
    *flood.add_updates() = Update(std::string(16, static_cast<char>(i)));
  }
  EXPECT_EQ(fleet_->SharePins(&sender, flood), Fleet::kMaxPinUpdatesPerMessage);

  // An unregistered stream speaks for no region.
  PinRecordingStream stranger;
  EXPECT_EQ(fleet_->SharePins(&stranger, more), 0);
  for (PinRecordingStream* stream : {&sender, &peer, &elsewhere}) {
    fleet_->Unregister(stream);
  }
}

}  // namespace
}  // namespace spillway
