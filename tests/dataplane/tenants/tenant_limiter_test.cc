// Tenant quotas with an injected clock: charging, refilling, refunds, retry-after, shares
// from the control plane, and the demand the agent reports.
#include "dataplane/tenants/tenant_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "dataplane/tenants/quota_claim.h"
#include "tests/support/temp_dir.h"

namespace spillway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

const SteadyTime kStart = SteadyTime{} + std::chrono::hours(1);

v1::TenantLimits Limits(uint64_t tpm, uint64_t rpm = 0) {
  v1::TenantLimits limits;
  limits.set_tokens_per_minute(tpm);
  limits.set_requests_per_minute(rpm);
  return limits;
}

v1::TenantBudget Share(const std::string& tenant, uint64_t tpm, uint64_t limit_tpm,
                       uint64_t rpm = 0, uint64_t limit_rpm = 0) {
  v1::TenantBudget budget;
  budget.set_tenant(tenant);
  budget.set_tokens_per_minute(tpm);
  budget.set_limit_tokens_per_minute(limit_tpm);
  budget.set_requests_per_minute(rpm);
  budget.set_limit_requests_per_minute(limit_rpm);
  return budget;
}

TenantLimiterOptions ControlPlaneMode() {
  TenantLimiterOptions options;
  options.control_plane = true;
  return options;
}

TEST(TokenBucket, RefillsContinuouslyUpToOneMinutesBudget) {
  TokenBucket bucket;
  bucket.SetBudget(600, kStart, /*fill=*/false);
  EXPECT_EQ(bucket.tokens(), 0);
  bucket.Refill(kStart + milliseconds(1500));
  EXPECT_DOUBLE_EQ(bucket.tokens(), 15);  // 10 tokens a second
  bucket.Refill(kStart + std::chrono::minutes(5));
  EXPECT_DOUBLE_EQ(bucket.tokens(), 600) << "capped at one minute's budget";
}

TEST(TokenBucket, AShrinkingBudgetCapsTokensAndAGrowingOneGivesNothing) {
  TokenBucket bucket;
  bucket.SetBudget(600, kStart, /*fill=*/true);
  bucket.Take(300);
  bucket.SetBudget(400, kStart, true);
  EXPECT_DOUBLE_EQ(bucket.tokens(), 300) << "earned tokens are kept";
  bucket.SetBudget(100, kStart, true);
  EXPECT_DOUBLE_EQ(bucket.tokens(), 100) << "never more than a minute of the new budget";
  bucket.SetBudget(1200, kStart, true);
  EXPECT_DOUBLE_EQ(bucket.tokens(), 100) << "no tokens for free";
  bucket.Take(500);
  bucket.SetBudget(60, kStart, true);
  EXPECT_DOUBLE_EQ(bucket.tokens(), -400) << "debt stays debt";
}

TEST(TokenBucket, ACostAboveTheBudgetFitsOnlyWhenFull) {
  TokenBucket bucket;
  bucket.SetBudget(600, kStart, true);
  EXPECT_EQ(bucket.SecondsUntilFits(1000), 0);
  bucket.Take(1000);
  EXPECT_DOUBLE_EQ(bucket.SecondsUntilFits(1000), 100) << "-400 back to a full 600";
  bucket.SetBudget(0, kStart, true);
  EXPECT_TRUE(std::isinf(bucket.SecondsUntilFits(1)));
}

TEST(TenantQuota, StandaloneStartsFullAndRefusesWithTheTimeUntilTheChargeFits) {
  TenantQuota quota{TenantLimiterOptions()};
  for (int i = 0; i < 6; ++i) {
    QuotaDecision d = quota.TryCharge(Limits(600), 100, kStart);
    ASSERT_TRUE(d.admitted) << i;
    EXPECT_TRUE(d.headers.active);
    EXPECT_EQ(d.headers.remaining_tokens, 500 - 100 * i);
    EXPECT_EQ(d.headers.limit_tokens, 600u);
    EXPECT_EQ(d.headers.remaining_requests, -1) << "no RPM limit";
  }
  QuotaDecision refused = quota.TryCharge(Limits(600), 100, kStart);
  EXPECT_FALSE(refused.admitted);
  EXPECT_TRUE(refused.tokens_exhausted);
  EXPECT_FALSE(refused.requests_exhausted);
  EXPECT_EQ(refused.retry_after, seconds(10)) << "100 tokens at 10 a second";
  EXPECT_EQ(refused.headers.remaining_tokens, 0);

  // 2.5 s later 25 tokens are back: 75 more take 7.5 s.
  refused = quota.TryCharge(Limits(600), 100, kStart + milliseconds(2500));
  EXPECT_EQ(refused.retry_after, milliseconds(7500));
  EXPECT_EQ(refused.headers.remaining_tokens, 25);
  // Waiting exactly the advertised time is enough.
  EXPECT_TRUE(quota.TryCharge(Limits(600), 100, kStart + milliseconds(10000)).admitted);
}

