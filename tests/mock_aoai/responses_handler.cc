// See responses_handler.h. Errors specific to the Responses API are OpenAI-shaped (as Azure
// passes them through: message, type, param, code); those every API shares (401, unknown
// deployment, 429, faults) keep Azure's {"error":{"code","message"}}.
#include "tests/mock_aoai/responses_handler.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/conversations_request.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/list_query.h"
#include "tests/mock_aoai/responses_wire.h"

namespace spillway::mock {
namespace {

constexpr char kEventStreamHead[] =
    "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
// The bytes a stored response is charged beyond its request body (ids, strings, the record).
constexpr size_t kRecordOverhead = 1024;

std::string NewId(absl::string_view prefix) {
  std::string id(prefix);
  AppendRandomHex(id, 32);
  return id;
}

OpenAiError NotFound(absl::string_view id) {
  OpenAiError error;
  error.status = 404;
  error.message = absl::StrCat("Response with id '", id, "' not found.");
  return error;
}

// Time from the request to the last output token: first token after ttft, each later one
// per_token after the one before (as completions are paced).
absl::Duration GenerationTime(const MockConfig& config, int64_t tokens) {
  return config.ttft + config.per_token * std::max<int64_t>(0, tokens - 1);
}

}  // namespace

void ResponsesHandler::Handle(const Route& route, ApiAnswer& answer) {
  if (!answer.Authorize("")) {
    return;
  }
  // /openai/v1 is unversioned; the preview surface needs its api-version like the classic one.
  if (route.v1 && IsDatedApiVersion(route.api_version)) {
    answer.Fail(400, "", "BadRequest", "API version not supported");
    return;
  }
  if (!route.v1 && !route.has_api_version) {
    answer.Fail(404, "", "404", "Resource not found");
    return;
  }
  const absl::string_view method = answer.request().method;
  absl::string_view rest = route.responses_path;
  if (rest.empty()) {
    if (method == "POST") {
      Create(route, answer);
    } else {
      answer.Fail(404, "", "404", "Resource not found");
    }
    return;
  }
  rest.remove_prefix(1);  // the '/'
  const size_t slash = rest.find('/');
  const absl::string_view id = rest.substr(0, slash);
  const absl::string_view action =
      slash == absl::string_view::npos ? absl::string_view() : rest.substr(slash + 1);
  enum class Action { kRetrieve, kDelete, kCancel, kInputItems, kNone };
  Action what = Action::kNone;
  if (action.empty() && method == "GET") {
    what = Action::kRetrieve;
  } else if (action.empty() && method == "DELETE") {
    what = Action::kDelete;
  } else if (action == "cancel" && method == "POST") {
    what = Action::kCancel;
  } else if (action == "input_items" && method == "GET") {
    what = Action::kInputItems;
  }
  if (id.empty() || what == Action::kNone) {
    answer.Fail(404, "", "404", "Resource not found");
    return;
  }

  answer.trace().response_id = id;
  const std::optional<ResponseSnapshot> response = state_.responses().Get(id);
  Deployment* deployment =
      response.has_value() ? state_.Find(response->facts->deployment) : nullptr;
  if (deployment == nullptr) {
    Fail(answer, NotFound(id), "", nullptr);
    return;
  }
  // A stored response's own deployment takes the faults aimed at it.
  static constexpr absl::string_view kOperations[] = {
      "Responses_Get", "Responses_Delete", "Responses_Cancel", "Responses_ListInputItems"};
  const bool stream = what == Action::kRetrieve && QueryValue(route.query, "stream") == "true";
  absl::string_view fault;
  if (answer.TakeFault(*deployment, kOperations[static_cast<int>(what)], route.api_version, stream,
                       fault)) {
    return;
  }
  switch (what) {
    case Action::kRetrieve:
      Retrieve(route, *response, *deployment, answer, fault);
      return;
    case Action::kDelete:
      Delete(*response, *deployment, answer, fault);
      return;
    case Action::kCancel:
      Cancel(*response, *deployment, answer, fault);
      return;
    case Action::kInputItems:
      InputItems(route, *response, *deployment, answer, fault);
      return;
    case Action::kNone:
      return;
  }
}

void ResponsesHandler::Create(const Route& route, ApiAnswer& answer) {
  const MockConfig& config = state_.config();
  ResponsesRequest request;
  if (std::optional<OpenAiError> error = ParseResponsesRequest(answer.request().body, request)) {
    Fail(answer, *error, "", nullptr);
    return;
  }
  if (request.model.empty()) {
    OpenAiError error;
    error.message = "Missing required parameter: 'model'.";
    error.param = "model";
    error.code = "missing_required_parameter";
    Fail(answer, error, "", nullptr);
    return;
  }
  Deployment* deployment = state_.Find(request.model);
  if (deployment == nullptr) {
    answer.Fail(404, request.model, "DeploymentNotFound", kDeploymentNotFound);
    return;
  }
  const absl::string_view name = deployment->spec.name;
  if (request.previous_response_id.has_value()) {
    answer.trace().previous_response_id = *request.previous_response_id;
  }

  // The conversation so far: the previous turn's whole context and its output are this turn's
  // input too, so a chain of responses grows (and, past 1,024 tokens, hits the prompt cache).
  std::optional<ResponseSnapshot> previous;
  if (request.previous_response_id.has_value()) {
    previous = state_.responses().Get(*request.previous_response_id);
    if (!previous.has_value()) {
      OpenAiError error;
      error.message = absl::StrCat("Previous response with id '", *request.previous_response_id,
                                   "' not found.");
      error.param = "previous_response_id";
      error.code = "previous_response_not_found";
      const LimitSnapshot limits = deployment->limiter->Snapshot();
      Fail(answer, error, name, &limits);
      return;
    }
  }

  // A conversation's items so far are this turn's input too, as a previous response's are.
  std::optional<ConversationHistory> history;
  if (request.conversation_id.has_value()) {
    answer.trace().conversation_id = *request.conversation_id;
    history = state_.conversations().History(*request.conversation_id);
    if (!history.has_value()) {
      const LimitSnapshot limits = deployment->limiter->Snapshot();
      Fail(answer, ConversationNotFound(*request.conversation_id), name, &limits);
      return;
    }
  }

  // Faults come before the limiter: a faulted request is not charged.
  absl::string_view fault;
  if (answer.TakeFault(*deployment, "Responses_Create", route.api_version, request.stream, fault)) {
    return;
  }
  ApiRequest plan_request;
  plan_request.prompt_tokens = request.input_tokens;
  uint64_t context_hash = request.input_hash;
  if (previous.has_value()) {
    const ResponseFacts& before = *previous->facts;
    const bool answered = previous->status != ResponseStatus::kCancelled;
    plan_request.prompt_tokens += before.input_tokens + (answered ? before.output_tokens : 0);
    context_hash =
        Fnv1a(before.context_hash, absl::StrCat(before.output_tokens, ":", request.input_hash));
  }
  if (history.has_value()) {
    plan_request.prompt_tokens += history->tokens;
    context_hash = Fnv1a(history->hash, absl::StrCat(":", request.input_hash));
  }
  plan_request.max_tokens = request.max_output_tokens;
  const TokenPlan plan =
      PlanTokens(Operation::kChatCompletions, plan_request, config.completion_tokens);
  LimitSnapshot limits;
  if (!answer.Admit(*deployment, plan.charge, plan.charge - plan.actual, "Responses_Create",
                    route.api_version, request.stream, limits)) {
    return;
  }

  auto facts = std::make_shared<ResponseFacts>();
  facts->id = NewId("resp_");
  facts->message_id = NewId("msg_");
  facts->deployment = std::string(name);
  facts->model = deployment->spec.model;
  facts->created_at = absl::ToUnixSeconds(answer.arrival());
  facts->instructions = std::move(request.instructions);
  facts->previous_response_id = request.previous_response_id;
  facts->conversation_id = request.conversation_id;
  facts->max_output_tokens = request.max_output_tokens;
  facts->store = request.store;
  facts->background = request.background;
  facts->input_tokens = plan_request.prompt_tokens;
  facts->output_tokens = plan.completion_tokens_per_choice;
  facts->truncated = plan.truncated;
  facts->context_hash = context_hash;
  facts->cached_tokens =
      state_.prompt_cache().CachedTokens(deployment->index, context_hash, facts->input_tokens);
  facts->input_items = std::move(request.input_items);
  if (facts->conversation_id.has_value()) {
    AppendTurn(*facts, request.input_texts);
  }

  // A background response is answered at once and generated meanwhile; a streamed one is done
  // when its last event is.
  const absl::Duration generation = GenerationTime(config, facts->output_tokens);
  const bool deferred = request.background && !request.stream;
  const absl::Time done_at =
      answer.arrival() + generation + (deferred ? config.background_delay : absl::ZeroDuration());
  const int64_t completed_at = absl::ToUnixSeconds(done_at);
  // Background responses are kept whatever `store` says: polling them is their point.
  if (request.store || request.background) {
    state_.responses().Put(facts, answer.request().body.size() + kRecordOverhead, answer.arrival(),
                           done_at);
  }

  Usage usage;
  usage.prompt_tokens = facts->input_tokens;
  usage.completion_tokens = facts->output_tokens;
  usage.cached_tokens = facts->cached_tokens;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  Reply& reply = answer.reply();
  // Counted in the stats once this answer is out (a stream: once response.completed is), also
  // for a background response whose usage only a later GET shows: the work is done anyway.
  reply.usage = usage;

  answer.trace().response_id = facts->id;
  answer.StartHead(200, &limits);
  answer.Record(name, 200, request.stream, fault);
  state_.stats().BeginAnswer(name);
  if (request.stream) {
    reply.kind = Reply::Kind::kStream;
    reply.first_byte_delay = config.ttft;
    reply.per_token = config.per_token;
    answer.out() += kEventStreamHead;
    reply.head_size = answer.out().size();
    reply.responses_stream.emplace(facts, facts->final_status(), completed_at);
    return;
  }
  const ResponseStatus status = deferred ? ResponseStatus::kQueued : facts->final_status();
  std::string& body = answer.scratch();
  body = boost::json::serialize(ResponseObject(*facts, status, completed_at));
  answer.FinishBody(kJson, body);
  // The whole answer is ready when its last token is; a background one is answered at once.
  reply.first_byte_delay = deferred ? absl::ZeroDuration() : generation;
}

void ResponsesHandler::AppendTurn(const ResponseFacts& facts,
                                  const std::vector<std::string>& input_texts) {
  std::vector<ConversationItem> turn;
  turn.reserve(facts.input_items.size() + 1);
  for (size_t i = 0; i < facts.input_items.size() && i < input_texts.size(); ++i) {
    if (const boost::json::object* item = facts.input_items[i].if_object()) {
      turn.push_back(MakeConversationItem(*item, input_texts[i]));
    }
  }
  turn.push_back(MakeOutputItem(OutputMessageItem(facts), facts.output_tokens));
  // A conversation deleted since the lookup just does not get them.
  state_.conversations().Append(*facts.conversation_id, std::move(turn));
}

void ResponsesHandler::Retrieve(const Route& route, const ResponseSnapshot& response,
                                Deployment& deployment, ApiAnswer& answer,
                                absl::string_view fault) {
  const ResponseFacts& facts = *response.facts;
  if (QueryValue(route.query, "stream") != "true") {
    Succeed(answer, deployment,
            boost::json::serialize(ResponseObject(facts, response.status, response.completed_at)),
            fault);
    return;
  }
  int64_t starting_after = -1;
  if (const std::optional<absl::string_view> given = QueryValue(route.query, "starting_after");
      given.has_value() && (!absl::SimpleAtoi(*given, &starting_after) || starting_after < 0)) {
    Fail(answer, InvalidQuery("starting_after", *given, "a non-negative integer"),
         deployment.spec.name, nullptr);
    return;
  }
  // Events not produced yet come when generation ends: the replay waits for it.
  const ResponseStatus final_status =
      response.status == ResponseStatus::kCancelled ? response.status : facts.final_status();
  const LimitSnapshot limits = deployment.limiter->Snapshot();
  Reply& reply = answer.reply();
  answer.StartHead(200, &limits);
  answer.Record(deployment.spec.name, 200, true, fault);
  reply.kind = Reply::Kind::kStream;
  reply.first_byte_delay = std::max(absl::ZeroDuration(), response.done_at - answer.arrival());
  answer.out() += kEventStreamHead;
  reply.head_size = answer.out().size();
  reply.responses_stream.emplace(response.facts, final_status, response.completed_at,
                                 starting_after);
}

void ResponsesHandler::Delete(const ResponseSnapshot& response, Deployment& deployment,
                              ApiAnswer& answer, absl::string_view fault) {
  const ResponseFacts& facts = *response.facts;
  if (!state_.responses().Delete(facts.id)) {
    Fail(answer, NotFound(facts.id), "", nullptr);  // deleted meanwhile
    return;
  }
  Succeed(answer, deployment, DeletedObject(facts.id), fault);
}

void ResponsesHandler::Cancel(const ResponseSnapshot& response, Deployment& deployment,
                              ApiAnswer& answer, absl::string_view fault) {
  const ResponseFacts& facts = *response.facts;
  ResponseSnapshot after;
  switch (state_.responses().Cancel(facts.id, &after)) {
    case ResponsesStore::CancelOutcome::kNotFound:
      Fail(answer, NotFound(facts.id), "", nullptr);
      return;
    case ResponsesStore::CancelOutcome::kNotBackground: {
      OpenAiError error;
      error.message = "Only responses created with background=true can be cancelled";
      Fail(answer, error, deployment.spec.name, nullptr);
      return;
    }
    case ResponsesStore::CancelOutcome::kCancelled:
    case ResponsesStore::CancelOutcome::kAlreadyDone:
      // Cancelling what already ended changes nothing: the response as it is.
      Succeed(answer, deployment,
              boost::json::serialize(ResponseObject(facts, after.status, after.completed_at)),
              fault);
      return;
  }
}

void ResponsesHandler::InputItems(const Route& route, const ResponseSnapshot& response,
                                  Deployment& deployment, ApiAnswer& answer,
                                  absl::string_view fault) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route.query, list)) {
    Fail(answer, *error, deployment.spec.name, nullptr);
    return;
  }
  Succeed(answer, deployment,
          InputItemsPage(response.facts->input_items, list.ascending, list.limit, list.after),
          fault);
}

void ResponsesHandler::Fail(ApiAnswer& answer, const OpenAiError& error,
                            absl::string_view deployment, const LimitSnapshot* limits) {
  std::string& body = answer.scratch();
  body.clear();
  AppendOpenAiError(body, error);
  answer.Json(error.status, limits, body);
  answer.Record(deployment, error.status, false);
}

void ResponsesHandler::Succeed(ApiAnswer& answer, Deployment& deployment, absl::string_view body,
                               absl::string_view fault) {
  const LimitSnapshot limits = deployment.limiter->Snapshot();
  answer.Json(200, &limits, body);
  answer.Record(deployment.spec.name, 200, false, fault);
}

}  // namespace spillway::mock
