// One tenant's TPM limit held across three agents of a stamp: the control plane splits the
// limit by demand and every agent enforces its share. Clients behave like the SDKs (they
// wait retry-after-ms on a 429); the test counts the tokens the backend reported for the
// requests admitted during one measured minute, and checks the sum is within 10 % of the
// limit, also when one agent gets three times the clients of the others.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/fleet_fixture.h"

namespace spillway::test {
namespace {

constexpr uint64_t kLimit = 6000;  // tokens per minute, stamp-wide
constexpr char kTopology[] = R"(
stamps: [ { name: us } ]
regions: [ { name: eastus2, stamp: us } ]
subscriptions: [ { name: s } ]
instances:
  - { name: a, region: eastus2, subscription: s, endpoint: "{a}", insecure_http: true, auth: { api_key_env: FLEET_BACKEND_KEY } }
deployments:
  - { instance: a, name: gpt-4o, model: gpt-4o, version: "1", sku: Standard, capacity: 1000 }
pools: [ { name: p, members: [ { deployment: a/gpt-4o } ] } ]
routes: [ { name: gpt-4o, stamp: us, tiers: [ p ] } ]
tenants:
  - { name: shared, stamp: us, routes: [ gpt-4o ], limits: { tokens_per_minute: 6000 }, api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)";
// Each request asks for 50 tokens and the mock answers with exactly 50 (its completions are
// long enough), plus 3 prompt tokens: 53 used, 58 charged up front by the agents.
constexpr char kBody[] = R"({"messages":[{"role":"user","content":"Hi, quota."}],"max_tokens":50})";
constexpr auto kWarmUp = std::chrono::seconds(6);
constexpr auto kMeasured = std::chrono::seconds(60);

using Clock = std::chrono::steady_clock;

struct Admitted {
  Clock::time_point sent;
  std::string agent;
  int64_t tokens = 0;
};

class TenantBudgetE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        fleet_
            .AddMock("a", {"--deployments", "gpt-4o:tpm=100000000", "--completion-tokens", "1000"})
            .ok());
    ASSERT_TRUE(fleet_.StartControlPlane().ok());
    absl::StatusOr<v1::Topology> topology = ParseTopologyYaml(
        absl::StrReplaceAll(kTopology, {{"{a}", fleet_.MockEndpoint("a")}}), "topology.yaml");
    ASSERT_TRUE(topology.ok()) << topology.status();
    ASSERT_TRUE(fleet_.Apply(*topology).ok());
    for (const char* name : {"busy", "quiet1", "quiet2"}) {
      ASSERT_TRUE(fleet_.StartAgent(name, "eastus2", {"--demand-report-ms", "500"}).ok());
    }
    ASSERT_TRUE(fleet_.WaitForAcks(1, 3).ok());
    for (const char* name : {"busy", "quiet1", "quiet2"}) {
      ASSERT_TRUE(WaitForShare(name)) << name << " never received its share";
    }
  }

  // The tenant's TPM share the agent enforces (per its /status), or -1 while it has none.
  double Share(const std::string& agent) {
    absl::StatusOr<std::string> status = fleet_.AgentStatus(agent);
    if (!status.ok()) {
      return -1;
    }
    const boost::json::value json = boost::json::parse(*status);
    const boost::json::value* quotas = json.as_object().if_contains("tenant_quotas");
    const boost::json::value* shared =
        quotas == nullptr ? nullptr : quotas->at("tenants").as_object().if_contains("shared");
    if (shared == nullptr || !shared->at("share_from_control_plane").as_bool()) {
      return -1;
    }
    const boost::json::value* tpm = shared->as_object().if_contains("tokens_per_minute");
    return tpm == nullptr ? -1 : tpm->to_number<double>();
  }

  // Polls until the agent enforces a share (equal to `want`, when given).
  bool WaitForShare(const std::string& agent, double want = -1) {
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      const double share = Share(agent);
      if (share >= 0 && (want < 0 || share == want)) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Clients per agent, each sending as soon as it may, until `until`.
  std::vector<Admitted> Drive(const std::map<std::string, int>& clients, Clock::time_point until) {
    std::mutex mu;
    std::vector<Admitted> admitted;
    std::atomic<int> unexpected{0};
    std::vector<std::thread> threads;
    for (const auto& [agent, count] : clients) {
      for (int i = 0; i < count; ++i) {
        threads.emplace_back([&, agent = agent] {
          auto client = fleet_.AgentClient(agent);
          while (Clock::now() < until) {
            const Clock::time_point sent = Clock::now();
            absl::StatusOr<HttpResponse> response = client->Send(
                "POST", "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
                {{"api-key", "test"}}, kBody);
            if (!response.ok()) {
              ++unexpected;
              continue;
            }
            if (response->status == 200) {
              const boost::json::value body = boost::json::parse(response->body);
              std::lock_guard<std::mutex> lock(mu);
              admitted.push_back({sent, agent, body.at("usage").at("total_tokens").as_int64()});
              continue;
            }
            if (response->status != 429) {
              ++unexpected;
              continue;
            }
            // As the SDKs do: wait what the agent said, to the millisecond.
            int64_t wait_ms = 1000;
            (void)absl::SimpleAtoi(response->Header("retry-after-ms").value_or("1000"), &wait_ms);
            const auto wake = std::min(until, Clock::now() + std::chrono::milliseconds(wait_ms));
            std::this_thread::sleep_until(wake);
          }
        });
      }
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    EXPECT_EQ(unexpected.load(), 0) << "only 200s and 429s are expected";
    return admitted;
  }

  ControlPlaneFleet fleet_;
};

TEST_F(TenantBudgetE2e, ThreeAgentsHoldOneTenantWithinTenPercentOfItsLimit) {
  const Clock::time_point start = Clock::now();
  const Clock::time_point measure_from = start + kWarmUp;
  const Clock::time_point measure_to = measure_from + kMeasured;
  // One agent gets three times the traffic of each of the others.
  std::vector<Admitted> admitted = Drive({{"busy", 3}, {"quiet1", 1}, {"quiet2", 1}}, measure_to);

  std::map<std::string, int64_t> by_agent;
  int64_t total = 0;
  for (const Admitted& a : admitted) {
    if (a.sent >= measure_from && a.sent < measure_to) {
      by_agent[a.agent] += a.tokens;
      total += a.tokens;
    }
  }
  const std::string summary =
      absl::StrCat("admitted in the measured minute: busy ", by_agent["busy"], ", quiet1 ",
                   by_agent["quiet1"], ", quiet2 ", by_agent["quiet2"], " = ", total, " tokens");
  std::printf("%s\n", summary.c_str());
  for (const char* agent : {"busy", "quiet1", "quiet2"}) {
    absl::StatusOr<std::string> status = fleet_.AgentStatus(agent);
    if (status.ok()) {
      std::printf("%s quotas: %s\n", agent,
                  boost::json::serialize(boost::json::parse(*status).at("tenant_quotas")).c_str());
    }
  }
  EXPECT_GE(total, static_cast<int64_t>(kLimit * 9 / 10)) << summary;
  EXPECT_LE(total, static_cast<int64_t>(kLimit * 11 / 10)) << summary;
  for (const char* agent : {"busy", "quiet1", "quiet2"}) {
    EXPECT_GT(by_agent[agent], 0) << agent << " admitted nothing; " << summary;
  }
  // The split follows demand: the agent with three clients gets the largest share.
  EXPECT_GT(by_agent["busy"], by_agent["quiet1"]) << summary;
  EXPECT_GT(by_agent["busy"], by_agent["quiet2"]) << summary;

  // The backend saw every admitted request and nothing else.
  absl::StatusOr<HttpResponse> stats =
      std::make_unique<HttpClient>("127.0.0.1", fleet_.mock("a").port())
          ->Send("GET", "/mock/stats");
  ASSERT_TRUE(stats.ok());
  const boost::json::value json = boost::json::parse(stats->body);
  EXPECT_EQ(json.at("deployments").at("gpt-4o").at("requests").as_int64(),
            static_cast<int64_t>(admitted.size()));
}

TEST_F(TenantBudgetE2e, AnAgentThatLeavesHasItsShareReassigned) {
  // No demand yet: an even split, summing to the limit.
  for (const char* agent : {"busy", "quiet1", "quiet2"}) {
    EXPECT_TRUE(WaitForShare(agent, kLimit / 3)) << agent << ": " << Share(agent);
  }
  fleet_.KillAgent("quiet2");
  for (const char* agent : {"busy", "quiet1"}) {
    EXPECT_TRUE(WaitForShare(agent, kLimit / 2)) << agent << ": " << Share(agent);
  }
  // It comes back: it gets a share at once, and the others give theirs up.
  ASSERT_TRUE(fleet_.StartAgent("quiet2", "eastus2", {"--demand-report-ms", "500"}).ok());
  for (const char* agent : {"busy", "quiet1", "quiet2"}) {
    EXPECT_TRUE(WaitForShare(agent, kLimit / 3)) << agent << ": " << Share(agent);
  }
}

}  // namespace
}  // namespace spillway::test