TEST(TenantQuota, RetryAfterRoundsUpToTheMillisecond) {
  TenantQuota quota{TenantLimiterOptions()};
  ASSERT_TRUE(quota.TryCharge(Limits(7), 7, kStart).admitted);
  // 1 token at 7/60 per second: 8571.43 ms.
  EXPECT_EQ(quota.TryCharge(Limits(7), 1, kStart).retry_after, milliseconds(8572));
}

TEST(TenantQuota, RequestsPerMinute) {
  TenantQuota quota{TenantLimiterOptions()};
  for (int i = 0; i < 3; ++i) {
    QuotaDecision d = quota.TryCharge(Limits(0, 3), 1000, kStart);
    ASSERT_TRUE(d.admitted);
    EXPECT_EQ(d.headers.remaining_requests, 2 - i);
    EXPECT_EQ(d.headers.remaining_tokens, -1) << "no TPM limit";
  }
  QuotaDecision refused = quota.TryCharge(Limits(0, 3), 1, kStart);
  EXPECT_FALSE(refused.admitted);
  EXPECT_TRUE(refused.requests_exhausted);
  EXPECT_EQ(refused.retry_after, seconds(20));
}

TEST(TenantQuota, BothLimitsMustFitAndTheLongerWaitWins) {
  TenantQuota quota{TenantLimiterOptions()};
  ASSERT_TRUE(quota.TryCharge(Limits(600, 2), 600, kStart).admitted);
  ASSERT_FALSE(quota.TryCharge(Limits(600, 2), 60, kStart).admitted);
  QuotaDecision d = quota.TryCharge(Limits(600, 2), 60, kStart);
  EXPECT_TRUE(d.tokens_exhausted);
  EXPECT_FALSE(d.requests_exhausted);
  EXPECT_EQ(d.retry_after, seconds(6));
  // A refused request charged nothing: one request slot is still there.
  EXPECT_EQ(d.headers.remaining_requests, 1);
}

TEST(TenantQuota, SettleRefundsOrChargesTheDifference) {
  TenantQuota quota{TenantLimiterOptions()};
  ASSERT_TRUE(quota.TryCharge(Limits(600, 60), 300, kStart).admitted);
  quota.Settle(-260, false, kStart);  // used 40 of the 300 estimated
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 560);
  quota.Settle(+700, false, kStart);  // far more than estimated: the tenant owes
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 0);
  EXPECT_EQ(quota.TryCharge(Limits(600, 60), 60, kStart).retry_after, seconds(20))
      << "140 owed + 60 wanted at 10 a second";
  quota.Settle(0, /*refund_request=*/true, kStart);
  EXPECT_EQ(quota.Peek(kStart).remaining_requests, 60) << "capped at the budget";
}

TEST(QuotaClaim, SettlesByOutcome) {
  TenantQuota quota{TenantLimiterOptions()};
  const v1::TenantLimits limits = Limits(1000, 10);
  Usage usage;
  usage.reported = true;
  usage.total_tokens = 30;
  {
    QuotaClaim claim(&quota, limits, 100, kStart);
    ASSERT_FALSE(claim.refused());
    claim.Settle(200, true, usage, kStart);
    claim.Settle(200, true, usage, kStart);  // only once
  }
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 970);
  EXPECT_EQ(quota.Peek(kStart).remaining_requests, 9);
  {
    QuotaClaim claim(&quota, limits, 100, kStart);
    claim.Settle(502, /*answered=*/false, Usage(), kStart);
  }
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 970) << "nothing served: all back";
  EXPECT_EQ(quota.Peek(kStart).remaining_requests, 9);
  {
    QuotaClaim claim(&quota, limits, 100, kStart);
    claim.Settle(400, /*answered=*/true, Usage(), kStart);
  }
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 970) << "the backend refused: no tokens";
  EXPECT_EQ(quota.Peek(kStart).remaining_requests, 8) << "but the request counts";
  {
    QuotaClaim claim(&quota, limits, 100, kStart);
    claim.Settle(200, true, Usage(), kStart);  // the client left before usage came
  }
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 870) << "the estimate stays";
  QuotaClaim none;
  EXPECT_FALSE(none.refused());
  EXPECT_FALSE(none.headers().active);
  none.Settle(200, true, usage, kStart);
}

