// See rate_limit_headers.h.
#include "dataplane/http/rate_limit_headers.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "dataplane/http/http_head.h"

namespace spillway {
namespace {

constexpr absl::string_view kRemainingTokens = "x-ratelimit-remaining-tokens";
constexpr absl::string_view kRemainingRequests = "x-ratelimit-remaining-requests";
constexpr absl::string_view kLimitTokens = "x-ratelimit-limit-tokens";
constexpr absl::string_view kLimitRequests = "x-ratelimit-limit-requests";
constexpr absl::string_view kNames[] = {kRemainingTokens, kRemainingRequests, kLimitTokens,
                                        kLimitRequests};
static_assert(kRemainingTokens.size() != kRemainingRequests.size() &&
                  kRemainingTokens.size() != kLimitTokens.size() &&
                  kRemainingTokens.size() != kLimitRequests.size() &&
                  kRemainingRequests.size() != kLimitTokens.size() &&
                  kRemainingRequests.size() != kLimitRequests.size() &&
                  kLimitTokens.size() != kLimitRequests.size(),
              "Replaces tells the names apart by their lengths");

boost::beast::string_view Beast(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace

template <class Emit>
void RateLimitHeaders::ForEachHeader(Emit emit) const {
  if (!active) {
    return;
  }
  // A dimension the tenant is not limited on gets no header of ours; ApplyTo and Replaces
  // still drop the backend's, whose figure would say nothing about the tenant.
  if (remaining_tokens >= 0) {
    emit(kRemainingTokens, absl::AlphaNum(remaining_tokens));
    emit(kLimitTokens, absl::AlphaNum(limit_tokens));
  }
  if (remaining_requests >= 0) {
    emit(kRemainingRequests, absl::AlphaNum(remaining_requests));
    emit(kLimitRequests, absl::AlphaNum(limit_requests));
  }
}

void RateLimitHeaders::ApplyTo(boost::beast::http::fields& headers) const {
  if (!active) {
    return;
  }
  for (absl::string_view name : kNames) {
    headers.erase(Beast(name));
  }
  ForEachHeader([&headers](absl::string_view name, const absl::AlphaNum& value) {
    headers.set(Beast(name), Beast(value.Piece()));
  });
}

bool RateLimitHeaders::Replaces(absl::string_view header_name) const {
  if (!active) {
    return false;
  }
  // Asked of every backend header: the name's length says which of ours it could be, so one
  // comparison at most (a prefix test and four comparisons took ~450 instructions for each of
  // a backend's x-ratelimit headers, callgrind).
  for (absl::string_view ours : kNames) {
    if (header_name.size() == ours.size()) {
      // Azure sends these names in lower case: one inline compare, and Abseil's out-of-line
      // case folding (~280 instructions for a 28-byte name) only for other spellings.
      return header_name == ours || absl::EqualsIgnoreCase(header_name, ours);
    }
  }
  return false;
}

void RateLimitHeaders::AppendTo(std::string& head) const {
  ForEachHeader([&head](absl::string_view name, const absl::AlphaNum& value) {
    AppendHeaderLine(head, name, value.Piece());
  });
}

}  // namespace spillway
