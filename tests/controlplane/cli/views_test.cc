// What spillwayctl shows for each kind and answer, on the reference topology.
#include "controlplane/cli/views.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "common/topology_yaml.h"
#include "controlplane/cli/drill_views.h"
#include "tests/support/reference_topology.h"

namespace spillway::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kNow = absl::FromUnixSeconds(1'750'000'000);

std::vector<std::string> Row(const Table& table, size_t i) {
  return i < table.rows.size() ? table.rows[i] : std::vector<std::string>{};
}

TEST(KindsTest, SingularAndPluralNamesParse) {
  ASSERT_EQ(AllKinds().size(), 9u);
  for (v1::Kind kind : AllKinds()) {
    EXPECT_EQ(*ParseKind(KindSingular(kind)), kind);
    EXPECT_EQ(*ParseKind(KindPlural(kind)), kind);
  }
  EXPECT_EQ(*ParseKind("Deployments"), v1::KIND_DEPLOYMENT);
  EXPECT_THAT(ParseKind("gizmo").status().message(), HasSubstr("known: stamps, regions"));
}

TEST(KindTableTest, KeyColumnsOfEveryKind) {
  const v1::Topology topology = test::ReferenceTopology();
  EXPECT_THAT(KindTable(topology, v1::KIND_REGION).headers, ElementsAre("NAME", "STAMP"));
  EXPECT_THAT(Row(KindTable(topology, v1::KIND_REGION), 2), ElementsAre("swedencentral", "eu"));
  EXPECT_THAT(Row(KindTable(topology, v1::KIND_STAMP), 0), ElementsAre("us", ""));
  EXPECT_THAT(Row(KindTable(topology, v1::KIND_SUBSCRIPTION), 1),
              ElementsAre("ai-platform-prod-2", ""));

  const Table instances = KindTable(topology, v1::KIND_INSTANCE);
  EXPECT_THAT(instances.headers, ElementsAre("NAME", "REGION", "SUBSCRIPTION", "ENDPOINT", "AUTH"));
  EXPECT_EQ(Row(instances, 0).back(), "managed-identity");
  EXPECT_EQ(Row(instances, 2).back(), "env:AOAI_EUS2_STD_KEY");
  EXPECT_EQ(Row(instances, 3).back(), "file:/etc/spillway/keys/aoai-wus3-std");

  const Table deployments = KindTable(topology, v1::KIND_DEPLOYMENT);
  EXPECT_THAT(deployments.headers,
              ElementsAre("INSTANCE", "NAME", "MODEL", "VERSION", "SKU", "CAPACITY"));
  EXPECT_THAT(Row(deployments, 0), ElementsAre("aoai-eus2-ptu", "gpt-4o-ptu", "gpt-4o",
                                               "2024-08-06", "ProvisionedManaged", "100 PTU"));
  EXPECT_THAT(Row(deployments, 2), ElementsAre("aoai-eus2-std", "gpt-4o", "gpt-4o", "2024-08-06",
                                               "DataZoneStandard", "450K TPM"));

  const Table pools = KindTable(topology, v1::KIND_POOL);
  EXPECT_THAT(Row(pools, 5),
              ElementsAre("eu-standard", "aoai-swc-std/gpt-4o=2,aoai-frc-std/gpt-4o=1", ""));
  EXPECT_THAT(Row(pools, 0), ElementsAre("us-workload-ptu", "aoai-eus2-ptu/gpt-4o-ptu", ""));

  const Table routes = KindTable(topology, v1::KIND_ROUTE);
  EXPECT_THAT(routes.headers, ElementsAre("STAMP", "NAME", "LOCALITY", "TIERS"));
  EXPECT_THAT(Row(routes, 0), ElementsAre("us", "gpt-4o", "prefer-local",
                                          "us-workload-ptu > us-enterprise-ptu > us-standard"));
  EXPECT_THAT(Row(routes, 1), ElementsAre("us", "gpt-4o-canary", "prefer-local",
                                          "90% us-standard | 10% us-standard-next"));

  const Table tenants = KindTable(topology, v1::KIND_TENANT);
  EXPECT_THAT(tenants.headers,
              ElementsAre("NAME", "STAMP", "PRIORITY", "ROUTES", "TPM", "RPM", "KEYS"));
  EXPECT_THAT(Row(tenants, 1), ElementsAre("nightly-summaries", "us", "batch", "gpt-4o", "300000",
                                           "unlimited", "prod"));
}

TEST(KindTableTest, PoolLimitsAndUnsetPriority) {
  v1::Topology topology;
  v1::Pool* pool = topology.add_pools();
  pool->set_name("p");
  pool->mutable_priority_limits()->set_standard(80);
  pool->mutable_priority_limits()->set_batch(50);
  topology.add_tenants()->set_name("t");
  EXPECT_EQ(Row(KindTable(topology, v1::KIND_POOL), 0).back(), "standard<=80%,batch<=50%");
  EXPECT_EQ(Row(KindTable(topology, v1::KIND_TENANT), 0)[2], "standard");
}

TEST(KindTableTest, TablesNeverShowKeyHashes) {
  const v1::Topology topology = test::ReferenceTopology();
  const std::string all = RenderTopologyTables(topology);
  for (const v1::Tenant& tenant : topology.tenants()) {
    for (const v1::ApiKey& key : tenant.api_keys()) {
      EXPECT_THAT(all, Not(HasSubstr(key.sha256())));
    }
  }
}

TEST(RenderTopologyTablesTest, OneTitledTablePerNonEmptyKind) {
  v1::Topology topology;
  topology.add_stamps()->set_name("us");
  v1::Region* region = topology.add_regions();
  region->set_name("eastus2");
  region->set_stamp("us");
  EXPECT_EQ(RenderTopologyTables(topology),
            "STAMPS:\n"
            "NAME   DESCRIPTION\n"
            "us     -\n"
            "\n"
            "REGIONS:\n"
            "NAME      STAMP\n"
            "eastus2   us\n");
  EXPECT_EQ(CountOfKind(topology, v1::KIND_REGION), 1);
  EXPECT_EQ(CountOfKind(topology, v1::KIND_UNSPECIFIED), 2);
}

TEST(TopologyYamlTest, YamlOfTheReferenceReparsesToTheSameTopology) {
  const v1::Topology topology = test::ReferenceTopology();
  const std::string yaml = "# topology version 3\n" + TopologyToYaml(topology);
  absl::StatusOr<v1::Topology> reparsed = ParseTopologyYaml(yaml, "get-output");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*reparsed, topology));
}