TEST(QuotaClaim, RefusalIsWordedLikeAzure) {
  TenantQuota quota{TenantLimiterOptions()};
  ASSERT_FALSE(QuotaClaim(&quota, Limits(600), 600, kStart).refused());
  QuotaClaim claim(&quota, Limits(600), 150, kStart);
  ASSERT_TRUE(claim.refused());
  ErrorReply reply = claim.Refusal(
      "app", Limits(600), "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
  EXPECT_EQ(reply.status, 429u);
  EXPECT_EQ(reply.code, "429");
  EXPECT_EQ(reply.retry_after, seconds(15));
  EXPECT_TRUE(reply.should_retry);
  EXPECT_TRUE(reply.rate_limit.active);
  EXPECT_THAT(reply.message,
              HasSubstr("Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                        "version 2024-10-21 have exceeded the token rate limit of tenant 'app' "
                        "(600 tokens per minute). Please retry after 15 seconds."));
}

TEST(QuotaCost, PromptPlusMostOutputPerChoice) {
  RequestFacts facts;
  facts.prompt_tokens_estimate = 9;
  const char* chat = "/openai/deployments/r/chat/completions?api-version=x";
  EXPECT_EQ(QuotaCost(facts, chat, 1024), 9 + 1024) << "no max_tokens: the agent's default";
  facts.max_output_tokens = 100;
  facts.choices = 3;
  EXPECT_EQ(QuotaCost(facts, chat, 1024), 309);
  EXPECT_EQ(QuotaCost(facts, "/openai/v1/embeddings", 1024), 9) << "embeddings: input only";
  for (const char* realtime :
       {"/openai/realtime?deployment=r", "/openai/v1/realtime?model=r",
        "/openai/v1/realtime/client_secrets", "/openai/v1/realtime/calls?model=r"}) {
    EXPECT_EQ(QuotaCost(facts, realtime, 1024), 0) << realtime << ": a request, no tokens";
  }
  EXPECT_EQ(QuotaCost(facts, "/openai/deployments/realtime-x/chat/completions", 1024), 309)
      << "a route named realtime... is charged as any other";
  ASSERT_TRUE(ReadRequestFacts(R"({"max_completion_tokens":50,"n":2})").ok());
  EXPECT_EQ(ReadRequestFacts(R"({"max_completion_tokens":50,"n":2})")->EstimatedTokens(1024), 100);
}

TEST(TenantLimiter, TenantsAreIndependentAndSurviveLookups) {
  TenantLimiter limiter{TenantLimiterOptions()};
  TenantQuotaCache cache(&limiter);
  ASSERT_TRUE(cache.Find("a")->TryCharge(Limits(100), 100, kStart).admitted);
  EXPECT_FALSE(cache.Find("a")->TryCharge(Limits(100), 1, kStart).admitted);
  EXPECT_TRUE(cache.Find("b")->TryCharge(Limits(100), 100, kStart).admitted);
  EXPECT_EQ(cache.Find("a"), limiter.Get("a").get()) << "one quota per name";
  TenantQuotaCache other_thread(&limiter);
  EXPECT_EQ(other_thread.Find("a"), cache.Find("a"));
  EXPECT_EQ(TenantQuotaCache(nullptr).Find("a"), nullptr);
}

TEST(TenantLimiter, ANewLimitIsPickedUp) {
  TenantQuota quota{TenantLimiterOptions()};
  ASSERT_TRUE(quota.TryCharge(Limits(600), 500, kStart).admitted);
  EXPECT_EQ(quota.TryCharge(Limits(300), 1, kStart).headers.remaining_tokens, 99)
      << "a lower limit keeps what is left (100) when it fits";
  EXPECT_EQ(quota.TryCharge(Limits(60), 1, kStart).headers.remaining_tokens, 59)
      << "and caps it when it does not";
  EXPECT_FALSE(quota.TryCharge(Limits(0), 1'000'000, kStart).headers.active) << "no limit";
}

TEST(TenantLimiter, SharesFromTheControlPlane) {
  TenantLimiter limiter{ControlPlaneMode()};
  v1::TenantBudgets budgets;
  budgets.set_epoch(7);
  *budgets.add_budgets() = Share("app", 200, 600);
  limiter.ApplyBudgets(budgets, kStart);
  EXPECT_EQ(limiter.budget_epoch(), 7u);
  TenantQuota& quota = *limiter.Get("app");
  QuotaDecision d = quota.TryCharge(Limits(600), 100, kStart);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.headers.remaining_tokens, 100) << "a share starts full";
  EXPECT_EQ(d.headers.limit_tokens, 600u) << "the header shows the tenant's own limit";
  EXPECT_FALSE(quota.TryCharge(Limits(600), 101, kStart).admitted);
  EXPECT_EQ(quota.TryCharge(Limits(600), 101, kStart).retry_after, milliseconds(300))
      << "1 token at 200/60 a second";

  // The share shrinks to 50: the 100 held are capped at 50.
  *budgets.mutable_budgets(0) = Share("app", 50, 600);
  limiter.ApplyBudgets(budgets, kStart);
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 50);
  // It grows to 400: no free tokens, but a faster refill.
  *budgets.mutable_budgets(0) = Share("app", 400, 600);
  limiter.ApplyBudgets(budgets, kStart);
  EXPECT_EQ(quota.Peek(kStart).remaining_tokens, 50);
  EXPECT_EQ(quota.Peek(kStart + seconds(3)).remaining_tokens, 70);

  // The table cuts the limit to a tenth before the next split arrives: the share follows.
  EXPECT_EQ(quota.TryCharge(Limits(60), 1, kStart + seconds(3)).headers.remaining_tokens, 39)
      << "400 of 600 -> 40 of 60: 70 capped at 40, minus 1";
}

