// One request's claim on its tenant's quota, the way Azure charges: the estimate up front
// (prompt + the most it may generate), corrected with the backend's usage when the response
// has ended; a request no backend answered gives everything back.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "dataplane/http/local_reply.h"
#include "dataplane/routing/request_facts.h"
#include "dataplane/routing/routing_snapshot.h"
#include "dataplane/tenants/tenant_limiter.h"
#include "dataplane/usage/usage_scanner.h"

namespace spillway {

// The up-front charge: estimated prompt tokens plus max_tokens / max_completion_tokens (else
// `default_max_output`) per choice; embeddings only their input; Realtime nothing (its usage
// is unknown up front).
int64_t QuotaCost(const RequestFacts& facts, absl::string_view target, int64_t default_max_output);

class QuotaClaim {
 public:
  QuotaClaim() = default;  // nothing claimed: a tenant without limits, or no limiter
  // Charges `tokens` and one request to `quota` (may be null) under `limits`.
  QuotaClaim(TenantQuota* quota, const v1::TenantLimits& limits, int64_t tokens, SteadyTime now);

  bool refused() const { return !decision_.admitted; }
  const RateLimitHeaders& headers() const { return decision_.headers; }
  // The 429 for a refused claim, worded like Azure's; `target` names the operation.
  ErrorReply Refusal(absl::string_view tenant, const v1::TenantLimits& limits,
                     absl::string_view target) const;
  // The response has ended with `status`; `answered` when a backend produced it (not the
  // agent's own 429/5xx), `usage` what the backend reported.
  void Settle(unsigned status, bool answered, const Usage& usage, SteadyTime now);

 private:
  TenantQuota* quota_ = nullptr;
  QuotaDecision decision_;
  int64_t charged_ = 0;
  bool settled_ = false;
};

}  // namespace spillway
