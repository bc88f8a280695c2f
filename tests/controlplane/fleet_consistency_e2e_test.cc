// Fleet consistency end to end (issue 17): a table the control plane accepts but an agent
// refuses leaves that agent serving its old table, shows in `spillwayctl agents`, and does not
// stop the next good apply; concurrent applies leave get, the SQLite store and every agent on
// one version, and no agent ever serves a version older than one it served before.
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "controlplane/store/store.h"
#include "spillway/v1/routing_table.pb.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// A guard against hangs, not a bound on speed: these suites share a 2-core machine with a
// sanitizer build, where a push and its ack have taken seconds.
constexpr absl::Duration kWait = absl::Seconds(60);

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
constexpr char kCheckoutKey[] = "test";

class FleetConsistencyE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    absl::Status started = fleet_.StartControlPlane();
    ASSERT_TRUE(started.ok()) << started;
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *std::move(topology);
  }

  // Starts the agents and applies the reference topology (version 1) to all of them.
  void StartFleetOnReference(const std::vector<std::pair<std::string, std::string>>& agents) {
    for (const auto& [name, region] : agents) {
      absl::Status started = fleet_.StartAgent(name, region);
      ASSERT_TRUE(started.ok()) << name << ": " << started;
      agents_.push_back(name);
    }
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(topology_);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
    absl::Status acked = fleet_.WaitForAcks(1, static_cast<int>(agents.size()), kWait);
    ASSERT_TRUE(acked.ok()) << acked;
  }

  std::string StateDir(const std::string& agent) const {
    return absl::StrCat(fleet_.dir(), "/agent-", agent);
  }

  // The id an agent chose for itself (and says hello with), from its state directory.
  std::string AgentId(const std::string& agent) const {
    absl::StatusOr<std::string> id = ReadFile(StateDir(agent) + "/agent-id");
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : "";
  }

  // What the control plane says about `agent`, if it knows it.
  std::optional<v1::AgentInfo> Info(const std::string& agent) {
    absl::StatusOr<v1::ListAgentsResponse> list = fleet_.ListAgents();
    if (!list.ok()) {
      return std::nullopt;
    }
    const std::string id = AgentId(agent);
    for (const v1::AgentInfo& info : list->agents()) {
      if (info.agent_id() == id) {
        return info;
      }
    }
    return std::nullopt;
  }

  // The version the agent's /status says it serves; -1 if unknown.
  int64_t ServedVersion(const std::string& agent) const {
    absl::StatusOr<std::string> status = fleet_.AgentStatus(agent);
    if (!status.ok()) {
      ADD_FAILURE() << agent << ": " << status.status();
      return -1;
    }
    const boost::json::value parsed = boost::json::parse(*status);
    const boost::json::value& version = parsed.at("version");
    return version.is_int64() ? version.as_int64() : -1;
  }

  // One chat through `agent` on `route` as checkout-assistant; the HTTP status, or -1.
  int ChatStatus(const std::string& agent, const std::string& route) {
    absl::StatusOr<HttpResponse> response = fleet_.AgentClient(agent)->Send(
        "POST", ChatTarget(route), {{"api-key", kCheckoutKey}}, kChat, absl::Seconds(30));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->status : -1;
  }

  // The real spillwayctl against the fleet's control plane; output is not echoed (failing
  // assertions print it).
  CtlResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> full = {"--server", absl::StrCat("127.0.0.1:", fleet_.cp_port())};
    full.insert(full.end(), args.begin(), args.end());
    CtlRunOptions options;
    options.echo = false;
    return RunCtl(SPILLWAY_CTL_BIN, full, absl::StrCat(fleet_.dir(), "/ctl-stderr-", runs_++),
                  options);
  }

  // `spillwayctl agents -o csv`, one record per agent keyed by agent id.
  std::map<std::string, std::map<std::string, std::string>> CtlAgents() {
    const CtlResult csv = Ctl({"agents", "-o", "csv"});
    EXPECT_EQ(csv.exit_code, 0) << csv.err;
    std::map<std::string, std::map<std::string, std::string>> by_id;
    for (std::map<std::string, std::string>& record : CsvRecords(csv.out)) {
      by_id[record["agent"]] = std::move(record);
    }
    return by_id;
  }

  ControlPlaneFleet fleet_;
  v1::Topology topology_;
  std::vector<std::string> agents_;
  int runs_ = 0;
};