TEST(TenantLimiter, WithoutAShareAControlPlaneAgentStartsEmptyAtTheWholeLimit) {
  TenantLimiter limiter{ControlPlaneMode()};
  TenantQuota& quota = *limiter.Get("app");
  QuotaDecision d = quota.TryCharge(Limits(600), 10, kStart);
  EXPECT_FALSE(d.admitted) << "no full minute's budget on every agent at once";
  EXPECT_EQ(d.retry_after, seconds(1));
  EXPECT_TRUE(quota.TryCharge(Limits(600), 10, kStart + seconds(1)).admitted);

  // A split that no longer names the tenant takes its share away again.
  v1::TenantBudgets budgets;
  *budgets.add_budgets() = Share("app", 300, 600);
  limiter.ApplyBudgets(budgets, kStart + seconds(1));
  EXPECT_EQ(quota.Describe(kStart + seconds(1)).at("tokens_per_minute").as_double(), 300);
  limiter.ApplyBudgets(v1::TenantBudgets(), kStart + seconds(1));
  EXPECT_EQ(quota.Describe(kStart + seconds(1)).at("tokens_per_minute").as_double(), 600);
}

TEST(TenantLimiter, TheLastSplitSurvivesARestart) {
  // A directory of its own, removed however the test ends: under a fixed name in the shared
  // temp directory, runs side by side would read and delete each other's split.
  absl::StatusOr<test::ScopedTempDir> dir = test::ScopedTempDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  TenantLimiterOptions options = ControlPlaneMode();
  options.budgets_path = dir->path() + "/tenant-budgets.pb";
  {
    TenantLimiter first(options);
    ASSERT_TRUE(first.LoadPersistedBudgets(kStart).ok()) << "no file yet is fine";
    v1::TenantBudgets budgets;
    budgets.set_epoch(3);
    *budgets.add_budgets() = Share("app", 200, 600);
    first.ApplyBudgets(budgets, kStart);
  }
  TenantLimiter restarted(options);
  ASSERT_TRUE(restarted.LoadPersistedBudgets(kStart).ok());
  EXPECT_EQ(restarted.budget_epoch(), 3u);
  QuotaDecision d = restarted.Get("app")->TryCharge(Limits(600), 100, kStart);
  EXPECT_TRUE(d.admitted) << "its last share, full, rather than an empty provisional bucket";
  EXPECT_EQ(d.headers.remaining_tokens, 100);
}