TEST(TopologyYamlTest, YamlOfAnEmptyTopologyReparses) {
  const std::string yaml = "# topology version 0\n" + TopologyToYaml(v1::Topology());
  absl::StatusOr<v1::Topology> reparsed = ParseTopologyYaml(yaml, "get-output");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status() << "\n" << yaml;
  EXPECT_EQ(CountOfKind(*reparsed, v1::KIND_UNSPECIFIED), 0);
}

TEST(RenderDiffTest, MarksEachChangeAndTheOutcome) {
  v1::ApplyResponse response;
  response.set_version(8);
  response.set_changed(true);
  v1::DiffEntry* added = response.add_diff();
  added->set_kind(v1::KIND_DEPLOYMENT);
  added->set_name("aoai-eus2-ptu/gpt-4o-ptu");
  added->set_change(v1::DiffEntry::CHANGE_ADDED);
  v1::DiffEntry* changed = response.add_diff();
  changed->set_kind(v1::KIND_ROUTE);
  changed->set_name("us/gpt-4o");
  changed->set_change(v1::DiffEntry::CHANGE_CHANGED);
  v1::DiffEntry* removed = response.add_diff();
  removed->set_kind(v1::KIND_TENANT);
  removed->set_name("x");
  removed->set_change(v1::DiffEntry::CHANGE_REMOVED);
  EXPECT_EQ(RenderDiff(response, /*dry_run=*/false),
            "+ deployment aoai-eus2-ptu/gpt-4o-ptu\n~ route us/gpt-4o\n- tenant x\n"
            "applied version 8\n");
  EXPECT_THAT(RenderDiff(response, /*dry_run=*/true),
              HasSubstr("- tenant x\ndry run: nothing stored (version 8)\n"));

  v1::ApplyResponse unchanged;
  unchanged.set_version(7);
  EXPECT_EQ(RenderDiff(unchanged, /*dry_run=*/false), "no changes (version 7)\n");
  EXPECT_EQ(RenderDiff(unchanged, /*dry_run=*/true), "no changes (version 7)\n");
}

TEST(AgentsTableTest, SortedWithRelativeLastSeen) {
  v1::ListAgentsResponse response;
  v1::AgentInfo* late = response.add_agents();
  late->set_agent_id("b");
  late->set_region("westus3");
  late->set_acked_version(3);
  late->set_last_seen_unix_ms(absl::ToUnixMillis(kNow - absl::Minutes(5)));
  late->set_last_nack_reason("bad table");
  v1::AgentInfo* early = response.add_agents();
  early->set_agent_id("a");
  early->set_region("eastus2");
  early->set_acked_version(4);
  early->set_connected(true);
  const Table table = AgentsTable(response, kNow);
  EXPECT_THAT(table.headers,
              ElementsAre("AGENT", "REGION", "ACKED_VERSION", "CONNECTED", "LAST_SEEN", "NACK"));
  EXPECT_THAT(Row(table, 0), ElementsAre("a", "eastus2", "4", "yes", "never", ""));
  EXPECT_THAT(Row(table, 1), ElementsAre("b", "westus3", "3", "no", "5m ago", "bad table"));
}

