// See rate_limit_headers.h.
#include "dataplane/rate_limit_headers.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

constexpr absl::string_view kNames[] = {"x-ratelimit-remaining-tokens",
                                        "x-ratelimit-remaining-requests",
                                        "x-ratelimit-limit-tokens", "x-ratelimit-limit-requests"};

}  // namespace

void RateLimitHeaders::ApplyTo(boost::beast::http::fields& headers) const {
  if (!active) {
    return;
  }
  // A dimension the tenant is not limited on would otherwise show one backend's figure,
  // which says nothing about the tenant.
  for (absl::string_view name : kNames) {
    headers.erase(boost::beast::string_view(name.data(), name.size()));
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

bool RateLimitHeaders::Replaces(absl::string_view header_name) const {
  if (!active || !absl::StartsWithIgnoreCase(header_name, "x-ratelimit-")) {
    return false;
  }
  for (absl::string_view ours : kNames) {
    if (absl::EqualsIgnoreCase(header_name, ours)) {
      return true;
    }
  }
  return false;
}

void RateLimitHeaders::AppendTo(std::string& head) const {
  if (!active) {
    return;
  }
  if (remaining_tokens >= 0) {
    absl::StrAppend(&head, "x-ratelimit-remaining-tokens: ", remaining_tokens,
                    "\r\nx-ratelimit-limit-tokens: ", limit_tokens, "\r\n");
  }
  if (remaining_requests >= 0) {
    absl::StrAppend(&head, "x-ratelimit-remaining-requests: ", remaining_requests,
                    "\r\nx-ratelimit-limit-requests: ", limit_requests, "\r\n");
  }
}

}  // namespace spillway