TEST(TenantLimiter, AZeroShareRefusesUntilTheNextSplit) {
  TenantLimiterOptions options = ControlPlaneMode();
  options.zero_share_retry_after = milliseconds(2000);
  TenantLimiter limiter(options);
  v1::TenantBudgets budgets;
  *budgets.add_budgets() = Share("app", 1000, 1000, 0, 5);
  limiter.ApplyBudgets(budgets, kStart);
  QuotaDecision d = limiter.Get("app")->TryCharge(Limits(1000, 5), 10, kStart);
  EXPECT_FALSE(d.admitted);
  EXPECT_TRUE(d.requests_exhausted);
  EXPECT_EQ(d.retry_after, milliseconds(2000));
}

TEST(TenantLimiter, ReportsDemandWithRefusalsWeightedByTheirWait) {
  TenantLimiterOptions options;
  options.demand_window = milliseconds(2000);
  TenantLimiter limiter(options);
  EXPECT_FALSE(limiter.TakeDemandReport(kStart).has_value()) << "no quotas: nothing to say";
  TenantQuota& quota = *limiter.Get("app");
  ASSERT_TRUE(quota.TryCharge(Limits(600, 600), 590, kStart).admitted);
  // Refused with a 1 s wait (10 tokens short): half a window, so half its cost.
  ASSERT_EQ(quota.TryCharge(Limits(600, 600), 20, kStart).retry_after, seconds(1));
  // Refused with a 19 s wait: a client that waits 9.5 windows, counted in this one.
  ASSERT_EQ(quota.TryCharge(Limits(600, 600), 200, kStart).retry_after, seconds(19));
  std::optional<v1::DemandReport> report = limiter.TakeDemandReport(kStart + seconds(2));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->window_ms(), 2000);
  ASSERT_EQ(report->tenants_size(), 1);
  EXPECT_EQ(report->tenants(0).tenant(), "app");
  EXPECT_EQ(report->tenants(0).tokens(), 590u + 10 + 1900);
  EXPECT_EQ(report->tenants(0).requests(), 11u) << "1 + 0.5 + 9.5";
  report = limiter.TakeDemandReport(kStart + seconds(3));
  EXPECT_EQ(report->window_ms(), 1000);
  EXPECT_EQ(report->tenants_size(), 0);
  // 56 s to wait (-> a full 600 for a cost above it): 28 windows of 2 s.
  ASSERT_EQ(quota.TryCharge(Limits(600, 600), 1000, kStart + seconds(3)).retry_after, seconds(56));
  report = limiter.TakeDemandReport(kStart + seconds(4));
  ASSERT_EQ(report->tenants_size(), 1);
  EXPECT_EQ(report->tenants(0).tokens(), 28'000u);
  EXPECT_EQ(report->tenants(0).requests(), 28u);
  // Fractions carry over to the next window rather than being rounded away.
  ASSERT_EQ(quota.TryCharge(Limits(600, 600), 55, kStart + seconds(4)).retry_after,
            milliseconds(500));  // 50 held, 5 tokens short: a quarter of a window
  report = limiter.TakeDemandReport(kStart + seconds(6));
  ASSERT_EQ(report->tenants_size(), 1);
  EXPECT_EQ(report->tenants(0).tokens(), 13u) << "55 x 0.25 = 13.75";
  EXPECT_EQ(report->tenants(0).requests(), 0u) << "0.25 is not a whole request yet";
}

TEST(RateLimitHeaders, ReplaceTheBackendsOwn) {
  boost::beast::http::fields fields;
  fields.set("x-ratelimit-remaining-tokens", "999999");
  fields.set("x-ratelimit-remaining-requests", "999");
  RateLimitHeaders headers;
  headers.ApplyTo(fields);
  EXPECT_EQ(fields["x-ratelimit-remaining-tokens"], "999999") << "inactive: untouched";
  headers.active = true;
  headers.remaining_tokens = 42;
  headers.limit_tokens = 600;
  headers.ApplyTo(fields);
  EXPECT_EQ(fields["x-ratelimit-remaining-tokens"], "42");
  EXPECT_EQ(fields["x-ratelimit-limit-tokens"], "600");
  EXPECT_EQ(fields.count("x-ratelimit-remaining-requests"), 0u)
      << "one backend's figure says nothing about the tenant";
}

}  // namespace
}  // namespace spillway
