// Rate limits as Azure applies them, against the real binary: TPM and RPM buckets over the
// evaluation window, PTU utilization, 429 retry headers and the post-hoc refund.
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mock_aoai/mock_test_util.h"

namespace spillway::mock {
namespace {

using ::testing::HasSubstr;

int64_t IntHeader(const test::HttpResponse& response, absl::string_view name) {
  int64_t value = -1;
  EXPECT_TRUE(absl::SimpleAtoi(response.Header(name).value_or("x"), &value))
      << name << " missing or not a number";
  return value;
}

std::string ErrorMessage(const test::HttpResponse& response) {
  return Str(Json(response.body).at("error").at("message"));
}

TEST(MockLimitsTest, TokenLimitAnswers429UntilRetryAfterMsHasPassed) {
  // 600 TPM over a 1 s window: 10 tokens of capacity, refilled at 10 per second.
  SPILLWAY_START_MOCK(mock, {"--deployments", "small:tpm=600:rpm=6000", "--window-seconds", "1"});
  test::HttpClient client = Client(*mock);
  const std::string body = ChatBody("hi", R"("max_tokens":9)");  // charge 1 + 9
  test::HttpResponse first = MustSend(client, "POST", ChatPath("small"), body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(IntHeader(first, "x-ratelimit-remaining-tokens"), 0);

  test::HttpResponse limited = MustSend(client, "POST", ChatPath("small"), body);
  ASSERT_EQ(limited.status, 429) << limited.body;
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 1000);
  EXPECT_EQ(IntHeader(limited, "retry-after"), 1);
  const boost::json::value error = Json(limited.body);
  EXPECT_EQ(Str(error.at("error").at("code")), "429");
  EXPECT_THAT(ErrorMessage(limited),
              HasSubstr("Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                        "version 2024-10-21 have exceeded token rate limit of your current "
                        "OpenAI S0 pricing tier. Please retry after 1 seconds."));
  // A 429 carries the same headers as any answer.
  EXPECT_TRUE(limited.HasHeader("x-request-id"));
  EXPECT_TRUE(limited.HasHeader("apim-request-id"));
  EXPECT_TRUE(limited.HasHeader("x-ms-region"));
  EXPECT_EQ(IntHeader(limited, "x-ratelimit-limit-tokens"), 600);
  EXPECT_GE(IntHeader(limited, "x-ratelimit-remaining-requests"), 0);

  absl::SleepFor(absl::Milliseconds(retry_ms));
  test::HttpResponse after = MustSend(client, "POST", ChatPath("small"), body);
  EXPECT_EQ(after.status, 200) << after.body;
}

TEST(MockLimitsTest, RequestLimitSaysCallRateLimit) {
  // 60 RPM over 1 s: one request per window.
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000000:rpm=60", "--window-seconds", "1"});
  test::HttpClient client = Client(*mock);
  ASSERT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
  test::HttpResponse limited = MustSend(client, "POST", ChatPath("d"), ChatBody("hi"));
  ASSERT_EQ(limited.status, 429);
  EXPECT_THAT(ErrorMessage(limited), HasSubstr("have exceeded call rate limit"));
  EXPECT_EQ(IntHeader(limited, "x-ratelimit-remaining-requests"), 0);
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 1000);
  absl::SleepFor(absl::Milliseconds(retry_ms));
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
}

TEST(MockLimitsTest, DefaultRpmIsSixPerThousandTpm) {
  // 1000 TPM -> 6 RPM: one request per 10 s window.
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000"});
  test::HttpClient client = Client(*mock);
  test::HttpResponse first = MustSend(client, "POST", ChatPath("d"), ChatBody("hi"));
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(IntHeader(first, "x-ratelimit-limit-requests"), 6);
  test::HttpResponse second = MustSend(client, "POST", ChatPath("d"), ChatBody("hi"));
  EXPECT_EQ(second.status, 429);
  EXPECT_THAT(ErrorMessage(second), HasSubstr("call rate limit"));
}

TEST(MockLimitsTest, ChargeCountsMaxTokensTimesChoices) {
  // 6000 TPM over 10 s: 1000 tokens. 1 + 300 x 3 = 901 fits once; a second does not (the
  // answers are 300 tokens long, so nothing is refunded).
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=6000:rpm=6000", "--completion-tokens", "300"});
  test::HttpClient client = Client(*mock);
  const std::string body = ChatBody("hi", R"("max_tokens":300,"n":3)");
  test::HttpResponse first = MustSend(client, "POST", ChatPath("d"), body);
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(IntHeader(first, "x-ratelimit-remaining-tokens"), 1000 - 901);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("d"), body).status, 429);
}

