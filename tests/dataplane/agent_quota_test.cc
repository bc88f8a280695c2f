// Tenant TPM/RPM quotas on a standalone agent against a real mock: a tenant at its limit
// gets Azure's 429 with an honest retry-after, every response carries the tenant's own
// x-ratelimit-* figures, failed requests give their charge back, and other tenants on the
// same route never notice.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/dataplane/agent_fixture.h"

namespace spillway::test {
namespace {

using ::testing::HasSubstr;

// "app" (key "test") has 1000 TPM; "twin" (key "other") has the same limit of its own;
// "free" (key "critical-key") has none; "calls" (key "calls") has 3 RPM.
constexpr char kTenants[] = R"(tenants:
  - { name: app, stamp: us, routes: [ gpt-4o ], limits: { tokens_per_minute: 1000 }, api_keys: [ { name: k, sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 } ] }
  - { name: twin, stamp: us, routes: [ gpt-4o ], limits: { tokens_per_minute: 1000 }, api_keys: [ { name: k, sha256: d9298a10d1b0735837dc4bd85dac641b0f3cef27a47e5d53a54f2f3f5b2fcffa } ] }
  - { name: free, stamp: us, routes: [ gpt-4o ], api_keys: [ { name: k, sha256: c6be7c419cb5e7ffce884e54b8ce997db505f2f74a6d3e7893e0db45625f591b } ] }
  - { name: calls, stamp: us, routes: [ gpt-4o ], limits: { requests_per_minute: 3 }, api_keys: [ { name: k, sha256: f46f5990ebfadcab199107258b9dadd8711bd7946d8d00091a1073effcf2a843 } ] }
)";

// ChatBody's prompt, "Hello, gateway." in one message, is estimated at 9 tokens (15
// characters / 4, rounded up, + 4 per message + 1), so max_tokens 100 charges 109 up front.
constexpr int kMaxTokens = 100;
constexpr int64_t kCharge = 109;
// 1000 tokens a minute refill one token every 60 ms.
constexpr int64_t kMsPerToken = 60;

int64_t IntHeader(const HttpResponse& response, absl::string_view name) {
  int64_t value = -1;
  std::optional<std::string> header = response.Header(name);
  if (!header.has_value() || !absl::SimpleAtoi(*header, &value)) {
    ADD_FAILURE() << "no integer header " << name;
  }
  return value;
}

class AgentQuota : public ::testing::Test {
 protected:
  void SetUp() override {
    // Completions as long as max_tokens, so the real usage is known: 4 prompt tokens (the
    // mock's count) + 100.
    ASSERT_TRUE(
        fleet_.AddMock("a", {"--deployments", "gpt-4o", "--completion-tokens", "1000"}).ok());
    ASSERT_TRUE(fleet_.StartAgent(SingleBackendTopology({"gpt-4o"}, kTenants), "eastus2").ok());
  }

  HttpResponse Send(HttpClient& client, const std::string& key, const std::string& body) {
    absl::StatusOr<HttpResponse> response =
        client.Send("POST", ChatTarget("gpt-4o"), {{"api-key", key}}, body);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(HttpResponse{});
  }

