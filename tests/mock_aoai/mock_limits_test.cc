// Rate limits as Azure applies them, against the real binary: TPM and RPM buckets over the
// evaluation window, PTU utilization, 429 retry headers and the post-hoc refund.
#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

// Retries `body` as a client honouring retry-after-ms would: waits `retry_ms`, sends, and on
// another 429 waits what that one says. Returns the first answer that is not a 429 (or the last
// 429, once a guard against a deployment that never admits passes); `refusals` counts the 429s
// on the way. Load only adds to each wait, and a bucket only refills with time, so a slow
// machine makes refusals rarer, never more frequent.
test::HttpResponse RetryAsTold(test::HttpClient& client, const std::string& path,
                               const std::string& body, int64_t retry_ms, int& refusals) {
  // Under ctest's 60 s limit for the test, so a deployment that never admits fails with its
  // last answer instead of a timeout.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  refusals = 0;
  for (;;) {
    absl::SleepFor(absl::Milliseconds(std::max<int64_t>(1, retry_ms)));
    test::HttpResponse response = MustSend(client, "POST", path, body);
    if (response.status != 429 || absl::Now() > deadline) {
      return response;
    }
    ++refusals;
    retry_ms = IntHeader(response, "retry-after-ms");
  }
}

// The windows of the tests below that exhaust a bucket and expect the next request refused are
// 5 s, not 1 s: the bucket refills over the window, so a machine stalling this test for a whole
// window between two requests would see the second admitted. 5 s leaves a loaded 2-core
// machine a wide margin; the cost is one window of waiting per test.

TEST(MockLimitsTest, TokenLimitAnswers429UntilRetryAfterMsHasPassed) {
  // 600 TPM over a 5 s window: 50 tokens of capacity, refilled at 10 per second. Answers use
  // all 49 tokens they may, so nothing is refunded before the next request.
  SPILLWAY_START_MOCK(mock, {"--deployments", "small:tpm=600:rpm=6000", "--window-seconds", "5",
                             "--completion-tokens", "49"});
  test::HttpClient client = Client(*mock);
  const std::string body = ChatBody("hi", R"("max_tokens":49)");  // charge 1 + 49
  test::HttpResponse first = MustSend(client, "POST", ChatPath("small"), body);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(IntHeader(first, "x-ratelimit-remaining-tokens"), 0);

  test::HttpResponse limited = MustSend(client, "POST", ChatPath("small"), body);
  ASSERT_EQ(limited.status, 429) << limited.body;
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 5000);
  // retry-after is retry-after-ms in whole seconds, rounded up; how many depends on how long
  // this test took between the two requests.
  const int64_t retry_s = (retry_ms + 999) / 1000;
  EXPECT_EQ(IntHeader(limited, "retry-after"), retry_s);
  const boost::json::value error = Json(limited.body);
  EXPECT_EQ(Str(error.at("error").at("code")), "429");
  EXPECT_THAT(ErrorMessage(limited),
              HasSubstr(absl::StrCat(
                  "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                  "version 2024-10-21 have exceeded token rate limit of your current "
                  "OpenAI S0 pricing tier. Please retry after ",
                  retry_s, " seconds.")));
  // A 429 carries the same headers as any answer.
  EXPECT_TRUE(limited.HasHeader("x-request-id"));
  EXPECT_TRUE(limited.HasHeader("apim-request-id"));
  EXPECT_TRUE(limited.HasHeader("x-ms-region"));
  EXPECT_EQ(IntHeader(limited, "x-ratelimit-limit-tokens"), 600);
  EXPECT_GE(IntHeader(limited, "x-ratelimit-remaining-requests"), 0);

  // Waiting as told is enough: the retry is admitted, give or take one more refusal for
  // rounding between the mock's clock and this one.
  int refusals = 0;
  test::HttpResponse after = RetryAsTold(client, ChatPath("small"), body, retry_ms, refusals);
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_LE(refusals, 1);
}

TEST(MockLimitsTest, RequestLimitSaysCallRateLimit) {
  // 12 RPM over 5 s: one request per window.
  SPILLWAY_START_MOCK(mock, {"--deployments", "d:tpm=1000000:rpm=12", "--window-seconds", "5"});
  test::HttpClient client = Client(*mock);
  ASSERT_EQ(MustSend(client, "POST", ChatPath("d"), ChatBody("hi")).status, 200);
  test::HttpResponse limited = MustSend(client, "POST", ChatPath("d"), ChatBody("hi"));
  ASSERT_EQ(limited.status, 429);
  EXPECT_THAT(ErrorMessage(limited), HasSubstr("have exceeded call rate limit"));
  EXPECT_EQ(IntHeader(limited, "x-ratelimit-remaining-requests"), 0);
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 5000);
  int refusals = 0;
  EXPECT_EQ(RetryAsTold(client, ChatPath("d"), ChatBody("hi"), retry_ms, refusals).status, 200);
  EXPECT_LE(refusals, 1);
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
  // 1 PTU x 1200 tokens/min over 5 s: 100 tokens is 100%.
  SPILLWAY_START_MOCK(mock, {"--deployments", "ptu:ptu=1", "--tokens-per-ptu-minute", "1200",
                             "--window-seconds", "5"});
  test::HttpClient client = Client(*mock);
  const std::string small = ChatBody("hi", R"("max_tokens":16)");  // 17 tokens, no refund
  test::HttpResponse a = MustSend(client, "POST", ChatPath("ptu"), small);
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("azure-openai-deployment-utilization"), "17.0%");
  test::HttpResponse b = MustSend(client, "POST", ChatPath("ptu"), small);
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(b.Header("azure-openai-deployment-utilization"), "34.0%");
  EXPECT_EQ(IntHeader(b, "x-ratelimit-limit-tokens"), 1200);

  const std::string big = ChatBody("hi", R"("max_tokens":70)");  // 71: would make 105%
  test::HttpResponse limited = MustSend(client, "POST", ChatPath("ptu"), big);
  ASSERT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(limited.Header("azure-openai-deployment-utilization"), "34.0%");
  EXPECT_THAT(ErrorMessage(limited), HasSubstr("provisioned throughput"));
  const int64_t retry_ms = IntHeader(limited, "retry-after-ms");
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 5000);
  EXPECT_GE(IntHeader(limited, "retry-after"), 1);

  int refusals = 0;
  EXPECT_EQ(RetryAsTold(client, ChatPath("ptu"), big, retry_ms, refusals).status, 200);
  EXPECT_LE(refusals, 1);
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