TEST(AgentsTableTest, ReplicasAddWhichOneHoldsEachStream) {
  v1::ListAgentsResponse response;
  v1::AgentInfo* agent = response.add_agents();
  agent->set_agent_id("a");
  agent->set_region("eastus2");
  agent->set_connected(true);
  agent->set_replica("cp-1");
  response.add_agents()->set_agent_id("b");  // never connected since the upgrade: no replica
  const Table table = AgentsTable(response, kNow);
  EXPECT_THAT(table.headers, ElementsAre("AGENT", "REGION", "ACKED_VERSION", "CONNECTED", "REPLICA",
                                         "LAST_SEEN", "NACK"));
  EXPECT_THAT(Row(table, 1), ElementsAre("a", "eastus2", "0", "yes", "cp-1", "never", ""));
  EXPECT_THAT(Row(table, 0), ElementsAre("b", "", "0", "no", "", "never", ""));
}

TEST(HealthTableTest, StatesAndUntil) {
  v1::HealthOverlay overlay;
  v1::BackendHealth* throttled = overlay.add_backends();
  throttled->set_backend_id("i/b");
  throttled->set_state(v1::HEALTH_STATE_THROTTLED);
  throttled->set_until_unix_ms(absl::ToUnixMillis(kNow + absl::Seconds(30)));
  throttled->set_reported_by("agent-1");
  throttled->set_reason("429");
  v1::BackendHealth* open = overlay.add_backends();
  open->set_backend_id("i/a");
  open->set_state(v1::HEALTH_STATE_UNHEALTHY);
  const Table table = HealthTable(overlay, kNow);
  EXPECT_THAT(table.headers, ElementsAre("BACKEND", "STATE", "UNTIL", "REPORTED_BY", "REASON"));
  EXPECT_THAT(Row(table, 0), ElementsAre("i/a", "unhealthy", "", "", ""));
  EXPECT_THAT(Row(table, 1), ElementsAre("i/b", "throttled", "in 30s", "agent-1", "429"));
}

TEST(UsageTableTest, GroupColumnsThenCounters) {
  v1::UsageQueryResponse response;
  v1::UsageRow* row = response.add_rows();
  (*row->mutable_key())["tenant"] = "t";
  (*row->mutable_key())["region"] = "eastus2";
  row->set_requests(3);
  row->set_total_tokens(99);
  const Table table = UsageTable(response, {"region", "tenant"});
  EXPECT_THAT(table.headers, ElementsAre("REGION", "TENANT", "REQUESTS", "PROMPT", "COMPLETION",
                                         "CACHED", "TOTAL", "FAILED", "THROTTLED"));
  EXPECT_THAT(Row(table, 0), ElementsAre("eastus2", "t", "3", "0", "0", "0", "99", "0", "0"));
  EXPECT_THAT(RenderTable(table), StartsWith("REGION    TENANT   REQUESTS   PROMPT"));
}

TEST(ShortDurationTest, PeopleUnits) {
  EXPECT_EQ(ShortDuration(absl::Seconds(45)), "45s");
  EXPECT_EQ(ShortDuration(absl::Seconds(119)), "119s");
  EXPECT_EQ(ShortDuration(absl::Minutes(12)), "12m");
  EXPECT_EQ(ShortDuration(absl::Hours(5)), "5h");
  EXPECT_EQ(ShortDuration(absl::Hours(72)), "3d");
}

}  // namespace
TEST(DrillViewsTest, TheReportSaysWhenTrafficLeftWhereItWentAndWhatClientsSaw) {
  v1::Drill drill;
  drill.set_id(7);
  drill.set_region("eastus2");
  drill.set_state(v1::Drill::STATE_DONE);
  drill.set_drained_unix_ms(1'800'000'000'000);
  drill.set_restored_unix_ms(1'800'000'020'000);
  v1::DrillReport* report = drill.mutable_report();
  v1::DrillAgentTraffic* agent = report->add_agents();
  agent->set_agent_id("vm-1");
  agent->set_region("eastus2");
  agent->set_to_region_before(40);
  agent->set_left_after_ms(300);
  agent->set_back_after_ms(-1);
  report->set_requests_during(30);
  v1::DrillShare* share = report->add_during();
  share->set_backend_id("b/gpt-4o");
  share->set_region("westus3");
  share->set_tier("standard");
  share->set_requests(27);
  (*report->mutable_client_errors())[503] = 3;
  (*report->mutable_shed_by_priority())["batch"] = 2;
  const std::string text = RenderDrillReport(drill);
  EXPECT_THAT(text, HasSubstr("drill 7: region eastus2 drained at 2027-01-15T08:00:00Z"));
  EXPECT_THAT(text, HasSubstr("300 ms"));
  EXPECT_THAT(text, HasSubstr("not seen"));
  EXPECT_THAT(text, HasSubstr("b/gpt-4o"));
  EXPECT_THAT(text, HasSubstr("90%"));
  EXPECT_THAT(text, HasSubstr("client-visible errors: 503 x3"));
  EXPECT_THAT(text, HasSubstr("shed with 429, by priority: batch x2"));

  drill.add_plan()->set_route("gpt-4o");
  const Table plan = DrillPlanTable(drill);
  ASSERT_EQ(plan.rows.size(), 1u);
  EXPECT_EQ(plan.rows[0][3], "none (503)");
}

}  // namespace spillway::cli