  AgentFleet fleet_;
};

TEST_F(AgentQuota, ATenantAtItsTokenLimitGets429WithAnHonestRetryAfter) {
  auto client = fleet_.AgentClient();
  std::vector<int64_t> remaining;
  HttpResponse refused;
  for (int i = 0; i < 30; ++i) {
    HttpResponse response = Send(*client, "test", ChatBody(kMaxTokens));
    if (response.status == 429) {
      refused = response;
      break;
    }
    ASSERT_EQ(response.status, 200) << response.body;
    // The tenant's quota, not the backend's (the mock has a million tokens a minute).
    EXPECT_EQ(response.Header("x-ratelimit-limit-tokens"), "1000");
    remaining.push_back(IntHeader(response, "x-ratelimit-remaining-tokens"));
    EXPECT_FALSE(response.HasHeader("x-ratelimit-remaining-requests")) << "no RPM limit";
  }
  ASSERT_EQ(refused.status, 429) << "1000 tokens a minute ran out";
  // Nine charges of 109 fit in a full bucket of 1000 (refunds of 5 a request and the refill
  // may let a tenth in); each left less than the one before.
  EXPECT_GE(remaining.size(), 9u);
  EXPECT_LE(remaining.size(), 10u);
  for (std::size_t i = 1; i < remaining.size(); ++i) {
    EXPECT_LT(remaining[i], remaining[i - 1]) << i;
  }
  EXPECT_LE(remaining.front(), 1000 - kCharge);

  // Azure's shape and wording, with the time until 109 tokens are back.
  EXPECT_THAT(refused.body, HasSubstr(R"("code":"429")"));
  EXPECT_THAT(refused.body, HasSubstr("Requests to the ChatCompletions_Create Operation under "
                                      "Azure OpenAI API version 2024-10-21 have exceeded the "
                                      "token rate limit of tenant 'app' (1000 tokens per minute)"));
  const int64_t left = IntHeader(refused, "x-ratelimit-remaining-tokens");
  const int64_t retry_ms = IntHeader(refused, "retry-after-ms");
  ASSERT_LT(left, kCharge);
  EXPECT_GE(retry_ms, (kCharge - left - 1) * kMsPerToken);
  EXPECT_LE(retry_ms, (kCharge - left) * kMsPerToken + 1);
  EXPECT_EQ(IntHeader(refused, "retry-after"), (retry_ms + 999) / 1000);
  EXPECT_THAT(refused.body,
              HasSubstr(absl::StrCat("Please retry after ", (retry_ms + 999) / 1000, " second")));
  EXPECT_EQ(refused.Header("x-should-retry"), "true");
  EXPECT_EQ(refused.Header("x-ratelimit-limit-tokens"), "1000");

  // The refused request never reached the backend.
  absl::StatusOr<std::string> stats = fleet_.MockStats("a");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(boost::json::parse(*stats).at("deployments").at("gpt-4o").at("requests").as_int64(),
            static_cast<int64_t>(remaining.size()));

  // Other tenants on the same route are untouched: one with its own equal limit starts
  // with its own full minute, one without limits sees the backend's figures as they are.
  auto other_client = fleet_.AgentClient();
  HttpResponse twin = Send(*other_client, "other", ChatBody(kMaxTokens));
  EXPECT_EQ(twin.status, 200);
  EXPECT_GE(IntHeader(twin, "x-ratelimit-remaining-tokens"), 1000 - kCharge);
  HttpResponse free = Send(*other_client, "critical-key", ChatBody(kMaxTokens));
  EXPECT_EQ(free.status, 200);
  EXPECT_GT(IntHeader(free, "x-ratelimit-remaining-tokens"), 100'000) << "the mock's own";

  // Waiting exactly as long as told is enough.
  std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
  HttpResponse again = Send(*client, "test", ChatBody(kMaxTokens));
  EXPECT_EQ(again.status, 200) << again.body;
}

TEST_F(AgentQuota, ATenantAtItsRequestLimitGets429) {
  auto client = fleet_.AgentClient();
  for (int i = 0; i < 3; ++i) {
    HttpResponse response = Send(*client, "calls", ChatBody(kMaxTokens));
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(IntHeader(response, "x-ratelimit-remaining-requests"), 2 - i);
    EXPECT_EQ(response.Header("x-ratelimit-limit-requests"), "3");
    EXPECT_FALSE(response.HasHeader("x-ratelimit-remaining-tokens"))
        << "the backend's token figure says nothing about this tenant";
  }
  HttpResponse refused = Send(*client, "calls", ChatBody(kMaxTokens));
  ASSERT_EQ(refused.status, 429);
  EXPECT_THAT(refused.body, HasSubstr("call rate limit of tenant 'calls' (3 requests per minute)"));
  EXPECT_EQ(IntHeader(refused, "x-ratelimit-remaining-requests"), 0);
  // One request every 20 s; the three went out moments ago.
  const int64_t retry_ms = IntHeader(refused, "retry-after-ms");
  EXPECT_GT(retry_ms, 15'000);
  EXPECT_LE(retry_ms, 20'000);
  EXPECT_EQ(IntHeader(refused, "retry-after"), (retry_ms + 999) / 1000);
  // Another tenant keeps going.
  EXPECT_EQ(Send(*client, "test", ChatBody(kMaxTokens)).status, 200);
}

TEST_F(AgentQuota, StreamsAndFailuresCarryTheHeadersAndFailuresGiveTheChargeBack) {
  auto client = fleet_.AgentClient();
  HttpResponse streamed = Send(*client, "test", ChatBody(kMaxTokens, /*stream=*/true));
  ASSERT_EQ(streamed.status, 200);
  EXPECT_EQ(streamed.Header("x-ratelimit-limit-tokens"), "1000");
  const int64_t after_stream = IntHeader(streamed, "x-ratelimit-remaining-tokens");
  EXPECT_LE(after_stream, 1000 - kCharge);

  // A 503 with retry-after is retried elsewhere; with no other backend the agent answers 502.
  ASSERT_TRUE(
      fleet_.SetFault("a", R"({"mode":"status","status":503,"retry_after_ms":1,"count":1})").ok());
  HttpResponse failed = Send(*client, "test", ChatBody(kMaxTokens));
  ASSERT_EQ(failed.status, 502) << failed.body;
  const int64_t after_failure = IntHeader(failed, "x-ratelimit-remaining-tokens");
  EXPECT_EQ(failed.Header("x-ratelimit-limit-tokens"), "1000");

  HttpResponse next = Send(*client, "test", ChatBody(kMaxTokens));
  ASSERT_EQ(next.status, 200);
  // The failed request's 109 came back before this one took its own 109, so this one
  // leaves at least what the failed one did (plus any refill).
  EXPECT_GE(IntHeader(next, "x-ratelimit-remaining-tokens"), after_failure);
}

}  // namespace
}  // namespace spillway::test
