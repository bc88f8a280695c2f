// See api_handler.h. Wire shapes follow Azure OpenAI's REST reference; the steps every answer
// shares (auth, heads, faults, admission) are api_answer.h's, the Responses API is
// responses_handler.h's, the Conversations API conversations_handler.h's.
#include "tests/mock_aoai/api_handler.h"

#include "tests/mock_aoai/api_answer.h"
#include "tests/mock_aoai/control.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/request.h"

namespace spillway::mock {

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
    case Route::Kind::kNotFound: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      answer.Fail(404, "", "404", "Resource not found");
      return;
    }
    case Route::Kind::kApi:
      HandleApi(route, request, out, scratch, reply, arrival);
      return;
    case Route::Kind::kResponses: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      responses_.Handle(route, answer);
      return;
    }
    case Route::Kind::kConversations: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      conversations_.Handle(route, answer);
      return;
    }
    case Route::Kind::kRealtime: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      realtime_.Handle(route, answer);
      return;
    }
    case Route::Kind::kAssistants: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      assistants_.Handle(route, answer);
      return;
    }
    case Route::Kind::kToken:
      HandleToken(route, request, out, reply);
      return;
    case Route::Kind::kFiles:
    case Route::Kind::kBatches:
    case Route::Kind::kVectorStores:
    case Route::Kind::kMedia: {
      ApiAnswer answer(state_, request, out, scratch, reply, arrival);
      files_api_.Handle(route, answer);
      return;
    }
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
  ApiAnswer answer(state_, request, out, scratch, reply, arrival);
  if (!answer.Authorize(route.deployment)) {
    return;
  }
  // The classic surface requires api-version; without it the resource "does not exist".
  if (!route.v1 && !route.has_api_version) {
    answer.Fail(404, route.deployment, "404", "Resource not found");
    return;
  }
  // /openai/v1 is unversioned: a dated api-version is refused.
  if (route.v1 && IsDatedApiVersion(route.api_version)) {
    answer.Fail(400, "", "BadRequest", "API version not supported");
    return;
  }
  Deployment* deployment = route.v1 ? nullptr : state_.Find(route.deployment);
  if (!route.v1 && deployment == nullptr) {
    answer.Fail(404, route.deployment, "DeploymentNotFound", kDeploymentNotFound);
    return;
  }
  absl::StatusOr<ApiRequest> parsed = ParseApiRequest(route.op, request.body);
  if (!parsed.ok()) {
    std::optional<LimitSnapshot> limits;
    if (deployment != nullptr) {
      limits = deployment->limiter->Snapshot();
    }
    answer.Fail(400, route.deployment, "BadRequest", parsed.status().message(),
                limits.has_value() ? &*limits : nullptr);
    return;
  }
  if (route.v1) {
    if (parsed->model.empty()) {
      answer.Fail(400, "", "BadRequest", "'model' is a required property");
      return;
    }
    deployment = state_.Find(parsed->model);
    if (deployment == nullptr) {
      answer.Fail(404, parsed->model, "DeploymentNotFound", kDeploymentNotFound);
      return;
    }
  }
  const absl::string_view name = deployment->spec.name;
  const bool stream = parsed->stream;
  const absl::string_view operation = OperationName(route.op);

  // Faults come before the limiter: a faulted request is not charged.
  absl::string_view fault_name;
  if (answer.TakeFault(*deployment, operation, route.api_version, stream, fault_name)) {
    return;
  }
  const TokenPlan plan = PlanTokens(route.op, *parsed, config.completion_tokens);
  LimitSnapshot limits;
  if (!answer.Admit(*deployment, plan.charge, plan.charge - plan.actual, operation,
                    route.api_version, stream, limits)) {
    return;
  }

  Usage usage;
  usage.prompt_tokens = parsed->prompt_tokens;
  usage.completion_tokens = plan.completion_tokens_per_choice * plan.choices;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  if (route.op != Operation::kEmbeddings) {
    usage.cached_tokens = state_.prompt_cache().CachedTokens(deployment->index, parsed->prompt_hash,
                                                             parsed->prompt_tokens);
  }
  reply.usage = usage;

  answer.StartHead(200, &limits);
  answer.Record(name, 200, stream, fault_name);
  state_.stats().BeginAnswer(name);
  if (route.op == Operation::kEmbeddings) {
    scratch.clear();
    const int64_t dimensions = parsed->dimensions > 0 ? parsed->dimensions : 8;
    AppendEmbeddings(scratch, deployment->spec.model, parsed->input_hashes, dimensions, usage);
    answer.FinishBody(kJson, scratch);
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
  answer.FinishBody(kJson, scratch);
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
  ApiAnswer answer(state_, request, out, scratch, reply, state_.clock()());
  answer.Fail(status, "", status == 413 ? "RequestEntityTooLarge" : "BadRequest", message);
}

void ApiHandler::Settle(const Reply& reply, bool delivered) {
  if (reply.limiter != nullptr) {
    reply.limiter->Refund(reply.ticket, reply.refund);
    state_.stats().EndAnswer(reply.deployment);
  }
  if (!reply.usage.has_value()) {
    return;
  }
  const EventStream* events = reply.events();
  const bool reported = events != nullptr ? events->usage_sent() : delivered;
  if (reported) {
    state_.stats().AddUsage(reply.deployment, *reply.usage);
  }
}

}  // namespace spillway::mock
