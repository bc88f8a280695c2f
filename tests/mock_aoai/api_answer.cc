// See api_answer.h. The 401, 404 and 429 texts are the service's own, which SDKs and operators
// recognise.
#include "tests/mock_aoai/api_answer.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/mock_aoai/http_reply.h"

namespace spillway::mock {
namespace {

constexpr absl::string_view kUnauthorized =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource.";

// What Azure OpenAI says to a bearer token that is expired, forged or for another audience.
constexpr absl::string_view kBadToken =
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.";

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

enum class AuthVerdict { kOk, kBadKey, kExpiredToken, kInvalidToken };

// Tokens this mock issued are always checked (an expired one is refused even by a mock that
// requires no key, as Azure would); other credentials as configured.
AuthVerdict Check(const MockConfig& config, const TokenIssuer& tokens, const RequestView& request) {
  absl::string_view authorization = request.authorization;
  absl::string_view bearer;
  if (authorization.size() > 7 && absl::EqualsIgnoreCase(authorization.substr(0, 7), "Bearer ")) {
    bearer = absl::StripAsciiWhitespace(authorization.substr(7));
    switch (tokens.Check(bearer)) {
      case TokenVerdict::kValid:
        return AuthVerdict::kOk;
      case TokenVerdict::kExpired:
        return AuthVerdict::kExpiredToken;
      case TokenVerdict::kInvalid:
        return AuthVerdict::kInvalidToken;
      case TokenVerdict::kNotIssuedHere:
        break;
    }
  }
  if (config.api_keys.empty() && config.bearer_tokens.empty()) {
    return AuthVerdict::kOk;
  }
  if (!request.api_key.empty() && Contains(config.api_keys, request.api_key)) {
    return AuthVerdict::kOk;
  }
  return !bearer.empty() && Contains(config.bearer_tokens, bearer) ? AuthVerdict::kOk
                                                                   : AuthVerdict::kBadKey;
}

// Whole milliseconds, rounded up so waiting that long is always enough.
int64_t CeilMillis(absl::Duration d) {
  return absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
}

// retry-after is whole seconds: rounded up, and never 0, which clients read as "now".
int64_t RetryAfterSeconds(int64_t retry_ms) {
  return std::max<int64_t>(1, (retry_ms + 999) / 1000);
}

absl::string_view DefaultMessage(int status) {
  switch (status) {
    case 400:
      return "The request is invalid.";
    case 408:
      return "The operation was timeout.";
    case 500:
      return "The server had an error while processing your request. Sorry about that!";
    case 502:
      return "Bad gateway.";
    case 503:
      return "The service is temporarily unable to process your request. Please try again later.";
    case 504:
      return "The gateway did not receive a response from the upstream in time.";
    default:
      return "The mock was told to fail this request.";
  }
}

}  // namespace

bool IsDatedApiVersion(absl::string_view version) {
  return version.size() >= 5 && absl::ascii_isdigit(version[0]) &&
         absl::ascii_isdigit(version[1]) && absl::ascii_isdigit(version[2]) &&
         absl::ascii_isdigit(version[3]) && version[4] == '-';
}

std::string RateLimitMessage(absl::string_view operation, absl::string_view api_version,
                             LimitCause cause, int64_t retry_seconds) {
  const absl::string_view version = api_version.empty() ? "v1" : api_version;
  if (cause == LimitCause::kUtilization) {
    return absl::StrCat("Requests to the ", operation, " Operation under Azure OpenAI API ",
                        "version ", version,
                        " have exceeded the provisioned throughput capacity of this deployment "
                        "(utilization above 100%). Please retry after ",
                        retry_seconds, " seconds.");
  }
  return absl::StrCat(
      "Requests to the ", operation, " Operation under Azure OpenAI API version ", version,
      " have exceeded ", cause == LimitCause::kRequests ? "call rate limit" : "token rate limit",
      " of your current OpenAI S0 pricing tier. Please retry after ", retry_seconds,
      " seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further "
      "increase the default rate limit.");
}

ApiAnswer::ApiAnswer(MockState& state, const RequestView& request, std::string& out,
                     std::string& scratch, Reply& reply, absl::Time arrival)
    : state_(state),
      request_(request),
      out_(out),
      scratch_(scratch),
      reply_(reply),
      arrival_(arrival) {
  trace_.method = request.method;
  trace_.path = request.target.substr(0, request.target.find('?'));
}

bool ApiAnswer::Authorize(absl::string_view deployment) {
  const AuthVerdict verdict = Check(state_.config(), state_.tokens(), request_);
  if (verdict == AuthVerdict::kOk) {
    return true;
  }
  if (verdict != AuthVerdict::kBadKey) {
    state_.stats().CountBearerRejected(verdict == AuthVerdict::kExpiredToken);
  }
  Fail(401, deployment, "401", verdict == AuthVerdict::kBadKey ? kUnauthorized : kBadToken);
  return false;
}

void ApiAnswer::Fail(int status, absl::string_view deployment, absl::string_view code,
                     absl::string_view message, const LimitSnapshot* limits) {
  StartHead(status, limits);
  scratch_.clear();
  AppendAzureError(scratch_, code, message);
  FinishBody(kJson, scratch_);
  Record(deployment, status, false);
}

void ApiAnswer::Json(int status, const LimitSnapshot* limits, absl::string_view body) {
  StartHead(status, limits);
  FinishBody(kJson, body);
}

bool ApiAnswer::TakeFault(Deployment& deployment, absl::string_view operation,
                          absl::string_view api_version, bool stream,
                          absl::string_view& fault_name) {
  return TakeFaultFor(deployment.spec.name, deployment.limiter.get(), operation, api_version,
                      stream, fault_name);
}

bool ApiAnswer::TakeFault(absl::string_view operation, absl::string_view api_version,
                          absl::string_view& fault_name) {
  return TakeFaultFor("", nullptr, operation, api_version, false, fault_name);
}

bool ApiAnswer::TakeFaultFor(absl::string_view name, RateLimiter* limiter,
                             absl::string_view operation, absl::string_view api_version,
                             bool stream, absl::string_view& fault_name) {
  const std::optional<FaultSpec> fault = state_.faults().Take(name);
  if (!fault.has_value()) {
    return false;
  }
  fault_name = FaultModeName(fault->mode);
  switch (fault->mode) {
    case FaultMode::kStatus: {
      std::optional<LimitSnapshot> limits;
      if (limiter != nullptr) {
        limits = limiter->Snapshot();
      }
      StartHead(fault->status, limits.has_value() ? &*limits : nullptr);
      std::string message = fault->message;
      if (fault->status == 429 || fault->retry_after_given) {
        AppendRetryAfter(fault->retry_after_ms);
      }
      if (message.empty() && fault->status == 429) {
        message = RateLimitMessage(operation, api_version, LimitCause::kTokens,
                                   RetryAfterSeconds(fault->retry_after_ms));
      } else if (message.empty()) {
        message = std::string(DefaultMessage(fault->status));
      }
      const std::string code = fault->code.empty() ? absl::StrCat(fault->status) : fault->code;
      scratch_.clear();
      AppendAzureError(scratch_, code, message);
      FinishBody(kJson, scratch_);
      Record(name, fault->status, stream, fault_name);
      return true;
    }
    case FaultMode::kReset:
      reply_.kind = Reply::Kind::kReset;
      reply_.keep_alive = false;
      Record(name, 0, stream, fault_name);
      return true;
    case FaultMode::kHang:
      reply_.kind = Reply::Kind::kHang;
      reply_.keep_alive = false;
      Record(name, 0, stream, fault_name);
      return true;
    case FaultMode::kSlowDrip:
      reply_.drip = absl::Milliseconds(fault->drip_ms);
      return false;
    case FaultMode::kCut:
      reply_.cut_after = fault->cut_after_chunks;
      reply_.keep_alive = false;
      return false;
    case FaultMode::kInterim:
      reply_.interim_status = fault->status;
      return false;
    case FaultMode::kGoaway:
      reply_.kind = Reply::Kind::kGoaway;
      reply_.keep_alive = false;
      Record(name, 0, stream, fault_name);
      return true;
    case FaultMode::kClose:
      reply_.close_after = true;
      return false;
  }
  return false;
}

bool ApiAnswer::Admit(Deployment& deployment, int64_t charge, int64_t refund,
                      absl::string_view operation, absl::string_view api_version, bool stream,
                      LimitSnapshot& limits) {
  const Admission admission = deployment.limiter->Acquire(charge);
  limits = admission.snapshot;
  if (!admission.admitted) {
    const int64_t retry_ms = std::max<int64_t>(1, CeilMillis(admission.retry_after));
    StartHead(429, &admission.snapshot);
    AppendRetryAfter(retry_ms);
    scratch_.clear();
    AppendAzureError(
        scratch_, "429",
        RateLimitMessage(operation, api_version, admission.cause, RetryAfterSeconds(retry_ms)));
    FinishBody(kJson, scratch_);
    // A 429 is an answer: cut/drip faults do not apply to it.
    reply_.drip = absl::ZeroDuration();
    reply_.cut_after = -1;
    reply_.keep_alive = request_.keep_alive;
    Record(deployment.spec.name, 429, stream);
    return false;
  }
  reply_.limiter = deployment.limiter.get();
  reply_.ticket = admission.ticket;
  reply_.refund = refund;
  reply_.deployment = deployment.spec.name;
  return true;
}

void ApiAnswer::StartHead(int status, const LimitSnapshot* limits) {
  const MockConfig& config = state_.config();
  out_.clear();
  AppendStatusLine(out_, status);
  out_ += "x-request-id: ";
  AppendUuid(out_);
  out_ += "\r\napim-request-id: ";
  AppendUuid(out_);
  out_ += "\r\n";
  AppendHeader(out_, "x-ms-region", config.region);
  if (limits != nullptr) {
    AppendHeader(out_, "x-ratelimit-limit-requests", limits->limit_requests);
    AppendHeader(out_, "x-ratelimit-limit-tokens", limits->limit_tokens);
    AppendHeader(out_, "x-ratelimit-remaining-requests", limits->remaining_requests);
    AppendHeader(out_, "x-ratelimit-remaining-tokens", limits->remaining_tokens);
    if (limits->utilization_percent.has_value()) {
      AppendHeader(out_, "azure-openai-deployment-utilization",
                   absl::StrFormat("%.1f%%", *limits->utilization_percent));
    }
  }
  if (!request_.keep_alive) {
    out_ += "Connection: close\r\n";
  } else if (request_.http10) {
    out_ += "Connection: keep-alive\r\n";
  }
}

void ApiAnswer::FinishBody(absl::string_view content_type, absl::string_view body) {
  reply_.head_size = out_.size();
  AppendBody(out_, content_type, body);
}

void ApiAnswer::Record(absl::string_view deployment, int status, bool stream,
                       absl::string_view fault) {
  state_.stats().Record(arrival_, deployment, status, stream, fault, trace_);
}

void ApiAnswer::AppendRetryAfter(int64_t retry_ms) {
  AppendHeader(out_, "retry-after", RetryAfterSeconds(retry_ms));
  AppendHeader(out_, "retry-after-ms", retry_ms);
}

}  // namespace spillway::mock
