// /metrics end to end: a real spillway-cp (--metrics-listen on port 0, a temp SQLite file) and a
// real agent following it, with traffic (one PTU 429 that spills to the next tier) through the
// agent to mock backends. Both scrapes must pass `promtool check metrics` without a word, carry
// exactly the families deploy/monitoring/metric_names.txt lists, and say what happened.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_io.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/support/promtool.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

constexpr char kChat[] = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
// SHA-256("test") is checkout-assistant's key in the reference topology.
const HttpHeaders kCheckoutKey = {{"api-key", "test"}};

// The value of the sample `series` (name and labels as printed), or -1 when there is none.
double Sample(const std::string& metrics, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, series) && absl::ConsumePrefix(&line, " ")) {
      double value = -1;
      return absl::SimpleAtod(line, &value) ? value : -1;
    }
  }
  return -1;
}

// Every sample line whose series starts with `prefix`.
std::vector<std::string> Lines(const std::string& metrics, absl::string_view prefix) {
  std::vector<std::string> found;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::StartsWith(line, prefix)) {
      found.emplace_back(line);
    }
  }
  return found;
}

// The families a scrape declares (# TYPE lines).
std::set<std::string> Families(const std::string& metrics) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (absl::ConsumePrefix(&line, "# TYPE ")) {
      names.emplace(line.substr(0, line.find(' ')));
    }
  }
  return names;
}

// deploy/monitoring/metric_names.txt: the exported families, and the announced ones.
struct MetricList {
  std::set<std::string> exported;
  std::set<std::string> announced;
};
MetricList ReadMetricList() {
  MetricList list;
  absl::StatusOr<std::string> text =
      ReadFile(std::string(SPILLWAY_SOURCE_DIR) + "/deploy/monitoring/metric_names.txt");
  EXPECT_TRUE(text.ok()) << text.status();
  for (absl::string_view line : absl::StrSplit(text.value_or(""), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (absl::ConsumePrefix(&line, "announced ")) {
      list.announced.emplace(line);
    } else {
      list.exported.emplace(line);
    }
  }
  return list;
}

class MetricsEndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status mocks = fleet_.AddReferenceMocks();
    ASSERT_TRUE(mocks.ok()) << mocks;
    ASSERT_TRUE(fleet_.StartControlPlane({"--metrics-listen", "127.0.0.1:0"}).ok());
    absl::StatusOr<std::string> line =
        fleet_.cp_process().WaitForLine("metrics endpoints on ", kFleetWait);
    ASSERT_TRUE(line.ok()) << line.status();
    const absl::string_view address = absl::StripTrailingAsciiWhitespace(*line);
    ASSERT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &metrics_port_)) << *line;
    ASSERT_GT(metrics_port_, 0) << *line;
    absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet_);
    ASSERT_TRUE(topology.ok()) << topology.status();
    ASSERT_TRUE(fleet_.Apply(*topology, /*dry_run=*/true).ok());
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(*topology);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->version(), 1u);
    ASSERT_TRUE(fleet_.StartAgent("eus2", "eastus2", {"--usage-flush-ms", "100"}).ok());
    ASSERT_TRUE(fleet_.WaitForAcks(1, 1).ok());
  }

  absl::StatusOr<HttpResponse> CpGet(const std::string& target, const std::string& method = "GET") {
    return HttpClient("127.0.0.1", metrics_port_).Send(method, target);
  }
  std::string ScrapeCp() {
    absl::StatusOr<HttpResponse> response = CpGet("/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) {
      return "";
    }
    EXPECT_EQ(response->status, 200);
    EXPECT_THAT(response->Header("content-type").value_or(""), HasSubstr("version=0.0.4"));
    return response->body;
  }
  std::string ScrapeAgent() {
    absl::StatusOr<HttpResponse> response = fleet_.AgentClient("eus2")->Send("GET", "/metrics");
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->body : "";
  }

  ControlPlaneFleet fleet_;
  int metrics_port_ = 0;
};

