// See quota_claim.h.
#include "dataplane/tenants/quota_claim.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

// Azure's operation names, as its 429 messages use them.
absl::string_view OperationName(absl::string_view target) {
  const absl::string_view path = target.substr(0, target.find('?'));
  if (absl::EndsWith(path, "/chat/completions")) {
    return "ChatCompletions_Create";
  }
  if (absl::EndsWith(path, "/completions")) {
    return "Completions_Create";
  }
  if (absl::EndsWith(path, "/embeddings")) {
    return "Embeddings_Create";
  }
  if (absl::StrContains(path, "/realtime")) {
    return "Realtime";
  }
  return "Responses_Create";
}

absl::string_view ApiVersion(absl::string_view target) {
  const std::size_t at = target.find("api-version=");
  if (at == absl::string_view::npos) {
    return "v1";
  }
  absl::string_view version = target.substr(at + 12);
  return version.substr(0, version.find('&'));
}

}  // namespace

int64_t QuotaCost(const RequestFacts& facts, absl::string_view target, int64_t default_max_output) {
  const absl::string_view path = target.substr(0, target.find('?'));
  if (absl::EndsWith(path, "/embeddings")) {
    return facts.prompt_tokens_estimate;
  }
  // The Realtime operations by their last segments (api_path.cc's table): a search for
  // "/realtime" anywhere cost ~700 instructions per request (callgrind) and also matched a
  // route named "realtime..." (/openai/deployments/realtime-x/chat/completions), whose
  // completions were then charged no tokens up front.
  if (absl::EndsWith(path, "/realtime") || absl::EndsWith(path, "/realtime/client_secrets") ||
      absl::EndsWith(path, "/realtime/calls")) {
    // A session (or the client secret and SDP exchange that start one) has no estimate: only
    // the request counts up front, and a WebSocket session's usage is charged at its end.
    return 0;
  }
  return facts.EstimatedTokens(default_max_output);
}

QuotaClaim::QuotaClaim(TenantQuota* quota, const v1::TenantLimits& limits, int64_t tokens,
                       SteadyTime now)
    : quota_(quota), charged_(tokens) {
  if (quota_ != nullptr) {
    decision_ = quota_->TryCharge(limits, tokens, now);
  }
}

ErrorReply QuotaClaim::Refusal(absl::string_view tenant, const v1::TenantLimits& limits,
                               absl::string_view target) const {
  const int64_t seconds = (decision_.retry_after.count() + 999) / 1000;
  std::string limit;
  if (decision_.tokens_exhausted) {
    limit = absl::StrCat("the token rate limit of tenant '", tenant, "' (",
                         limits.tokens_per_minute(), " tokens per minute)");
  } else {
    limit = absl::StrCat("the call rate limit of tenant '", tenant, "' (",
                         limits.requests_per_minute(), " requests per minute)");
  }
  ErrorReply reply{429, "429",
                   absl::StrCat("Requests to the ", OperationName(target),
                                " Operation under Azure OpenAI API version ", ApiVersion(target),
                                " have exceeded ", limit, ". Please retry after ", seconds,
                                " second", seconds == 1 ? "" : "s",
                                ". Ask the gateway's operators to raise the tenant's quota if "
                                "you need more."),
                   decision_.retry_after, true};
  reply.rate_limit = decision_.headers;
  return reply;
}

void QuotaClaim::Settle(unsigned status, bool answered, const Usage& usage, SteadyTime now) {
  if (quota_ == nullptr || refused() || settled_ || !decision_.headers.active) {
    return;
  }
  settled_ = true;
  if (!answered || status >= 500) {
    // Nothing was served: the tenant gets its request and tokens back.
    quota_->Settle(-charged_, /*refund_request=*/true, now);
  } else if (status / 100 != 2 && status != 101) {
    // The backend's own refusal (a 400 content filter, say): the request counts, but no
    // tokens were generated.
    quota_->Settle(-charged_, /*refund_request=*/false, now);
  } else if (usage.reported) {
    quota_->Settle(usage.total_tokens - charged_, /*refund_request=*/false, now);
  }
  // A 2xx without usage (the client left mid-stream) keeps the estimate. A Realtime session
  // (101) is settled the same way, with its responses' summed usage.
}

}  // namespace spillway
