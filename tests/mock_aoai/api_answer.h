// The steps every data-plane answer of the mock shares, whichever API it serves (completions,
// embeddings, the Responses API): authentication, the head every answer carries, Azure's
// error bodies and 429 texts, faults, and admission by the deployment's limiter. One
// ApiAnswer per request; it writes into the session's buffers and records the stats line.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/mock_state.h"
#include "tests/mock_aoai/rate_limiter.h"
#include "tests/mock_aoai/reply.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/stats.h"

namespace spillway::mock {

inline constexpr absl::string_view kJson = "application/json";
inline constexpr absl::string_view kDeploymentNotFound =
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again.";

// A dated api-version ("2024-10-21", "2025-04-01-preview"), which /openai/v1 refuses; the
// undated "preview" and "latest" are what it takes.
bool IsDatedApiVersion(absl::string_view version);

// Azure's 429 text for `operation` ("ChatCompletions_Create").
std::string RateLimitMessage(absl::string_view operation, absl::string_view api_version,
                             LimitCause cause, int64_t retry_seconds);

class ApiAnswer {
 public:
  ApiAnswer(MockState& state, const RequestView& request, std::string& out, std::string& scratch,
            Reply& reply, absl::Time arrival);

  // What the stats log shows of this request beyond deployment and status; method and path
  // are filled in from the request.
  RequestTrace& trace() { return trace_; }
  const RequestView& request() const { return request_; }
  absl::Time arrival() const { return arrival_; }

  // False when the credentials are refused: the 401 is answered and recorded.
  bool Authorize(absl::string_view deployment);
  // An Azure-shaped error {"error":{"code","message"}}, recorded in the stats.
  void Fail(int status, absl::string_view deployment, absl::string_view code,
            absl::string_view message, const LimitSnapshot* limits = nullptr);
  // A whole answer with a JSON body (the head is started here), not recorded: the caller
  // records it, since only it knows the status's meaning.
  void Json(int status, const LimitSnapshot* limits, absl::string_view body);

  // Takes the fault for `deployment`, if any. True when the fault is the whole answer (a
  // status, a reset or a hang: answered and recorded); otherwise it shapes how the normal
  // answer goes out (drip, cut, interim) and `fault_name` names it for the stats.
  bool TakeFault(Deployment& deployment, absl::string_view operation, absl::string_view api_version,
                 bool stream, absl::string_view& fault_name);
  // The same for a request that no deployment serves (the Conversations API): only the faults
  // aimed at no deployment in particular apply, and no x-ratelimit-* headers are sent.
  bool TakeFault(absl::string_view operation, absl::string_view api_version,
                 absl::string_view& fault_name);
  // Charges `charge` tokens up front and readies the Reply to refund `refund` of them when
  // settled. False when the limiter refuses: the 429 is answered and recorded.
  bool Admit(Deployment& deployment, int64_t charge, int64_t refund, absl::string_view operation,
             absl::string_view api_version, bool stream, LimitSnapshot& limits);

  // The status line and the headers every answer carries (x-request-id, apim-request-id,
  // x-ms-region, the x-ratelimit-* of `limits` when known, Connection).
  void StartHead(int status, const LimitSnapshot* limits);
  // Ends the head with Content-Type and Content-Length and appends `body`.
  void FinishBody(absl::string_view content_type, absl::string_view body);
  void Record(absl::string_view deployment, int status, bool stream, absl::string_view fault = "");

  std::string& out() { return out_; }
  std::string& scratch() { return scratch_; }
  Reply& reply() { return reply_; }

 private:
  void AppendRetryAfter(int64_t retry_ms);
  // `deployment` is "" and `limiter` null for requests outside any deployment.
  bool TakeFaultFor(absl::string_view deployment, RateLimiter* limiter, absl::string_view operation,
                    absl::string_view api_version, bool stream, absl::string_view& fault_name);

  MockState& state_;
  const RequestView& request_;
  std::string& out_;
  std::string& scratch_;
  Reply& reply_;
  const absl::Time arrival_;
  RequestTrace trace_;
};

}  // namespace spillway::mock