TEST_F(MetricsEndToEndTest, BothScrapesPassPromtoolListTheirFamiliesAndSayWhatHappened) {
  // The workload PTU answers its first request 429 (blocked for 5 minutes): that request and
  // the rest spill to the enterprise PTU pool, the route's second tier.
  ASSERT_TRUE(
      HttpClient("127.0.0.1", fleet_.mock("aoai-eus2-ptu").port())
          .Send("POST", "/mock/faults", {}, R"({"status":429,"count":1,"retry_after_ms":300000})")
          .ok());
  constexpr int kChats = 4;
  for (int i = 0; i < kChats; ++i) {
    absl::StatusOr<HttpResponse> response =
        fleet_.AgentClient("eus2")->Send("POST", ChatTarget("gpt-4o"), kCheckoutKey, kChat);
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_EQ(response->status, 200) << response->body;
  }

  // Usage reaches the control plane (and the agent's tenant counters) at the agent's next
  // flush (100 ms here), the 429 its fleet health at once.
  std::string cp;
  std::string agent;
  const absl::Time deadline = absl::Now() + kFleetWait;
  while (absl::Now() < deadline) {
    cp = ScrapeCp();
    agent = ScrapeAgent();
    if (Sample(cp, R"(spillway_cp_usage_batches_received_total{outcome="stored"})") >= 1 &&
        Sample(cp, R"(spillway_cp_fleet_health_entries{state="throttled"})") == 1 &&
        Sample(agent,
               R"(spillway_tenant_requests_total{tenant="checkout-assistant",route="gpt-4o"})") ==
            kChats) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // promtool finds nothing to say about either.
  for (const auto& [name, metrics] :
       std::vector<std::pair<std::string, std::string>>{{"cp", cp}, {"agent", agent}}) {
    const PromtoolRun run =
        PromtoolCheckMetrics(SPILLWAY_PROMTOOL, metrics, absl::StrCat(fleet_.dir(), "/", name));
    EXPECT_EQ(run.exit_code, 0) << name << ":\n" << run.output << "\n" << metrics;
    EXPECT_EQ(run.output, "") << name << ":\n" << metrics;
  }

  // The families served are exactly the listed ones (the announced ones aside).
  const MetricList list = ReadMetricList();
  std::set<std::string> served = Families(cp);
  served.merge(Families(agent));
  EXPECT_EQ(served, list.exported);

  // The control plane: one agent, in eastus2, current; the applies it took.
  EXPECT_EQ(Sample(cp, "spillway_cp_topology_version"), 1);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_agents_connected{region="eastus2"})"), 1);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_agents_connected{region="westus3"})"), 0);
  const std::vector<std::string> lag = Lines(cp, "spillway_cp_agent_version_lag{");
  ASSERT_EQ(lag.size(), 1u) << cp;
  EXPECT_THAT(lag[0], HasSubstr(R"(,region="eastus2"} 0)"));
  const std::vector<std::string> acked = Lines(cp, "spillway_cp_agent_acked_version{");
  ASSERT_EQ(acked.size(), 1u) << cp;
  EXPECT_THAT(acked[0], HasSubstr(R"(,region="eastus2"} 1)"));
  EXPECT_EQ(Sample(cp, R"(spillway_cp_applies_total{result="changed"})"), 1);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_applies_total{result="dry_run"})"), 1);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_applies_total{result="failed"})"), 0);
  EXPECT_EQ(Sample(cp, "spillway_cp_apply_duration_seconds_count"), 2);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_apply_duration_seconds_bucket{le="+Inf"})"), 2);
  EXPECT_EQ(Sample(cp, "spillway_cp_nacks_total"), 0);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_fleet_health_entries{state="throttled"})"), 1);
  EXPECT_GE(Sample(cp, R"(spillway_cp_usage_batches_received_total{outcome="stored"})"), 1);
  EXPECT_GE(Sample(cp, "spillway_cp_usage_rows_stored_total"), 1);

  // The agent: the spill to tier 1, the PTU's 429, both histograms in seconds, its table.
  EXPECT_EQ(Sample(agent, R"(spillway_requests_total{route="gpt-4o",code="200"})"), kChats);
  EXPECT_EQ(
      Sample(agent,
             R"(spillway_tier_requests_total{route="gpt-4o",tier="1",pool="us-enterprise-ptu"})"),
      kChats);
  EXPECT_EQ(Sample(agent, R"(spillway_backend_throttled_total{backend="aoai-eus2-ptu/gpt-4o-ptu",)"
                          R"(sku="ProvisionedManaged"})"),
            1);
  EXPECT_EQ(Sample(agent, R"(spillway_backend_attempts_total{backend="aoai-eus2-ptu/gpt-4o-ptu",)"
                          R"(sku="ProvisionedManaged"})"),
            1);
  EXPECT_EQ(Sample(agent, R"(spillway_backend_available{backend="aoai-eus2-ptu/gpt-4o-ptu",)"
                          R"(sku="ProvisionedManaged"})"),
            0);
  EXPECT_GE(Sample(agent, R"(spillway_route_available_backends{route="gpt-4o"})"), 1);
  EXPECT_EQ(Sample(agent, R"(spillway_request_duration_seconds_count{route="gpt-4o"})"), kChats);
  EXPECT_EQ(Sample(agent, R"(spillway_request_duration_seconds_bucket{route="gpt-4o",le="300"})"),
            kChats);
  EXPECT_EQ(Sample(agent, R"(spillway_time_to_first_byte_seconds_count{route="gpt-4o"})"), kChats);
  EXPECT_GT(Sample(agent, R"(spillway_time_to_first_byte_seconds_sum{route="gpt-4o"})"), 0);
  EXPECT_EQ(Sample(agent, "spillway_routing_table_version"), 1);
  EXPECT_GE(Sample(agent, "spillway_usage_spool_batches"), 0);
  EXPECT_EQ(Sample(agent, R"(spillway_tenant_requests_total{tenant="checkout-assistant",)"
                          R"(route="gpt-4o"})"),
            kChats);
}