// Nothing the control plane validates is refused by an agent's own checks (region, age,
// compilation); what only the agent can fail is persisting the table, and an acked version must
// survive a restart, so a table it cannot persist must be refused, not served.
TEST_F(FleetConsistencyE2eTest, ARefusedTableLeavesTheOldOneServingAndTheNextGoodOneIsTaken) {
  StartFleetOnReference({{"eus2", "eastus2"}, {"swc", "swedencentral"}});
  ASSERT_EQ(ChatStatus("eus2", "gpt-4o"), 200);
  ASSERT_EQ(ChatStatus("eus2", "gpt-4o-canary"), 403);

  // A non-empty directory where eus2's table goes: the rename over it fails. Taking the write
  // permission away would not do, since these tests may run as root.
  const std::string table_path = StateDir("eus2") + "/routing-table.pb";
  ASSERT_EQ(std::remove(table_path.c_str()), 0);
  ASSERT_EQ(::mkdir(table_path.c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileAtomically(table_path + "/keep", "x").ok());

  // Version 2 moves checkout-assistant from gpt-4o to gpt-4o-canary.
  v1::Topology moved = topology_;
  ASSERT_EQ(moved.tenants(0).name(), "checkout-assistant");
  moved.mutable_tenants(0)->clear_routes();
  moved.mutable_tenants(0)->add_routes("gpt-4o-canary");
  moved.mutable_tenants(0)->add_routes("text-embedding-3-large");
  absl::StatusOr<v1::ApplyResponse> refused = fleet_.Apply(moved);
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(refused->version(), 2u);

  // The other agent takes it: the refusal is eus2's own.
  absl::Status swc = fleet_.WaitForAgentVersion("swc", 2, kWait);
  EXPECT_TRUE(swc.ok()) << swc;
  std::optional<v1::AgentInfo> eus2;
  ASSERT_TRUE(WaitFor(
      [&] {
        eus2 = Info("eus2");
        return eus2.has_value() && !eus2->last_nack_reason().empty();
      },
      kWait))
      << "eus2 never refused version 2";
  EXPECT_EQ(eus2->acked_version(), 1u);
  EXPECT_TRUE(eus2->connected());
  EXPECT_THAT(eus2->last_nack_reason(), HasSubstr("cannot persist the table"));

  // eus2 still serves version 1: the route version 2 took away still answers, the one it
  // added is still refused.
  EXPECT_EQ(ServedVersion("eus2"), 1);
  EXPECT_EQ(ChatStatus("eus2", "gpt-4o"), 200);
  EXPECT_EQ(ChatStatus("eus2", "gpt-4o-canary"), 403);

  // The operator sees it: eus2 behind with the reason, swc on version 2 with none.
  const std::string eus2_id = AgentId("eus2");
  const std::string swc_id = AgentId("swc");
  const CtlResult table = Ctl({"agents"});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, StartsWith("current version 2\n"));
  EXPECT_THAT(table.out,
              ContainsRegex(absl::StrCat(eus2_id, " +eastus2 +1 +yes .*cannot persist the table")));
  std::map<std::string, std::map<std::string, std::string>> agents = CtlAgents();
  ASSERT_EQ(agents.size(), 2u);
  EXPECT_EQ(agents[eus2_id]["acked_version"], "1");
  EXPECT_THAT(agents[eus2_id]["nack"], HasSubstr("cannot persist the table"));
  EXPECT_EQ(agents[swc_id]["acked_version"], "2");
  EXPECT_THAT(agents[swc_id]["nack"], IsEmpty());

  // With the state directory mended, the next apply is taken, persisted and served.
  ASSERT_EQ(::unlink((table_path + "/keep").c_str()), 0);
  ASSERT_EQ(::rmdir(table_path.c_str()), 0);
  v1::Topology next = moved;
  next.mutable_stamps(0)->set_description("after a refused apply");
  absl::StatusOr<v1::ApplyResponse> taken = fleet_.Apply(next);
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_EQ(taken->version(), 3u);
  absl::Status acked = fleet_.WaitForAcks(3, 2, kWait);
  ASSERT_TRUE(acked.ok()) << acked;
  EXPECT_EQ(ServedVersion("eus2"), 3);
  EXPECT_EQ(ChatStatus("eus2", "gpt-4o-canary"), 200);
  EXPECT_EQ(ChatStatus("eus2", "gpt-4o"), 403);
  absl::StatusOr<std::string> persisted = ReadFile(table_path);
  ASSERT_TRUE(persisted.ok()) << persisted.status();
  v1::RoutingTable persisted_table;
  ASSERT_TRUE(persisted_table.ParseFromString(*persisted));
  EXPECT_EQ(persisted_table.version(), 3u);
  agents = CtlAgents();
  for (const std::string& id : {eus2_id, swc_id}) {
    EXPECT_EQ(agents[id]["acked_version"], "3") << id;
    EXPECT_THAT(agents[id]["nack"], IsEmpty()) << id;
  }
}

