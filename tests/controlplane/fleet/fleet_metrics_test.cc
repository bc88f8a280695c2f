// The control plane's /metrics text from a real Fleet: agents per region, acked versions and
// their lag (before and after an ack), applies by result and their histogram, nacks, fleet
// health by state, usage batches by outcome, and label values escaped.
#include "controlplane/fleet/fleet_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "common/wall_clock.h"
#include "controlplane/fleet/fleet.h"
#include "controlplane/store/store.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class DiscardingStream : public AgentStream {
 public:
  void Send(std::shared_ptr<const v1::ControlMessage>) override {}
};

TEST(FleetMetrics, SayWhatTheFleetAndItsCountersHold) {
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  absl::StatusOr<std::unique_ptr<TopologyStore>> store =
      TopologyStore::Open(dir->path() + "/cp.db");
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<v1::Topology> topology = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
  ASSERT_TRUE(topology.ok()) << topology.status();
  ASSERT_TRUE((*store)->Apply(*topology, false).ok());

  Fleet fleet(**store, CompileOptions{});
  ASSERT_TRUE(fleet.Init().ok());
  DiscardingStream current;
  DiscardingStream behind;
  fleet.Register(&current, AgentIdentity{"eus2-1", "eastus2", ""}, 1);
  fleet.Register(&behind, AgentIdentity{"odd\"id", "eastus2", ""}, 0);

  FleetCounters& counters = fleet.counters();
  counters.RecordApply(ApplyResult::kChanged, absl::Milliseconds(30));
  counters.RecordApply(ApplyResult::kFailed, absl::Milliseconds(2));
  counters.RecordNack();
  counters.RecordUsageBatch(FleetCounters::UsageOutcome::kStored, 7);
  counters.RecordUsageBatch(FleetCounters::UsageOutcome::kDuplicate, 7);
  v1::ThrottleEvent throttle;
  throttle.set_backend_id("aoai-eus2-ptu/gpt-4o-ptu");
  throttle.set_at_unix_ms(UnixMillisNow());
  throttle.set_retry_after_ms(60000);
  fleet.ReportThrottle(throttle, "eus2-1");

  std::string text = RenderFleetMetrics(fleet.Snapshot(), fleet.counters());
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_topology_version 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agents_connected{region=\"eastus2\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agents_connected{region=\"westus3\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agent_version_lag{agent=\"eus2-1\",region="
                              "\"eastus2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agent_version_lag{agent=\"odd\\\"id\",region="
                              "\"eastus2\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agent_acked_version{agent=\"odd\\\"id\",region="
                              "\"eastus2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_applies_total{result=\"changed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_applies_total{result=\"failed\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_apply_duration_seconds_bucket{le=\"0.005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_apply_duration_seconds_bucket{le=\"0.025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_apply_duration_seconds_bucket{le=\"0.05\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_apply_duration_seconds_sum 0.032\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_apply_duration_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_nacks_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_fleet_health_entries{state=\"throttled\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_fleet_health_entries{state=\"unhealthy\"} 0\n"));
  EXPECT_THAT(text,
              HasSubstr("\nspillway_cp_usage_batches_received_total{outcome=\"stored\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("\nspillway_cp_usage_batches_received_total{outcome=\"duplicate\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_usage_rows_stored_total 7\n"));

  // The agent behind acks: its lag is 0. One that leaves drops out.
  fleet.RecordAck(&behind, 1);
  fleet.Unregister(&current);
  text = RenderFleetMetrics(fleet.Snapshot(), fleet.counters());
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agent_version_lag{agent=\"odd\\\"id\",region="
                              "\"eastus2\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("\nspillway_cp_agents_connected{region=\"eastus2\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("agent=\"eus2-1\"")));
  fleet.Unregister(&behind);
}

}  // namespace
}  // namespace spillway