TEST_F(MetricsEndToEndTest, DrainsAndDrillsShowAndStillPassPromtool) {
  EXPECT_EQ(Sample(ScrapeCp(), "spillway_cp_drill_running"), 0);
  v1::DrainRequest drain;
  drain.set_scope(v1::DRAIN_SCOPE_INSTANCE);
  drain.set_name("aoai-eus2-ptu");
  drain.set_reason("moving");
  v1::ApplyResponse drained;
  ASSERT_TRUE(fleet_.admin().Drain(fleet_.AdminContext().get(), drain, &drained).ok());
  v1::DrillRequest drill_request;
  drill_request.set_region("westus3");
  drill_request.set_duration_s(60);
  v1::Drill drill;
  ASSERT_TRUE(fleet_.admin().StartDrill(fleet_.AdminContext().get(), drill_request, &drill).ok());
  const std::string cp = ScrapeCp();
  EXPECT_EQ(
      Sample(cp, R"(spillway_cp_drains{scope="instance",name="aoai-eus2-ptu",region="eastus2"})"),
      1);
  EXPECT_EQ(Sample(cp, R"(spillway_cp_drains{scope="region",name="westus3",region="westus3"})"), 1);
  EXPECT_EQ(Sample(cp, "spillway_cp_drill_running"), 1);
  const PromtoolRun run =
      PromtoolCheckMetrics(SPILLWAY_PROMTOOL, cp, absl::StrCat(fleet_.dir(), "/drains"));
  EXPECT_EQ(run.exit_code, 0) << run.output << "\n" << cp;
  EXPECT_EQ(run.output, "") << cp;
}

TEST_F(MetricsEndToEndTest, TheListenerAnswersHealthzAndNothingElse) {
  absl::StatusOr<HttpResponse> healthz = CpGet("/healthz");
  ASSERT_TRUE(healthz.ok()) << healthz.status();
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok\n");
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/"}, {"GET", "/status"}, {"POST", "/metrics"}, {"DELETE", "/healthz"}}) {
    absl::StatusOr<HttpResponse> response = CpGet(target, method);
    ASSERT_TRUE(response.ok()) << method << " " << target << ": " << response.status();
    EXPECT_EQ(response->status, 404) << method << " " << target;
  }
}

}  // namespace
}  // namespace spillway::test