TEST_F(FleetConsistencyE2eTest, ConcurrentAppliesLeaveGetTheStoreAndEveryAgentOnOneVersion) {
  StartFleetOnReference({{"eus2", "eastus2"}, {"wus3", "westus3"}, {"swc", "swedencentral"}});

  constexpr int kApplies = 8;
  constexpr uint64_t kLast = 1 + kApplies;

  // Every agent's /status, polled throughout: the versions each served, in order. A poller
  // stops once its agent serves the last version, or at its own deadline (or when an apply
  // failed) so that a broken fleet fails the test instead of hanging it.
  std::atomic<bool> stop{false};
  std::vector<std::vector<uint64_t>> seen(agents_.size());
  std::vector<std::string> poll_errors(agents_.size());
  std::vector<std::thread> pollers;
  for (size_t a = 0; a < agents_.size(); ++a) {
    pollers.emplace_back([&, a, client = fleet_.AgentClient(agents_[a])] {
      const absl::Time deadline = absl::Now() + 2 * kWait;
      while (!stop.load() && absl::Now() < deadline &&
             (seen[a].empty() || seen[a].back() != kLast)) {
        absl::StatusOr<HttpResponse> status = client->Send("GET", "/status");
        boost::system::error_code error;
        const boost::json::value parsed =
            status.ok() ? boost::json::parse(status->body, error) : boost::json::value();
        if (!status.ok() || error || !parsed.is_object()) {
          poll_errors[a] = status.ok() ? status->body : status.status().ToString();
        } else if (const boost::json::value* version = parsed.as_object().if_contains("version");
                   version != nullptr && version->is_int64()) {
          seen[a].push_back(static_cast<uint64_t>(version->as_int64()));
        }
        absl::SleepFor(absl::Milliseconds(5));
      }
    });
  }

  // Eight applies released together, each on its own channel so they overlap in the
  // control plane; each a distinct topology, so each must get its own version.
  auto variant = [this](int i) {
    v1::Topology topology = topology_;
    topology.mutable_tenants(0)->mutable_limits()->set_tokens_per_minute(1000000 + i);
    return topology;
  };
  std::latch start(kApplies);
  std::vector<grpc::Status> statuses(kApplies);
  std::vector<uint64_t> versions(kApplies);
  std::vector<std::thread> appliers;
  for (int i = 0; i < kApplies; ++i) {
    appliers.emplace_back([&, i] {
      auto admin = v1::Admin::NewStub(grpc::CreateChannel(
          absl::StrCat("127.0.0.1:", fleet_.cp_port()), grpc::InsecureChannelCredentials()));
      v1::ApplyRequest request;
      *request.mutable_topology() = variant(i);
      v1::ApplyResponse response;
      std::unique_ptr<grpc::ClientContext> context = fleet_.AdminContext(std::chrono::seconds(60));
      start.arrive_and_wait();
      statuses[i] = admin->Apply(context.get(), request, &response);
      versions[i] = response.version();
      if (!statuses[i].ok()) {
        stop = true;
      }
    });
  }
  for (std::thread& applier : appliers) {
    applier.join();
  }
  for (std::thread& poller : pollers) {
    poller.join();
  }

  absl::Status acked = fleet_.WaitForAcks(kLast, static_cast<int>(agents_.size()), kWait);
  ASSERT_TRUE(acked.ok()) << acked;

  // Each apply got its own version, 2 to 9.
  std::vector<uint64_t> sorted = versions;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < kApplies; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    EXPECT_EQ(sorted[i], 2u + i) << absl::StrJoin(versions, ", ");
  }
  const int last_apply =
      static_cast<int>(std::find(versions.begin(), versions.end(), kLast) - versions.begin());
  ASSERT_LT(last_apply, kApplies) << absl::StrJoin(versions, ", ");

  // get: the last version, holding what the apply that got it sent.
  v1::GetResponse got;
  grpc::Status get = fleet_.admin().Get(fleet_.AdminContext().get(), {}, &got);
  ASSERT_TRUE(get.ok()) << get.error_message();
  EXPECT_EQ(got.version(), kLast);
  EXPECT_TRUE(MessageDifferencer::Equals(got.topology(), variant(last_apply)))
      << "get holds tokens_per_minute " << got.topology().tenants(0).limits().tokens_per_minute()
      << ", the apply of version " << kLast << " sent " << 1000000 + last_apply;

  // The SQLite file, read on a connection of its own: the same version and topology, and
  // every agent recorded on it.
  absl::StatusOr<std::unique_ptr<TopologyStore>> store =
      TopologyStore::Open(fleet_.dir() + "/topology.db");
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<StoredTopology> stored = (*store)->Load();
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->version, kLast);
  EXPECT_TRUE(MessageDifferencer::Equals(stored->topology, got.topology()));
  absl::StatusOr<std::vector<v1::AgentInfo>> recorded = (*store)->ListAgents();
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(recorded->size(), agents_.size());
  for (const v1::AgentInfo& agent : *recorded) {
    EXPECT_EQ(agent.acked_version(), kLast) << agent.agent_id();
    EXPECT_THAT(agent.last_nack_reason(), IsEmpty()) << agent.agent_id();
  }

  // Every agent ends on it, and none ever went back: neither in what /status showed nor in
  // what it logged as applied.
  for (size_t a = 0; a < agents_.size(); ++a) {
    const std::string& agent = agents_[a];
    EXPECT_EQ(ServedVersion(agent), static_cast<int64_t>(kLast)) << agent;
    ASSERT_FALSE(seen[a].empty()) << agent << " never answered /status: " << poll_errors[a];
    EXPECT_TRUE(std::is_sorted(seen[a].begin(), seen[a].end()))
        << agent << " served " << absl::StrJoin(seen[a], ", ");
    EXPECT_EQ(seen[a].back(), kLast) << agent;
    const std::vector<uint64_t> applied = AppliedVersions(fleet_.agent_process(agent).Output());
    EXPECT_TRUE(std::is_sorted(applied.begin(), applied.end()))
        << agent << " applied " << absl::StrJoin(applied, ", ");
  }
}

}  // namespace
}  // namespace spillway::test