TEST(MockLimitsTest, UnusedMaxTokensAreRefundedAfterTheAnswer) {
  // 60 TPM over 100 s: 100 tokens, refilled at only 1 per second.
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=60:rpm=60000", "--window-seconds", "100"});
  test::HttpClient client = Client(*mock);
  test::HttpResponse first =
      MustSend(client, "POST", ChatPath("d"), ChatBody("hi", R"("max_tokens":80)"));
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(IntHeader(first, "x-ratelimit-remaining-tokens"), 100 - 81);
  // Only 16 of the 80 were generated: 64 come back, so 17 more fit with room to spare.
  test::HttpResponse second =
      MustSend(client, "POST", ChatPath("d"), ChatBody("hi", R"("max_tokens":16)"));
  ASSERT_EQ(second.status, 200) << second.body;
  const int64_t remaining = IntHeader(second, "x-ratelimit-remaining-tokens");
  EXPECT_GE(remaining, 19 + 64 - 17);
  EXPECT_LE(remaining, 100 - 17);
}

TEST(MockLimitsTest, ProvisionedReportsUtilizationAndLimitsAt100Percent) {
  // 1 PTU x 6000 tokens/min over 1 s: 100 tokens is 100%.
  SPILLWAY_START_MOCK(mock, {"--deployments", "ptu:ptu=1", "--tokens-per-ptu-minute", "6000",
                             "--window-seconds", "1"});
  test::HttpClient client = Client(*mock);
  const std::string small = ChatBody("hi", R"("max_tokens":16)");  // 17 tokens, no refund
  test::HttpResponse a = MustSend(client, "POST", ChatPath("ptu"), small);
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("azure-openai-deployment-utilization"), "17.0%");
  test::HttpResponse b = MustSend(client, "POST", ChatPath("ptu"), small);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(b.Header("azure-openai-deployment-utilization"), "34.0%");
  EXPECT_EQ(IntHeader(b, "x-ratelimit-limit-tokens"), 6000);

  const std::string big = ChatBody("hi", R"("max_tokens":70)");  // 71: would make 105%
  test::HttpResponse limited = MustSend(client, "POST", ChatPath("ptu"), big);
  ASSERT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(limited.Header("azure-openai-deployment-utilization"), "34.0%");
  EXPECT_THAT(ErrorMessage(limited), HasSubstr("provisioned throughput"));
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 1000);
  EXPECT_GE(IntHeader(limited, "retry-after"), 1);

  absl::SleepFor(absl::Milliseconds(retry_ms));
  EXPECT_EQ(MustSend(client, "POST", ChatPath("ptu"), big).status, 200);
}

TEST(MockLimitsTest, ProvisionedRefundLowersUtilization) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "ptu:ptu=1", "--tokens-per-ptu-minute", "600"});
  test::HttpClient client = Client(*mock);
  test::HttpResponse a =
      MustSend(client, "POST", ChatPath("ptu"), ChatBody("hi", R"("max_tokens":80)"));
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("azure-openai-deployment-utilization"), "81.0%");
  // 64 unused tokens were refunded: 17 + 17, not 81 + 17.
  test::HttpResponse b =
      MustSend(client, "POST", ChatPath("ptu"), ChatBody("hi", R"("max_tokens":16)"));
  ASSERT_EQ(b.status, 200) << b.body;
  EXPECT_EQ(b.Header("azure-openai-deployment-utilization"), "34.0%");
}

TEST(MockLimitsTest, StandardDeploymentsSendNoUtilization) {
  SPILLWAY_START_MOCK(mock, {});
  test::HttpClient client = Client(*mock);
  EXPECT_FALSE(MustSend(client, "POST", ChatPath("gpt-4o"), ChatBody("hi"))
                   .HasHeader("azure-openai-deployment-utilization"));
}

TEST(MockLimitsTest, DeploymentsHaveSeparateBuckets) {
  SPILLWAY_START_MOCK(mock, {"--deployments", "a:tpm=1000,b:tpm=1000"});
  test::HttpClient client = Client(*mock);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("a"), ChatBody("hi")).status, 200);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("a"), ChatBody("hi")).status, 429);
  EXPECT_EQ(MustSend(client, "POST", ChatPath("b"), ChatBody("hi")).status, 200);
}

}  // namespace
}  // namespace spillway::mock
