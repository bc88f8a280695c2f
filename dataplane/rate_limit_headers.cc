// See rate_limit_headers.h.
#include "dataplane/rate_limit_headers.h"

#include <string>

namespace spillway {

void RateLimitHeaders::ApplyTo(boost::beast::http::fields& headers) const {
  if (!active) {
    return;
  }
  // A dimension the tenant is not limited on would otherwise show one backend's figure,
  // which says nothing about the tenant.
  for (const char* name : {"x-ratelimit-remaining-tokens", "x-ratelimit-remaining-requests",
                           "x-ratelimit-limit-tokens", "x-ratelimit-limit-requests"}) {
    headers.erase(name);
  }
  if (remaining_tokens >= 0) {
    headers.set("x-ratelimit-remaining-tokens", std::to_string(remaining_tokens));
    headers.set("x-ratelimit-limit-tokens", std::to_string(limit_tokens));
  }
  if (remaining_requests >= 0) {
    headers.set("x-ratelimit-remaining-requests", std::to_string(remaining_requests));
    headers.set("x-ratelimit-limit-requests", std::to_string(limit_requests));
  }
}

}  // namespace spillway
