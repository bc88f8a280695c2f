// `spillwayctl capacity`'s join of per-minute usage with the reference topology (issue 21):
// routes keyed by stamp, the rates row chosen from the deployments' SKUs, what the fleet did
// (PTU share, spill minutes, 429s), routes without rates, deployments gone from the topology,
// the --route filter; the command line's window; the table; the shipped rates file.
#include "controlplane/cli/capacity_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/topology_yaml.h"
#include "controlplane/cli/args.h"
#include "controlplane/cli/capacity_views.h"

namespace spillway::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kSince = absl::FromUnixSeconds(1'796'083'200);  // 2026-12-01T00:00:00Z
constexpr int kWindowMinutes = 60;

class CapacityReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<v1::Topology> topology = LoadTopologyFile(SPILLWAY_REFERENCE_TOPOLOGY);
    ASSERT_TRUE(topology.ok()) << topology.status();
    topology_ = *std::move(topology);
    absl::StatusOr<std::vector<PtuRates>> rates = ParseRates(BuiltInRatesJson());
    ASSERT_TRUE(rates.ok()) << rates.status();
    rates_ = *std::move(rates);
    options_.since = kSince;
    options_.until = kSince + absl::Minutes(kWindowMinutes);
  }

  void Add(const std::string& route, const std::string& deployment, int minute, uint64_t prompt,
           uint64_t completion, uint64_t throttled = 0) {
    v1::UsageRow& row = *usage_.add_rows();
    (*row.mutable_key())["route"] = route;
    (*row.mutable_key())["deployment"] = deployment;
    (*row.mutable_key())["minute"] =
        absl::StrCat(absl::ToUnixMillis(kSince + absl::Minutes(minute)));
    row.set_requests(1);
    row.set_prompt_tokens(prompt);
    row.set_completion_tokens(completion);
    row.set_throttled_requests(throttled);
  }

  v1::CapacityReport Build() {
    absl::StatusOr<v1::CapacityReport> report =
        BuildCapacityReport(usage_, topology_, rates_, options_);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : v1::CapacityReport();
  }

  // The US gpt-4o route on its workload PTU every minute, and on Standard in the last ten;
  // the EU one on Standard only, in its first ten minutes.
  void AddTwoStamps() {
    for (int minute = 0; minute < kWindowMinutes; ++minute) {
      Add("gpt-4o", "aoai-eus2-ptu/gpt-4o-ptu", minute, 1000, 100);
      if (minute >= 50) {
        Add("gpt-4o", "aoai-eus2-std/gpt-4o", minute, 500, 0, /*throttled=*/2);
      }
      if (minute < 10) {
        Add("gpt-4o", "aoai-swc-std/gpt-4o", minute, 300, 100);
      }
    }
  }

  v1::Topology topology_;
  std::vector<PtuRates> rates_;
  v1::UsageQueryResponse usage_;
  CapacityOptions options_;
};

std::vector<std::string> RouteIds(const v1::CapacityReport& report) {
  std::vector<std::string> ids;
  for (const v1::RouteCapacity& route : report.routes()) {
    ids.push_back(route.route());
  }
  return ids;
}

