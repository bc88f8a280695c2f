// PTU sizing (issue 21) against hand-worked answers: percentiles over the whole window (idle
// minutes included), the calculator's output weighting, minimum and increment, the spill
// share and the monthly costs; and the rates file's errors.
#include "controlplane/cli/capacity_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace spillway {
namespace {

using ::testing::HasSubstr;

PtuRates Gpt4o() {
  PtuRates rates;
  rates.model = "gpt-4o";
  rates.input_tpm_per_ptu = 2500;
  rates.output_weight = 4;
  rates.min_ptu = 15;
  rates.increment = 5;
  rates.ptu_hour_usd = 1;
  rates.input_per_1k_usd = 0.005;
  rates.output_per_1k_usd = 0.015;
  return rates;
}

TEST(PlanCapacity, SizesForThePercentileAndSpillsTheRest) {
  // 100 minutes: 90 idle, 9 at 40,000 + 4 x 10,000 = 80,000 weighted TPM, one at 160,000.
  std::vector<MinuteTokens> minutes(9, MinuteTokens{40'000, 10'000});
  minutes.push_back({80'000, 20'000});
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(minutes, 100, Gpt4o(), 95);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->tpm.peak, 160'000);
  EXPECT_EQ(plan->tpm.p50, 0) << "idle minutes count";
  EXPECT_EQ(plan->tpm.p95, 80'000);  // rank 95 of 100: the busy minutes are ranks 91-100
  EXPECT_EQ(plan->tpm.p99, 80'000);
  // 80,000 / 2,500 = 32 PTU -> 15 + 5 x ceil(17 / 5) = 35 PTU, 87,500 TPM.
  EXPECT_EQ(plan->recommended_ptu, 35);
  // Only the peak minute spills: 160,000 - 87,500 = 72,500 of 880,000 weighted tokens.
  EXPECT_DOUBLE_EQ(plan->spill_share, 72'500.0 / 880'000.0);
  // A month is 438 windows of 100 minutes. PTU: 35 x $1 x 730 h.
  EXPECT_DOUBLE_EQ(plan->monthly_ptu_usd, 35 * 730.0);
  // Spilled: 72,500 / 160,000 of the peak minute's 80,000 prompt and 20,000 completion.
  const double fraction = 72'500.0 / 160'000.0;
  EXPECT_NEAR(plan->monthly_spill_usd,
              (fraction * 80'000 / 1000 * 0.005 + fraction * 20'000 / 1000 * 0.015) * 438, 1e-6);
  EXPECT_DOUBLE_EQ(plan->monthly_total_usd, plan->monthly_ptu_usd + plan->monthly_spill_usd);
  // All Standard: 440,000 prompt and 110,000 completion tokens a window.
  EXPECT_NEAR(plan->monthly_all_standard_usd, (440.0 * 0.005 + 110.0 * 0.015) * 438, 1e-6);
  EXPECT_THAT(plan->explanation, HasSubstr("p95 of 100 minutes = 80000 weighted TPM"));
  EXPECT_THAT(plan->explanation, HasSubstr("35 PTU (minimum 15, steps of 5)"));
}

TEST(PlanCapacity, NoTrafficNeedsNoPtuAndSmallTrafficTheMinimum) {
  absl::StatusOr<CapacityPlan> idle = PlanCapacity({}, 60, Gpt4o(), 95);
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ(idle->recommended_ptu, 0);
  EXPECT_EQ(idle->spill_share, 0);
  std::vector<MinuteTokens> small(60, MinuteTokens{1'000, 0});
  absl::StatusOr<CapacityPlan> plan = PlanCapacity(small, 60, Gpt4o(), 95);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->recommended_ptu, 15);
  EXPECT_EQ(plan->spill_share, 0);
}

TEST(PlanCapacity, RefusesImpossibleWindowsAndPercentiles) {
  std::vector<MinuteTokens> minutes(3, MinuteTokens{1, 1});
  EXPECT_EQ(PlanCapacity(minutes, 2, Gpt4o(), 95).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanCapacity(minutes, 10, Gpt4o(), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PlanCapacity(minutes, 10, Gpt4o(), 101).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseRates, ReadsRowsWithDefaultsAndNamesWhatIsWrong) {
  absl::StatusOr<std::vector<PtuRates>> rates = ParseRates(R"({"models": [
      {"model": "gpt-4o", "input_tpm_per_ptu": 2500, "output_weight": 4, "min_ptu": 15,
       "increment": 5, "ptu_hour_usd": 1, "input_per_1k_usd": 0.005, "output_per_1k_usd": 0.015},
      {"model": "gpt-4o-mini", "input_tpm_per_ptu": 37000}]})");
  ASSERT_TRUE(rates.ok()) << rates.status();
  ASSERT_EQ(rates->size(), 2u);
  EXPECT_EQ((*rates)[0].min_ptu, 15);
  EXPECT_EQ((*rates)[0].increment, 5);
  EXPECT_EQ((*rates)[1].output_weight, 1);
  EXPECT_EQ((*rates)[1].increment, 1);

  EXPECT_THAT(ParseRates("{").status().message(), HasSubstr("not JSON"));
  EXPECT_THAT(ParseRates(R"({"models": [{"input_tpm_per_ptu": 1}]})").status().message(),
              HasSubstr("model 1 has no \"model\" name"));
  EXPECT_THAT(ParseRates(R"({"models": [{"model": "m"}]})").status().message(),
              HasSubstr("'m' has no \"input_tpm_per_ptu\""));
  EXPECT_THAT(
      ParseRates(R"({"models": [{"model": "m", "input_tpm_per_ptu": "fast"}]})").status().message(),
      HasSubstr("\"input_tpm_per_ptu\" must be a number"));
  EXPECT_THAT(
      ParseRates(R"({"models": [{"model": "m", "input_tpm_per_ptu": 0}]})").status().message(),
      HasSubstr("must be above 0"));
}

TEST(SpillShareAt, IsTheWeightedTokensAboveCapacityInTheirMinute) {
  // Weighted 80,000 and 160,000 (output x 4); at 100,000 only the second spills, 60,000.
  const std::vector<MinuteTokens> minutes = {{40'000, 10'000}, {80'000, 20'000}};
  EXPECT_DOUBLE_EQ(SpillShareAt(minutes, 4, 100'000), 60'000.0 / 240'000.0);
  EXPECT_EQ(SpillShareAt(minutes, 4, 160'000), 0);
  EXPECT_EQ(SpillShareAt(minutes, 4, 0), 1);
  EXPECT_EQ(SpillShareAt({}, 4, 0), 0) << "no traffic spills nothing";
}

}  // namespace
}  // namespace spillway
