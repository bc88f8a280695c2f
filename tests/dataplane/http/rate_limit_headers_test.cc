// RateLimitHeaders::Replaces: which of a backend's headers give way to the tenant's own
// x-ratelimit-* figures, whatever their case, and nothing else.
#include "dataplane/http/rate_limit_headers.h"

#include <gtest/gtest.h>

namespace spillway {
namespace {

TEST(RateLimitHeaders, ReplacesTheBackendsFourFiguresInAnyCase) {
  RateLimitHeaders headers;
  headers.active = true;
  for (const char* name : {"x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests",
                           "x-ratelimit-limit-tokens", "x-ratelimit-limit-requests",
                           "X-RateLimit-Remaining-Tokens", "X-RATELIMIT-LIMIT-REQUESTS"}) {
    EXPECT_TRUE(headers.Replaces(name)) << name;
  }
}

TEST(RateLimitHeaders, LeavesOtherHeadersAlone) {
  RateLimitHeaders headers;
  headers.active = true;
  // Look-alikes of each length, other x- headers, and names one byte short or long.
  for (const char* name :
       {"x-ratelimit-remaining-tokenz", "y-ratelimit-remaining-requests",
        "x-ratelimit-limit-tokens-", "x-ratelimit-limit-request", "x-ratelimit-reset-tokens",
        "x-ms-region", "content-length", "", "x-ratelimit-"}) {
    EXPECT_FALSE(headers.Replaces(name)) << name;
  }
  RateLimitHeaders inactive;  // a tenant without limits keeps the backend's figures
  EXPECT_FALSE(inactive.Replaces("x-ratelimit-remaining-tokens"));
}

TEST(RateLimitHeaders, AppendsOnlyTheLimitedDimensions) {
  RateLimitHeaders headers;
  headers.active = true;
  headers.remaining_tokens = 900;
  headers.limit_tokens = 1000;
  std::string head;
  headers.AppendTo(head);
  EXPECT_EQ(head, "x-ratelimit-remaining-tokens: 900\r\nx-ratelimit-limit-tokens: 1000\r\n");
}

}  // namespace
}  // namespace spillway
