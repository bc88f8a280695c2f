// See api_handler.h. Wire shapes follow Azure OpenAI's REST reference; the 401, 404 and 429
// texts are the service's own, which SDKs and operators recognise.
#include "tests/mock_aoai/api_handler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/mock_aoai/control.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {
namespace {

constexpr absl::string_view kJson = "application/json";
constexpr absl::string_view kUnauthorized =
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource.";
constexpr absl::string_view kDeploymentNotFound =
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again.";

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// What Azure OpenAI says to a bearer token that is expired, forged or for another audience.
constexpr absl::string_view kBadToken =
    "Unauthorized. Access token is missing, invalid, audience is incorrect "
    "(https://cognitiveservices.azure.com), or have expired.";

enum class AuthVerdict { kOk, kBadKey, kExpiredToken, kInvalidToken };

// Tokens this mock issued are always checked (an expired one is refused even by a mock that
// requires no key, as Azure would); other credentials as configured.
AuthVerdict Authorize(const MockConfig& config, const TokenIssuer& tokens,
                      const RequestView& request) {
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

std::string RateLimitMessage(Operation op, absl::string_view api_version, LimitCause cause,
                             int64_t retry_seconds) {
  const absl::string_view version = api_version.empty() ? "v1" : api_version;
  if (cause == LimitCause::kUtilization) {
    return absl::StrCat("Requests to the ", OperationName(op), " Operation under Azure OpenAI API ",
                        "version ", version,
                        " have exceeded the provisioned throughput capacity of this deployment "
                        "(utilization above 100%). Please retry after ",
                        retry_seconds, " seconds.");
  }
  return absl::StrCat(
      "Requests to the ", OperationName(op), " Operation under Azure OpenAI API version ", version,
      " have exceeded ", cause == LimitCause::kRequests ? "call rate limit" : "token rate limit",
      " of your current OpenAI S0 pricing tier. Please retry after ", retry_seconds,
      " seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further "
      "increase the default rate limit.");
}

// Starts a response: status line and the headers every answer carries.
void StartHead(std::string& out, int status, const MockConfig& config, const RequestView& request,
               const LimitSnapshot* limits) {
  out.clear();
  AppendStatusLine(out, status);
  out += "x-request-id: ";
  AppendUuid(out);
  out += "\r\napim-request-id: ";
  AppendUuid(out);
  out += "\r\n";
  AppendHeader(out, "x-ms-region", config.region);
  if (limits != nullptr) {
    AppendHeader(out, "x-ratelimit-limit-requests", limits->limit_requests);
    AppendHeader(out, "x-ratelimit-limit-tokens", limits->limit_tokens);
    AppendHeader(out, "x-ratelimit-remaining-requests", limits->remaining_requests);
    AppendHeader(out, "x-ratelimit-remaining-tokens", limits->remaining_tokens);
    if (limits->utilization_percent.has_value()) {
      AppendHeader(out, "azure-openai-deployment-utilization",
                   absl::StrFormat("%.1f%%", *limits->utilization_percent));
    }
  }
  if (!request.keep_alive) {
    out += "Connection: close\r\n";
  } else if (request.http10) {
    out += "Connection: keep-alive\r\n";
  }
}

void AppendRetryAfter(std::string& out, int64_t retry_ms) {
  AppendHeader(out, "retry-after", RetryAfterSeconds(retry_ms));
  AppendHeader(out, "retry-after-ms", retry_ms);
}

void FinishError(std::string& out, std::string& scratch, absl::string_view code,
                 absl::string_view message, Reply& reply) {
  scratch.clear();
  AppendAzureError(scratch, code, message);
  reply.head_size = out.size();
  AppendBody(out, kJson, scratch);
}

}  // namespace

void ApiHandler::Handle(const RequestView& request, std::string& out, std::string& scratch,
                        Reply& reply) {
  reply = Reply{};
  reply.keep_alive = request.keep_alive;
  const absl::Time arrival = state_.clock()();
  const Route route = MatchRoute(request.method, request.target);
  switch (route.kind) {
    case Route::Kind::kControl:
      out.clear();
      HandleControl(state_, route.control, request.body, out);
      if (!request.keep_alive) {
        reply.keep_alive = false;
      }
      return;
    case Route::Kind::kNotFound:
      StartHead(out, 404, state_.config(), request, nullptr);
      FinishError(out, scratch, "404", "Resource not found", reply);
      state_.stats().Record(arrival, "", 404, false, "");
      return;
    case Route::Kind::kApi:
      HandleApi(route, request, out, scratch, reply, arrival);
      return;
    case Route::Kind::kToken:
      HandleToken(route, request, out, reply);
      return;
  }
}

void ApiHandler::HandleToken(const Route& route, const RequestView& request, std::string& out,
                             Reply& reply) {
  TokenRequest token_request;
  token_request.endpoint = route.token;
  token_request.tenant = route.tenant;
  token_request.query = route.query;
  token_request.metadata_header = request.metadata;
  token_request.identity_header = request.identity_header;
  token_request.content_type = request.content_type;
  token_request.body = request.body;
  const TokenAnswer answer = state_.tokens().Handle(token_request);
  if (answer.issued) {
    state_.stats().CountTokenIssued(TokenGrantName(answer.grant));
  } else {
    state_.stats().CountTokenRefused();
  }
  out.clear();
  AppendStatusLine(out, answer.status);
  // Token answers must not be cached by anything in between.
  out += "Cache-Control: no-store, no-cache\r\nPragma: no-cache\r\n";
  if (!request.keep_alive) {
    out += "Connection: close\r\n";
  }
  AppendBody(out, kJson, answer.body);
  // Lets tests hold a token fetch in flight (to see that concurrent requests share it).
  reply.first_byte_delay = state_.tokens().config().answer_delay;
}

void ApiHandler::HandleApi(const Route& route, const RequestView& request, std::string& out,
                           std::string& scratch, Reply& reply, absl::Time arrival) {
  const MockConfig& config = state_.config();
  auto fail = [&](int status, absl::string_view deployment, absl::string_view code,
                  absl::string_view message, const LimitSnapshot* limits) {
    StartHead(out, status, config, request, limits);
    FinishError(out, scratch, code, message, reply);
    state_.stats().Record(arrival, deployment, status, false, "");
  };

  const AuthVerdict auth = Authorize(config, state_.tokens(), request);
  if (auth == AuthVerdict::kBadKey) {
    fail(401, route.deployment, "401", kUnauthorized, nullptr);
    return;
  }
  if (auth != AuthVerdict::kOk) {
    state_.stats().CountBearerRejected(auth == AuthVerdict::kExpiredToken);
    fail(401, route.deployment, "401", kBadToken, nullptr);
    return;
  }
  // The classic surface requires api-version; without it the resource "does not exist".
  if (!route.v1 && !route.has_api_version) {
    fail(404, route.deployment, "404", "Resource not found", nullptr);
    return;
  }
  Deployment* deployment = route.v1 ? nullptr : state_.Find(route.deployment);
  if (!route.v1 && deployment == nullptr) {
    fail(404, route.deployment, "DeploymentNotFound", kDeploymentNotFound, nullptr);
    return;
  }
  absl::StatusOr<ApiRequest> parsed = ParseApiRequest(route.op, request.body);
  if (!parsed.ok()) {
    std::optional<LimitSnapshot> limits;
    if (deployment != nullptr) {
      limits = deployment->limiter->Snapshot();
    }
    fail(400, route.deployment, "BadRequest", parsed.status().message(),
         limits.has_value() ? &*limits : nullptr);
    return;
  }
  if (route.v1) {
    if (parsed->model.empty()) {
      fail(400, "", "BadRequest", "'model' is a required property", nullptr);
      return;
    }
    deployment = state_.Find(parsed->model);
    if (deployment == nullptr) {
      fail(404, parsed->model, "DeploymentNotFound", kDeploymentNotFound, nullptr);
      return;
    }
  }
  const absl::string_view name = deployment->spec.name;
  const bool stream = parsed->stream;

  // Faults come before the limiter: a faulted request is not charged.
  const std::optional<FaultSpec> fault = state_.faults().Take(name);
  absl::string_view fault_name;
  if (fault.has_value()) {
    fault_name = FaultModeName(fault->mode);
    switch (fault->mode) {
      case FaultMode::kStatus: {
        const LimitSnapshot limits = deployment->limiter->Snapshot();
        StartHead(out, fault->status, config, request, &limits);
        std::string message = fault->message;
        if (fault->status == 429 || fault->retry_after_given) {
          AppendRetryAfter(out, fault->retry_after_ms);
        }
        if (message.empty() && fault->status == 429) {
          message = RateLimitMessage(route.op, route.api_version, LimitCause::kTokens,
                                     RetryAfterSeconds(fault->retry_after_ms));
        } else if (message.empty()) {
          message = std::string(DefaultMessage(fault->status));
        }
        const std::string code = fault->code.empty() ? absl::StrCat(fault->status) : fault->code;
        FinishError(out, scratch, code, message, reply);
        state_.stats().Record(arrival, name, fault->status, stream, fault_name);
        return;
      }
      case FaultMode::kReset:
        reply.kind = Reply::Kind::kReset;
        reply.keep_alive = false;
        state_.stats().Record(arrival, name, 0, stream, fault_name);
        return;
      case FaultMode::kHang:
        reply.kind = Reply::Kind::kHang;
        reply.keep_alive = false;
        state_.stats().Record(arrival, name, 0, stream, fault_name);
        return;
      case FaultMode::kSlowDrip:
        reply.drip = absl::Milliseconds(fault->drip_ms);
        break;
      case FaultMode::kCut:
        reply.cut_after = fault->cut_after_chunks;
        reply.keep_alive = false;
        break;
      case FaultMode::kInterim:
        reply.interim_status = fault->status;
        break;
    }
  }

  const TokenPlan plan = PlanTokens(route.op, *parsed, config.completion_tokens);
  const Admission admission = deployment->limiter->Acquire(plan.charge);
  if (!admission.admitted) {
    const int64_t retry_ms = std::max<int64_t>(1, CeilMillis(admission.retry_after));
    StartHead(out, 429, config, request, &admission.snapshot);
    AppendRetryAfter(out, retry_ms);
    FinishError(
        out, scratch, "429",
        RateLimitMessage(route.op, route.api_version, admission.cause, RetryAfterSeconds(retry_ms)),
        reply);
    // A 429 is an answer: cut/drip faults do not apply to it.
    reply.drip = absl::ZeroDuration();
    reply.cut_after = -1;
    reply.keep_alive = request.keep_alive;
    state_.stats().Record(arrival, name, 429, stream, "");
    return;
  }
  reply.limiter = deployment->limiter.get();
  reply.ticket = admission.ticket;
  reply.refund = plan.charge - plan.actual;
  reply.deployment = name;

  Usage usage;
  usage.prompt_tokens = parsed->prompt_tokens;
  usage.completion_tokens = plan.completion_tokens_per_choice * plan.choices;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  if (route.op != Operation::kEmbeddings) {
    usage.cached_tokens = state_.prompt_cache().CachedTokens(deployment->index, parsed->prompt_hash,
                                                             parsed->prompt_tokens);
  }
  reply.usage = usage;

  StartHead(out, 200, config, request, &admission.snapshot);
  state_.stats().Record(arrival, name, 200, stream, fault_name);
  state_.stats().BeginAnswer(name);
  if (route.op == Operation::kEmbeddings) {
    scratch.clear();
    const int64_t dimensions = parsed->dimensions > 0 ? parsed->dimensions : 8;
    AppendEmbeddings(scratch, deployment->spec.model, parsed->input_hashes, dimensions, usage);
    reply.head_size = out.size();
    AppendBody(out, kJson, scratch);
    reply.first_byte_delay = config.ttft;
    return;
  }

  CompletionFacts facts;
  facts.op = route.op;
  facts.model = deployment->spec.model;
  facts.choices = plan.choices;
  facts.tokens_per_choice = plan.completion_tokens_per_choice;
  facts.truncated = plan.truncated;
  facts.usage = usage;
  StampCompletion(facts, absl::ToUnixSeconds(arrival));
  reply.first_byte_delay = config.ttft;
  if (stream) {
    reply.kind = Reply::Kind::kStream;
    reply.per_token = config.per_token;
    out +=
        "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Transfer-Encoding: chunked\r\n\r\n";
    reply.head_size = out.size();
    reply.stream.emplace(facts, parsed->include_usage);
    return;
  }
  scratch.clear();
  if (route.op == Operation::kChatCompletions) {
    AppendChatCompletion(scratch, facts);
  } else {
    AppendTextCompletion(scratch, facts);
  }
  reply.head_size = out.size();
  AppendBody(out, kJson, scratch);
  // The whole answer is ready when its last token is.
  if (plan.completion_tokens_per_choice > 1) {
    reply.first_byte_delay += config.per_token * (plan.completion_tokens_per_choice - 1);
  }
}

void ApiHandler::RejectMalformed(int status, absl::string_view message, std::string& out,
                                 std::string& scratch) {
  RequestView request;
  request.keep_alive = false;
  Reply reply;
  StartHead(out, status, state_.config(), request, nullptr);
  FinishError(out, scratch, status == 413 ? "RequestEntityTooLarge" : "BadRequest", message, reply);
  state_.stats().Record(state_.clock()(), "", status, false, "");
}

void ApiHandler::Settle(const Reply& reply, bool delivered) {
  if (reply.limiter != nullptr) {
    reply.limiter->Refund(reply.ticket, reply.refund);
    state_.stats().EndAnswer(reply.deployment);
  }
  if (!reply.usage.has_value()) {
    return;
  }
  const bool reported = reply.stream.has_value() ? reply.stream->usage_sent() : delivered;
  if (reported) {
    state_.stats().AddUsage(reply.deployment, *reply.usage);
  }
}

}  // namespace spillway::mock