TEST_F(CapacityReportTest, KeysRoutesByStampAndTakesTheRatesRowFromTheSkus) {
  AddTwoStamps();
  const v1::CapacityReport report = Build();
  ASSERT_THAT(RouteIds(report), ElementsAre("eu/gpt-4o", "us/gpt-4o"));
  EXPECT_EQ(report.window_minutes(), 60u);
  EXPECT_THAT(report.notes(), IsEmpty());

  const v1::RouteCapacity& us = report.routes(1);
  EXPECT_EQ(us.model(), "gpt-4o");
  EXPECT_EQ(us.region(), "eastus2") << "where the PTUs that served most are";
  EXPECT_EQ(us.deployment_type(), "regional") << "gpt-4o-ptu is ProvisionedManaged";
  EXPECT_EQ(us.current_ptu(), 400u) << "the workload PTU (100) and the enterprise pool (300)";
  // Weighted: 1000 + 3 x 100 = 1,300 TPM for 50 minutes, 1,800 in the last 10: rank 57 of 60.
  EXPECT_EQ(us.p95_tpm(), 1800);
  EXPECT_EQ(us.peak_tpm(), 1800);
  EXPECT_EQ(us.p50_tpm(), 1300);
  EXPECT_EQ(us.recommended_ptu(), 50u) << "1 PTU's worth, but regional deployments start at 50";
  EXPECT_EQ(us.spill_share(), 0);
  EXPECT_EQ(us.current_spill_share(), 0) << "400 PTU serve 1,000,000 TPM";
  EXPECT_EQ(us.observed().requests(), 70u);
  EXPECT_EQ(us.observed().prompt_tokens(), 65'000u);
  EXPECT_EQ(us.observed().completion_tokens(), 6'000u);
  EXPECT_EQ(us.observed().throttled(), 20u);
  EXPECT_EQ(us.observed().active_minutes(), 60u);
  EXPECT_EQ(us.observed().spill_minutes(), 10u);
  EXPECT_DOUBLE_EQ(us.observed().ptu_share(), 66'000.0 / 71'000.0);
  // 50 PTU x $2.00 x 730 h; what spills is priced at the route's Standard type (data zone).
  EXPECT_DOUBLE_EQ(us.monthly_cost().ptu_usd(), 73'000);
  EXPECT_THAT(us.explanation(), HasSubstr("gpt-4o regional: p95 of 60 minutes"));
  EXPECT_THAT(us.explanation(), HasSubstr("Standard prices: gpt-4o data_zone"));

  const v1::RouteCapacity& eu = report.routes(0);
  EXPECT_EQ(eu.region(), "swedencentral");
  EXPECT_EQ(eu.deployment_type(), "data_zone") << "no PTUs: the type the route runs on";
  EXPECT_EQ(eu.current_ptu(), 0u);
  EXPECT_EQ(eu.observed().spill_minutes(), 0u) << "a route without PTUs never spills";
  EXPECT_EQ(eu.observed().ptu_share(), 0);
  EXPECT_EQ(eu.p50_tpm(), 0) << "busy 10 minutes of 60";
  EXPECT_EQ(eu.p95_tpm(), 600);
  EXPECT_EQ(eu.recommended_ptu(), 15u) << "data zone deployments start at 15";
  EXPECT_NEAR(eu.monthly_cost().ptu_usd(), 15 * 1.1 * 730, 1e-6);
  // Data zone Standard: 300 x 0.00275/1k + 100 x 0.011/1k a minute, 10 minutes, x 730 h / 1 h.
  EXPECT_NEAR(eu.monthly_cost().all_standard_usd(), (0.000825 + 0.0011) * 10 * 730, 1e-9);
}

TEST_F(CapacityReportTest, AModelWithoutRatesGetsPercentilesButNoRecommendation) {
  for (int minute = 0; minute < kWindowMinutes; ++minute) {
    Add("text-embedding-3-large", "aoai-eus2-std/embed-3", minute, 4000, 0);
  }
  const v1::CapacityReport report = Build();
  ASSERT_EQ(report.routes_size(), 1);
  const v1::RouteCapacity& route = report.routes(0);
  EXPECT_EQ(route.route(), "us/text-embedding-3-large");
  EXPECT_EQ(route.p95_tpm(), 4000);
  EXPECT_EQ(route.recommended_ptu(), 0u);
  EXPECT_FALSE(route.has_monthly_cost());
  EXPECT_THAT(route.explanation(), HasSubstr("no rates for model 'text-embedding-3-large'"));
  const Table table = CapacityTable(report);
  ASSERT_EQ(table.rows.size(), 1u);
  EXPECT_EQ(table.rows[0][9], "") << "no spill is predicted";
  EXPECT_EQ(table.rows[0][10], "") << "no PTU count is printed";
  EXPECT_EQ(table.rows[0][4], "4000");
}

TEST_F(CapacityReportTest, DeploymentsGoneFromTheTopologyAreLeftOutWithANote) {
  AddTwoStamps();
  Add("gpt-4o", "aoai-old/gpt-4o", 3, 1'000'000, 0);
  Add("gpt-4o", "aoai-old/gpt-4o", 4, 1'000'000, 0);
  const v1::CapacityReport report = Build();
  EXPECT_EQ(report.routes(1).peak_tpm(), 1800) << "the unknown deployment's tokens count nowhere";
  EXPECT_THAT(report.notes(),
              ElementsAre(HasSubstr("2 usage rows of deployments no longer in the topology")));
  EXPECT_THAT(CapacityExplanations(report), HasSubstr("note: 2 usage rows"));
}

TEST_F(CapacityReportTest, RouteFilterTakesANameOrStampAndName) {
  AddTwoStamps();
  options_.route = "gpt-4o";
  EXPECT_THAT(RouteIds(Build()), ElementsAre("eu/gpt-4o", "us/gpt-4o"));
  options_.route = "eu/gpt-4o";
  EXPECT_THAT(RouteIds(Build()), ElementsAre("eu/gpt-4o"));
  options_.route = "nope";
  const v1::CapacityReport none = Build();
  EXPECT_THAT(RouteIds(none), IsEmpty());
  EXPECT_THAT(none.notes(), ElementsAre("no usage recorded for route 'nope' in the window"));
}

TEST_F(CapacityReportTest, ARowOutsideTheWindowIsRefused) {
  Add("gpt-4o", "aoai-eus2-ptu/gpt-4o-ptu", kWindowMinutes, 1, 1);
  absl::StatusOr<v1::CapacityReport> report =
      BuildCapacityReport(usage_, topology_, rates_, options_);
  EXPECT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("outside the window"));
}

TEST_F(CapacityReportTest, AsksForMinutesByRouteAndDeployment) {
  const v1::UsageQuery query = CapacityUsageQuery(options_);
  EXPECT_THAT(query.group_by(), ElementsAre("route", "deployment", "minute"));
  EXPECT_EQ(query.since_unix_ms(), absl::ToUnixMillis(kSince));
  EXPECT_EQ(query.until_unix_ms(), absl::ToUnixMillis(kSince + absl::Hours(1)));
}

TEST(CapacityArgs, WindowIsOnWholeMinutesWithDefaults) {
  const absl::Time now = kSince + absl::Seconds(90);  // 00:01:30
  absl::StatusOr<Command> command = ParseVerb("capacity", {}, now);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->verb, Verb::kCapacity);
  EXPECT_EQ(command->capacity.until, kSince + absl::Minutes(1)) << "the unfinished minute waits";
  EXPECT_EQ(command->capacity.since, kSince + absl::Minutes(1) - absl::Hours(24 * 7))
      << "7 days of whole minutes";
  EXPECT_EQ(command->capacity.target_percentile, 95);
  EXPECT_EQ(command->rates_file, "");

  command = ParseVerb("capacity",
                      {"--since", "2026-11-30", "--until", "2026-12-01", "--route", "us/gpt-4o",
                       "--target-percentile", "99.5", "--rates", "r.json", "-o", "json"},
                      now);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->capacity.since, kSince - absl::Hours(24));
  EXPECT_EQ(command->capacity.until, kSince);
  EXPECT_EQ(command->capacity.route, "us/gpt-4o");
  EXPECT_EQ(command->capacity.target_percentile, 99.5);
  EXPECT_EQ(command->rates_file, "r.json");
}

