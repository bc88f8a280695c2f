// `spillwayctl capacity` end to end (issue 21): a day of made-up usage with a known answer is
// sent to a real spillway-cp as an agent would send it (over AgentSync, acknowledged), then the
// real spillwayctl reads it back through the Admin API and must recommend the PTU count, the
// spill share and the monthly costs worked out by hand below.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/topology_yaml.h"
#include "tests/controlplane/cli/ctl_runner.h"
#include "tests/controlplane/fleet_fixture.h"
#include "tests/controlplane/raw_agent.h"

namespace spillway::test {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr int kMinutes = 1440;
constexpr int kBusyFrom = 1400;  // the last 40 minutes carry twice the load
constexpr double kMonthScale = 730.0 * 60 / kMinutes;

// Round figures, so the expected costs below can be worked out by hand: PTUs at the regional
// rates (the workload PTU is ProvisionedManaged), what spills at data-zone Standard prices
// (the route's Standard deployments are DataZoneStandard).
constexpr char kRates[] = R"({"models": [
  {"model": "gpt-4o", "deployment_type": "regional", "input_tpm_per_ptu": 2500,
   "output_weight": 3, "min_ptu": 50, "increment": 50, "ptu_hour_usd": 2.0,
   "input_per_1k_usd": 0.004, "output_per_1k_usd": 0.016},
  {"model": "gpt-4o", "deployment_type": "data_zone", "input_tpm_per_ptu": 2500,
   "output_weight": 3, "min_ptu": 15, "increment": 5, "ptu_hour_usd": 1.0,
   "input_per_1k_usd": 0.002, "output_per_1k_usd": 0.008}]})";

v1::UsageAggregate Aggregate(int64_t minute_ms, const std::string& tenant,
                             const std::string& backend, const std::string& region, uint32_t status,
                             uint64_t requests, uint64_t prompt, uint64_t completion) {
  v1::UsageAggregate a;
  a.set_minute_unix_ms(minute_ms);
  a.set_tenant(tenant);
  a.set_route("gpt-4o");
  a.set_backend_id(backend);
  a.set_instance(backend.substr(0, backend.find('/')));
  a.set_region(region);
  a.set_status(status);
  a.set_requests(requests);
  a.set_prompt_tokens(prompt);
  a.set_completion_tokens(completion);
  a.set_total_tokens(prompt + completion);
  a.set_attempts(requests);
  return a;
}

// The US gpt-4o route, every minute of the day: two tenants on the workload PTU, 40,000 + 30,000
// prompt and 6,000 + 4,000 completion tokens (70,000 + 3 x 10,000 = 100,000 weighted TPM). In
// the last 40 minutes the same again spills to Standard (200,000 weighted) and 3 requests a
// minute get a 429. The EU route serves a little on Standard in the first 10 minutes.
std::vector<v1::UsageAggregate> History(absl::Time since) {
  std::vector<v1::UsageAggregate> history;
  for (int i = 0; i < kMinutes; ++i) {
    const int64_t minute = absl::ToUnixMillis(since + absl::Minutes(i));
    for (const std::string backend : {"aoai-eus2-ptu/gpt-4o-ptu", "aoai-eus2-std/gpt-4o"}) {
      if (backend == "aoai-eus2-std/gpt-4o" && i < kBusyFrom) {
        continue;
      }
      history.push_back(
          Aggregate(minute, "checkout-assistant", backend, "eastus2", 200, 6, 40'000, 6'000));
      history.push_back(
          Aggregate(minute, "nightly-summaries", backend, "eastus2", 200, 4, 30'000, 4'000));
    }
    if (i >= kBusyFrom) {
      history.push_back(Aggregate(minute, "nightly-summaries", "aoai-eus2-ptu/gpt-4o-ptu",
                                  "eastus2", 429, 3, 0, 0));
    }
    if (i < 10) {
      history.push_back(Aggregate(minute, "eu-helpdesk", "aoai-swc-std/gpt-4o", "swedencentral",
                                  200, 1, 300, 100));
    }
  }
  return history;
}

class CapacityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::Status started = fleet_.StartControlPlane();
    ASSERT_TRUE(started.ok()) << started;
    absl::StatusOr<v1::Topology> topology = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
    ASSERT_TRUE(topology.ok()) << topology.status();
    // 20 PTU of workload and 20 of enterprise pool: 100,000 weighted TPM, which the busy
    // minutes overrun.
    for (v1::Deployment& deployment : *topology->mutable_deployments()) {
      if (deployment.name() == "gpt-4o-ptu" || deployment.name() == "gpt-4o-pool") {
        deployment.set_capacity(20);
      }
    }
    absl::StatusOr<v1::ApplyResponse> applied = fleet_.Apply(*topology);
    ASSERT_TRUE(applied.ok()) << applied.status();

    // A whole day of minutes that ended a while ago: the command's --until is exact.
    until_ = absl::Floor(absl::Now() - absl::UnixEpoch(), absl::Minutes(1)) + absl::UnixEpoch() -
             absl::Hours(1);
    since_ = until_ - absl::Minutes(kMinutes);
    const std::vector<v1::UsageAggregate> history = History(since_);
    RawAgent agent(fleet_.cp_port());
    ASSERT_TRUE(agent.Hello("capacity-history", "eastus2"));
    uint64_t sequence = 0;
    for (size_t start = 0; start < history.size(); start += 500) {
      v1::AgentMessage message;
      v1::UsageBatch& batch = *message.mutable_usage();
      batch.set_agent_id("capacity-history");
      batch.set_sequence(++sequence);
      for (size_t i = start; i < std::min(history.size(), start + 500); ++i) {
        *batch.add_aggregates() = history[i];
      }
      ASSERT_TRUE(agent.Write(message));
    }
    ASSERT_TRUE(agent.ReadUsageAck(sequence)) << "the control plane never stored the history";
    rates_file_ = absl::StrCat(fleet_.dir(), "/rates.json");
    WriteTextFile(rates_file_, kRates);
  }

  CtlResult Capacity(std::vector<std::string> args) {
    std::vector<std::string> full = {
        "--server",
        absl::StrCat("127.0.0.1:", fleet_.cp_port()),
        "capacity",
        "--since",
        absl::FormatTime(absl::RFC3339_sec, since_, absl::UTCTimeZone()),
        "--until",
        absl::FormatTime(absl::RFC3339_sec, until_, absl::UTCTimeZone())};
    full.insert(full.end(), args.begin(), args.end());
    return RunCtl(SPILLWAY_CTL_BIN, full, absl::StrCat(fleet_.dir(), "/ctl-", runs_++));
  }

  // The one route of `-o json` output named `route`.
  json::object Route(const CtlResult& result, const std::string& route) {
    const json::value report = json::parse(result.out);
    for (const json::value& entry : report.at("routes").as_array()) {
      if (entry.at("route").as_string() == route) {
        return entry.as_object();
      }
    }
    ADD_FAILURE() << "no route " << route << " in " << result.out;
    return {};
  }

  ControlPlaneFleet fleet_;
  absl::Time since_;
  absl::Time until_;
  std::string rates_file_;
  int runs_ = 0;
};

double Number(const json::object& object, const char* field) {
  return object.at(field).to_number<double>();
}

