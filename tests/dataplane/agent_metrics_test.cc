// GET /metrics on a real agent: requests by route, status and tier, attempts, latency and
// time-to-first-byte histograms in seconds, tokens, per-backend counters, and (standalone)
// each tenant's metered usage; no key ever appears in it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"
#include "tests/support/promtool.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kTenants[] = R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
)";

class AgentMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fleet_.AddMock("a", {"--deployments", "gpt-4o", "--completion-tokens", "7"}).ok());
    ASSERT_TRUE(fleet_
                    .StartAgent(SingleBackendTopology({"gpt-4o"}, kTenants), "eastus2",
                                {"--usage-flush-ms", "50"})
                    .ok());
  }

  std::string Scrape() {
    absl::StatusOr<HttpResponse> response = fleet_.AgentClient()->Send("GET", "/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) {
      return "";
    }
    EXPECT_EQ(response->status, 200);
    EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("text/plain"));
    return response->body;
  }

  AgentFleet fleet_;
};

TEST_F(AgentMetricsTest, CountsRequestsTokensAndTenantUsage) {
  auto client = fleet_.AgentClient();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<HttpResponse> ok =
        client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "test"}}, ChatBody(7));
    ASSERT_TRUE(ok.ok() && ok->status == 200);
  }
  absl::StatusOr<HttpResponse> denied =
      client->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "wrong-key"}}, ChatBody(7));
  ASSERT_TRUE(denied.ok() && denied->status == 401);
  absl::StatusOr<HttpResponse> missing =
      client->Send("POST", ChatTarget("nope"), {{"api-key", "test"}}, ChatBody(7));
  ASSERT_TRUE(missing.ok() && missing->status == 404);

  // Tenant usage reaches /metrics at the next usage flush (50 ms here).
  std::string metrics;
  for (int i = 0; i < 100; ++i) {
    metrics = Scrape();
    if (absl::StrContains(metrics,
                          "spillway_tenant_requests_total{tenant=\"app\",route=\"gpt-4o\"} 3")) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(metrics, HasSubstr("spillway_requests_total{route=\"gpt-4o\",code=\"200\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_requests_total{route=\"\",code=\"401\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_requests_total{route=\"nope\",code=\"404\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_upstream_attempts_total{route=\"gpt-4o\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_request_duration_seconds_bucket{route=\"gpt-4o\","
                                 "le=\"+Inf\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_request_duration_seconds_bucket{route=\"gpt-4o\","
                                 "le=\"0.005\"} "));
  EXPECT_THAT(metrics, HasSubstr("spillway_request_duration_seconds_count{route=\"gpt-4o\"} 3\n"));
  EXPECT_THAT(metrics, Not(HasSubstr("_ms")));
  // Only the three a backend answered have a first byte (not the 401 and 404).
  EXPECT_THAT(metrics,
              HasSubstr("spillway_time_to_first_byte_seconds_count{route=\"gpt-4o\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_time_to_first_byte_seconds_count{route=\"nope\"} 0\n"));
  EXPECT_THAT(
      metrics,
      HasSubstr("spillway_tier_requests_total{route=\"gpt-4o\",tier=\"0\",pool=\"p\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_backend_attempts_total{backend=\"a/gpt-4o\","
                                 "sku=\"Standard\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_backend_throttled_total{backend=\"a/gpt-4o\","
                                 "sku=\"Standard\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_route_available_backends{route=\"gpt-4o\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("# HELP spillway_routing_table_version "));
  EXPECT_THAT(metrics,
              HasSubstr("spillway_tokens_total{route=\"gpt-4o\",kind=\"completion\"} 21\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_tenant_tokens_total{tenant=\"app\",route=\"gpt-4o\","
                                 "kind=\"completion\"} 21\n"));
  EXPECT_THAT(metrics,
              HasSubstr("spillway_tenant_requests_total{tenant=\"app\",route=\"gpt-4o\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("spillway_routing_table_version 1\n"));
  // A standalone agent's families (tenants' usage, no spool) pass promtool too.
  const PromtoolRun lint =
      PromtoolCheckMetrics(SPILLWAY_PROMTOOL, metrics, fleet_.temp_dir() + "/metrics.prom");
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_EQ(lint.output, "") << metrics;
  EXPECT_THAT(metrics, Not(HasSubstr("wrong-key")));
  EXPECT_THAT(metrics, Not(HasSubstr(kBackendKey)));
}

TEST_F(AgentMetricsTest, A429IsCountedForItsBackend) {
  ASSERT_TRUE(fleet_.SetFault("a", R"({"status":429,"count":1,"retry_after_ms":1})").ok());
  absl::StatusOr<HttpResponse> throttled =
      fleet_.AgentClient()->Send("POST", ChatTarget("gpt-4o"), {{"api-key", "test"}}, ChatBody(7));
  ASSERT_TRUE(throttled.ok());
  EXPECT_EQ(throttled->status, 429);
  EXPECT_THAT(Scrape(), HasSubstr("spillway_backend_throttled_total{backend=\"a/gpt-4o\","
                                  "sku=\"Standard\"} 1\n"));
}

TEST_F(AgentMetricsTest, AScrapeIsNotCountedAsARequest) {
  Scrape();
  const std::string metrics = Scrape();
  EXPECT_THAT(metrics, Not(HasSubstr("spillway_requests_total{")));
}

}  // namespace
}  // namespace spillway::test