TEST(CapacityArgs, RefusesBadValuesNamingThem) {
  const absl::Time now = kSince;
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--target-percentile", "0"}, "--target-percentile '0' must be a number in (0, 100]"},
           {{"--target-percentile", "abc"}, "--target-percentile 'abc'"},
           {{"--since", "now"}, "at least a whole minute"},
           {{"--since", "100d"}, "at most 92 days"},
           {{"--by", "tenant"}, "unknown flag --by"},
           {{"extra"}, "unexpected argument 'extra'"}}) {
    absl::StatusOr<Command> command = ParseVerb("capacity", args, now);
    ASSERT_FALSE(command.ok()) << args[0];
    EXPECT_THAT(command.status().message(), HasSubstr(message));
    EXPECT_THAT(command.status().message(), HasSubstr("usage: spillwayctl capacity"));
  }
}

TEST(ShippedRates, ParseAndCoverTheDeploymentTypes) {
  absl::StatusOr<std::vector<PtuRates>> rates = ParseRates(BuiltInRatesJson());
  ASSERT_TRUE(rates.ok()) << rates.status();
  for (const char* model : {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"}) {
    for (absl::string_view type : kDeploymentTypes) {
      const PtuRates* row = FindRates(*rates, model, type);
      ASSERT_NE(row, nullptr) << model << " " << type;
      EXPECT_GT(row->input_tpm_per_ptu, 0);
      EXPECT_GT(row->ptu_hour_usd, 0);
      EXPECT_GT(row->output_per_1k_usd, row->input_per_1k_usd);
      if (type == "regional") {
        EXPECT_THAT(row->min_ptu, ::testing::AnyOf(25, 50)) << model;
        EXPECT_EQ(row->increment, row->min_ptu) << model;
      } else {
        EXPECT_EQ(row->min_ptu, 15) << model << " " << type;
        EXPECT_EQ(row->increment, 5) << model << " " << type;
      }
    }
  }
  const PtuRates* gpt4o = FindRates(*rates, "gpt-4o", "data_zone");
  EXPECT_EQ(gpt4o->input_tpm_per_ptu, 2500);
  EXPECT_EQ(gpt4o->output_weight, 3);
  EXPECT_EQ(gpt4o->increment, 5);
  EXPECT_EQ(FindRates(*rates, "gpt-4.1", "global")->output_weight, 4);
}

TEST(RatesFile, DeploymentTypesAreCheckedAndARowWithoutOneMatchesAny) {
  absl::StatusOr<std::vector<PtuRates>> rates = ParseRates(
      R"({"models": [{"model": "m", "input_tpm_per_ptu": 10},
                     {"model": "m", "deployment_type": "global", "input_tpm_per_ptu": 20}]})");
  ASSERT_TRUE(rates.ok()) << rates.status();
  EXPECT_EQ(FindRates(*rates, "m", "global")->input_tpm_per_ptu, 20);
  EXPECT_EQ(FindRates(*rates, "m", "regional")->input_tpm_per_ptu, 10);
  EXPECT_EQ(FindRates(*rates, "other", "regional"), nullptr);

  EXPECT_THAT(ParseRates(R"({"models": [{"model": "m", "deployment_type": "zonal",
                                          "input_tpm_per_ptu": 1}]})")
                  .status()
                  .message(),
              HasSubstr("model 'm': \"deployment_type\" must be regional, data_zone or global"));
  EXPECT_THAT(ParseRates(R"({"models": [{"model": "m", "deployment_type": "global",
                                          "input_tpm_per_ptu": 1},
                                         {"model": "m", "deployment_type": "global",
                                          "input_tpm_per_ptu": 2}]})")
                  .status()
                  .message(),
              HasSubstr("model 'm' is given twice for global"));
  // Found by tests/fuzz/ptu_rates_fuzz.cc: 2e25 PTUs overflowed the conversion to an integer.
  EXPECT_THAT(ParseRates(R"({"models": [{"model": "m", "input_tpm_per_ptu": 1,
                                          "min_ptu": 2e25}]})")
                  .status()
                  .message(),
              HasSubstr("model 'm': \"min_ptu\" must be a number from 0 to 100000"));
  EXPECT_THAT(
      ParseRates(R"({"models": [{"model": "m", "input_tpm_per_ptu": 1e300}]})").status().message(),
      HasSubstr("\"input_tpm_per_ptu\" must be a number from 0 to 1000000000"));
  std::string many = R"({"models": [)";
  for (int i = 0; i <= 1000; ++i) {
    absl::StrAppend(&many, i == 0 ? "" : ",", R"({"model": "m)", i,
                    R"(", "input_tpm_per_ptu": 1})");
  }
  absl::StrAppend(&many, "]}");
  EXPECT_THAT(ParseRates(many).status().message(), HasSubstr("more than 1000 models"));
}

}  // namespace
}  // namespace spillway::cli
