// The x-ratelimit-* headers a tenant with quotas sees on every response: what its own
// quota has left, not what one backend deployment has left, since that is what it must pace to.
#pragma once

#include <boost/beast/http/fields.hpp>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

struct RateLimitHeaders {
  bool active = false;              // the tenant has a TPM or RPM limit
  int64_t remaining_tokens = -1;    // < 0: no token limit
  int64_t remaining_requests = -1;  // < 0: no request limit
  uint64_t limit_tokens = 0;        // the tenant's per-minute limits (stamp-wide)
  uint64_t limit_requests = 0;

  // Replaces any x-ratelimit-* the backend sent; does nothing when not active.
  void ApplyTo(boost::beast::http::fields& headers) const;

  // For heads written by hand: whether a backend header of this name gives way to ours,
  // and our lines ("name: value\r\n") to append.
  bool Replaces(absl::string_view header_name) const;
  void AppendTo(std::string& head) const;

 private:
  // Calls emit(name, value) for each header of ours, in order.
  template <class Emit>
  void ForEachHeader(Emit emit) const;
};

}  // namespace spillway