TEST_F(CapacityE2eTest, RecommendsThePtusAndCostsWorkedOutByHand) {
  const CtlResult result = Capacity({"--rates", rates_file_, "-o", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json::value report = json::parse(result.out);
  EXPECT_EQ(report.at("window_minutes").to_number<int>(), kMinutes);
  EXPECT_EQ(report.at("routes").as_array().size(), 2u);

  const json::object us = Route(result, "us/gpt-4o");
  EXPECT_EQ(us.at("model").as_string(), "gpt-4o");
  EXPECT_EQ(us.at("region").as_string(), "eastus2");
  EXPECT_EQ(us.at("deployment_type").as_string(), "regional");
  // 1,400 minutes at 100,000 weighted TPM, 40 at 200,000: the 1,368th of 1,440 is 100,000.
  EXPECT_EQ(Number(us, "peak_tpm"), 200'000);
  EXPECT_EQ(Number(us, "p50_tpm"), 100'000);
  EXPECT_EQ(Number(us, "p95_tpm"), 100'000);
  EXPECT_EQ(Number(us, "p99_tpm"), 200'000);
  // 100,000 / 2,500 = 40 PTU, but regional deployments come in 50s: 50 PTU serve 125,000.
  EXPECT_EQ(Number(us, "recommended_ptu"), 50);
  EXPECT_EQ(Number(us, "current_ptu"), 40);
  // Today's 40 PTU serve 100,000: each busy minute would spill 100,000 of its 200,000.
  EXPECT_NEAR(Number(us, "current_spill_share"), 4e6 / 148e6, 1e-12);
  // Each busy minute spills 75,000 of its 200,000 weighted tokens: 40 x 75,000 of 148,000,000.
  EXPECT_NEAR(Number(us, "spill_share"), 3e6 / 148e6, 1e-12);

  const json::object& cost = us.at("monthly_cost").as_object();
  EXPECT_NEAR(Number(cost, "ptu_usd"), 50 * 2.0 * 730, 1e-6);
  // Spilled: 37.5% of 140,000 prompt and 20,000 completion tokens, 40 times, at data zone
  // Standard prices, scaled from the day to 730 hours.
  const double spill = (40 * 52'500 / 1000.0 * 0.002 + 40 * 7'500 / 1000.0 * 0.008) * kMonthScale;
  EXPECT_NEAR(Number(cost, "standard_spill_usd"), spill, 1e-6);
  EXPECT_NEAR(Number(cost, "ptu_plus_standard_usd"), 50 * 2.0 * 730 + spill, 1e-6);
  const double all_standard = ((1400 * 70'000.0 + 40 * 140'000.0) / 1000 * 0.002 +
                               (1400 * 10'000.0 + 40 * 20'000.0) / 1000 * 0.008) *
                              kMonthScale;
  EXPECT_NEAR(Number(cost, "all_standard_usd"), all_standard, 1e-6);

  const json::object& observed = us.at("observed").as_object();
  EXPECT_EQ(observed.at("requests").as_string(), "14920");  // 1,440 x 10 + 40 x (10 + 3)
  EXPECT_EQ(observed.at("throttled").as_string(), "120");
  EXPECT_EQ(Number(observed, "spill_minutes"), 40);
  EXPECT_EQ(Number(observed, "active_minutes"), kMinutes);
  EXPECT_NEAR(Number(observed, "ptu_share"), 115.2 / 118.4, 1e-12);
  EXPECT_THAT(std::string(us.at("explanation").as_string()),
              HasSubstr("p95 of 1440 minutes = 100000 weighted TPM"));

  const json::object eu = Route(result, "eu/gpt-4o");
  EXPECT_EQ(eu.at("deployment_type").as_string(), "data_zone");
  EXPECT_EQ(Number(eu, "peak_tpm"), 600);
  EXPECT_EQ(Number(eu, "p95_tpm"), 0) << "10 busy minutes of 1,440";
  EXPECT_EQ(Number(eu, "recommended_ptu"), 0);
}

TEST_F(CapacityE2eTest, AHigherTargetBuysMorePtusAndSpillsNothing) {
  const CtlResult result = Capacity(
      {"--rates", rates_file_, "--route", "us/gpt-4o", "--target-percentile", "99", "-o", "json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(json::parse(result.out).at("routes").as_array().size(), 1u);
  const json::object us = Route(result, "us/gpt-4o");
  EXPECT_EQ(Number(us, "target_tpm"), 200'000);
  EXPECT_EQ(Number(us, "recommended_ptu"), 100) << "80 PTU, in steps of 50";
  EXPECT_EQ(Number(us, "spill_share"), 0);
}

TEST_F(CapacityE2eTest, TheBuiltInRatesAndTheTableNeedNoFile) {
  const CtlResult result = Capacity({"--route", "us/gpt-4o"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<std::string> lines = absl::StrSplit(result.out, '\n');
  ASSERT_GE(lines.size(), 4u) << result.out;
  EXPECT_THAT(lines[0], HasSubstr("ROUTE"));
  EXPECT_THAT(lines[1], ::testing::StartsWith("us/gpt-4o"));
  EXPECT_THAT(lines[1], ::testing::ContainsRegex("\\b120 +40 +97\\.3% +2\\.7% +50 +2\\.0%"))
      << "THROTTLED, PTU_NOW, ON_PTU, SPILL_NOW, PTU, SPILL (the shipped gpt-4o rates agree)";
  EXPECT_THAT(result.out, HasSubstr("us/gpt-4o: gpt-4o regional: p95 of 1440 minutes"));
}

// The same rates steer the fleet: spillway-cp --ptu-rates compiles each model's tokens a minute
// per PTU into the agents' tables, the headroom they spill by (GET /status shows it).
TEST(PtuRatesE2eTest, TheControlPlanesRatesSetTheAgentsHeadroom) {
  ControlPlaneFleet fleet;
  ASSERT_TRUE(fleet.AddReferenceMocks().ok());
  const std::string rates = absl::StrCat(fleet.dir(), "/rates.json");
  // Regional gpt-4o only: the data-zone pool falls back to --tokens-per-ptu-minute.
  WriteTextFile(rates, R"({"models": [{"model": "gpt-4o", "deployment_type": "regional",
                                        "input_tpm_per_ptu": 6000}]})");
  absl::Status started =
      fleet.StartControlPlane({"--ptu-rates", rates, "--tokens-per-ptu-minute", "1000"});
  ASSERT_TRUE(started.ok()) << started;
  started = fleet.StartAgent("eus2", "eastus2");
  ASSERT_TRUE(started.ok()) << started;
  absl::StatusOr<v1::Topology> topology = ReferenceTopologyOnMocks(fleet);
  ASSERT_TRUE(topology.ok()) << topology.status();
  absl::StatusOr<v1::ApplyResponse> applied = fleet.Apply(*topology);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_TRUE(fleet.WaitForAcks(applied->version(), 1).ok());
  absl::StatusOr<std::string> status = fleet.AgentStatus("eus2");
  ASSERT_TRUE(status.ok()) << status.status();
  std::map<std::string, int64_t> tokens_per_minute;
  const json::value parsed = json::parse(*status);
  for (const json::value& backend : parsed.at("backends").as_array()) {
    tokens_per_minute[std::string(backend.at("id").as_string())] =
        backend.at("tokens_per_minute").to_number<int64_t>();
  }
  EXPECT_EQ(tokens_per_minute["aoai-eus2-ptu/gpt-4o-ptu"], 100 * 6000);
  EXPECT_EQ(tokens_per_minute["aoai-wus3-ptu/gpt-4o-pool"], 300 * 1000);
  EXPECT_EQ(tokens_per_minute["aoai-eus2-std/gpt-4o"], 450 * 1000) << "Standard: its own TPM";
}

TEST(PtuRatesE2eTest, AnUnreadableRatesFileStopsTheControlPlaneNamingIt) {
  ControlPlaneFleet fleet;
  absl::Status started = fleet.StartControlPlane({"--ptu-rates", "/nonexistent/rates.json"});
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()), HasSubstr("/nonexistent/rates.json"));
}

}  // namespace
}  // namespace spillway::test
