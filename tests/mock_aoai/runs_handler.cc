// See runs_handler.h. A run and its one step are kept beside the thread (ThreadsStore::runs), as
// the objects the endpoints answer with; the reply joins the thread's messages.
#include "tests/mock_aoai/runs_handler.h"

#include <boost/json/serialize.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/assistants_store.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/list_query.h"
#include "tests/mock_aoai/threads_handler.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

constexpr char kEventStreamHead[] =
    "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";

std::optional<std::string> StringField(const json::object& object, absl::string_view key) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || !value->is_string()) {
    return std::nullopt;
  }
  return std::string(value->get_string());
}

}  // namespace

void RunsHandler::Create(const Route& route, const AssistantsCall& call, ApiAnswer& answer) {
  const bool with_thread = call.action == AssistantsAction::kCreateThreadAndRun;
  RunInput input;
  if (std::optional<OpenAiError> error =
          ParseRunCreate(answer.request().body, with_thread, input)) {
    return FailOpenAi(answer, *error);
  }
  int64_t history_tokens = 0;
  if (!with_thread) {
    const std::optional<ConversationHistory> history = state_.threads().messages().History(call.id);
    if (!history.has_value()) return FailOpenAi(answer, NoObjectFound("thread", call.id));
    history_tokens = history->tokens;
  }
  // An assistant of another resource is unknown here: the run belongs where the assistant is.
  const std::optional<json::object> assistant = state_.assistants().Get(input.assistant_id);
  if (!assistant.has_value()) {
    return FailOpenAi(answer, NoObjectFound("assistant", input.assistant_id));
  }
  const std::string model = input.model.value_or(StringField(*assistant, "model").value_or(""));
  Deployment* deployment = state_.Find(model);
  if (deployment == nullptr) return FailOpenAi(answer, ModelNotFound(model));

  // Faults come before the limiter: a faulted run is not charged.
  const absl::string_view operation = AssistantsOperation(call.action);
  absl::string_view fault;
  if (answer.TakeFault(*deployment, operation, route.api_version, input.stream, fault)) return;
  const MockConfig& config = state_.config();
  RunSpec spec;
  ApiRequest plan_request;
  plan_request.prompt_tokens = PromptTokens(input, *assistant, history_tokens, spec.instructions);
  plan_request.max_tokens = input.max_completion_tokens;
  const TokenPlan plan =
      PlanTokens(Operation::kChatCompletions, plan_request, config.completion_tokens);
  LimitSnapshot limits;
  if (!answer.Admit(*deployment, plan.charge, plan.charge - plan.actual, operation,
                    route.api_version, input.stream, limits)) {
    return;
  }

  spec.model = deployment->spec.name;
  spec.prompt_tokens = plan_request.prompt_tokens;
  spec.completion_tokens = plan.completion_tokens_per_choice;
  spec.truncated = plan.truncated;
  const std::string thread_id = with_thread ? NewObjectId("thread_") : std::string(call.id);
  Respond(answer,
          Perform(input, *assistant, spec, thread_id, absl::ToUnixSeconds(answer.arrival())), spec,
          limits, input.stream, fault);
}

void RunsHandler::Respond(ApiAnswer& answer, std::shared_ptr<const RunFacts> facts,
                          const RunSpec& spec, const LimitSnapshot& limits, bool stream,
                          absl::string_view fault) {
  const MockConfig& config = state_.config();
  Reply& reply = answer.reply();
  const absl::string_view name = reply.deployment;  // set when the run was admitted
  Usage usage;
  usage.prompt_tokens = spec.prompt_tokens;
  usage.completion_tokens = spec.completion_tokens;
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  // Metered on the deployment once the answer is out (a stream: once thread.run.completed is).
  reply.usage = usage;
  answer.StartHead(200, &limits);
  answer.Record(name, 200, stream, fault);
  state_.stats().BeginAnswer(name);
  reply.first_byte_delay = config.ttft;
  if (stream) {
    reply.kind = Reply::Kind::kStream;
    reply.per_token = config.per_token;
    answer.out() += kEventStreamHead;
    reply.head_size = answer.out().size();
    reply.assistants_stream.emplace(std::move(facts));
    return;
  }
  std::string& body = answer.scratch();
  body = json::serialize(facts->run);
  answer.FinishBody(kJson, body);
  // The whole answer is ready when its last token is.
  reply.first_byte_delay += config.per_token * std::max<int64_t>(0, spec.completion_tokens - 1);
}

int64_t RunsHandler::PromptTokens(const RunInput& input, const json::object& assistant,
                                  int64_t history_tokens,
                                  std::optional<std::string>& instructions) {
  int64_t tokens = history_tokens;
  for (const MessageInput& message : input.additional_messages) {
    tokens += EstimateTextTokens(message.text);
  }
  if (input.thread.has_value()) {
    for (const MessageInput& message : input.thread->messages) {
      tokens += EstimateTextTokens(message.text);
    }
  }
  instructions =
      input.instructions.has_value() ? input.instructions : StringField(assistant, "instructions");
  if (!input.additional_instructions.empty()) {
    instructions = absl::StrCat(instructions.value_or(""), instructions.has_value() ? "\n" : "",
                                input.additional_instructions);
  }
  if (instructions.has_value() && !instructions->empty()) {
    tokens += EstimateTextTokens(*instructions);
  }
  return std::max<int64_t>(1, tokens);
}

std::shared_ptr<const RunFacts> RunsHandler::Perform(RunInput& input, const json::object& assistant,
                                                     RunSpec& spec, absl::string_view thread_id,
                                                     int64_t created_at) {
  ThreadsStore& threads = state_.threads();
  std::optional<json::object> thread_object;
  if (input.thread.has_value()) {
    ThreadInfo thread;
    thread.info.id = std::string(thread_id);
    thread.info.created_at = created_at;
    thread.info.metadata = std::move(input.thread->metadata);
    thread.tool_resources = std::move(input.thread->tool_resources);
    thread_object = ThreadObject(thread);
    threads.Create(std::move(thread), MessageItems(input.thread->messages, thread_id, created_at));
  }
  threads.messages().Append(thread_id,
                            MessageItems(input.additional_messages, thread_id, created_at));
  const std::optional<json::array> messages = threads.messages().Items(thread_id);

  spec.run_id = NewObjectId("run_");
  spec.step_id = NewObjectId("step_");
  spec.message_id = NewObjectId("msg_");
  spec.thread_id = std::string(thread_id);
  spec.assistant_id = input.assistant_id;
  spec.tools = input.tools.has_value() ? *input.tools : assistant.at("tools").as_array();
  spec.metadata = std::move(input.metadata);
  spec.max_prompt_tokens = input.max_prompt_tokens;
  spec.max_completion_tokens = input.max_completion_tokens;
  spec.temperature =
      input.temperature.has_value() ? json::value(*input.temperature) : assistant.at("temperature");
  spec.top_p = input.top_p.has_value() ? json::value(*input.top_p) : assistant.at("top_p");
  spec.created_at = created_at;
  spec.message_number = static_cast<int64_t>(messages.has_value() ? messages->size() : 0) + 1;

  auto facts = std::make_shared<RunFacts>(MakeRunFacts(spec));
  facts->thread = std::move(thread_object);
  // A thread deleted meanwhile just does not get them.
  threads.runs().Append(
      thread_id, {MakeConversationItem(facts->run, ""), MakeConversationItem(facts->step, "")});
  threads.messages().Append(thread_id, {MakeOutputItem(facts->message, spec.completion_tokens)});
  return facts;
}

void RunsHandler::Handle(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
                         absl::string_view fault) {
  switch (call.action) {
    case AssistantsAction::kListRuns:
    case AssistantsAction::kListSteps:
      return List(route, call, answer, fault);
    case AssistantsAction::kGetRun:
      if (const std::optional<json::object> run = Find(answer, call.id, call.child, "thread.run")) {
        SucceedJson(answer, json::serialize(*run), fault);
      }
      return;
    case AssistantsAction::kModifyRun:
      return Modify(call, answer, fault);
    case AssistantsAction::kCancelRun:
      // Runs end as they start here: there is never one left to cancel.
      if (const std::optional<json::object> run = Find(answer, call.id, call.child, "thread.run")) {
        OpenAiError error;
        error.message = absl::StrCat("Cannot cancel run with status '",
                                     std::string(run->at("status").as_string()), "'.");
        FailOpenAi(answer, error);
      }
      return;
    case AssistantsAction::kGetStep: {
      if (!Find(answer, call.id, call.child, "thread.run").has_value()) return;
      const std::optional<json::object> step = Find(answer, call.id, call.step, "thread.run.step");
      if (!step.has_value()) return;
      if (step->at("run_id") !=
          json::value(json::string_view(call.child.data(), call.child.size()))) {
        return FailOpenAi(answer, NoObjectFound("run step", call.step));
      }
      return SucceedJson(answer, json::serialize(*step), fault);
    }
    default:
      return;
  }
}

std::optional<json::object> RunsHandler::Find(ApiAnswer& answer, absl::string_view thread_id,
                                              absl::string_view id, absl::string_view object) {
  if (!state_.threads().messages().Get(thread_id).has_value()) {
    FailOpenAi(answer, NoObjectFound("thread", thread_id));
    return std::nullopt;
  }
  json::object found;
  if (state_.threads().runs().GetItem(thread_id, id, &found) !=
          ConversationsStore::Lookup::kFound ||
      found.at("object") != json::value(json::string_view(object.data(), object.size()))) {
    FailOpenAi(answer, NoObjectFound(object == "thread.run" ? "run" : "run step", id));
    return std::nullopt;
  }
  return found;
}

void RunsHandler::List(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
                       absl::string_view fault) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route.query, list)) {
    return FailOpenAi(answer, *error);
  }
  const bool steps = call.action == AssistantsAction::kListSteps;
  if (steps ? !Find(answer, call.id, call.child, "thread.run").has_value()
            : !state_.threads().messages().Get(call.id).has_value()) {
    if (!steps) FailOpenAi(answer, NoObjectFound("thread", call.id));
    return;
  }
  json::array listed;
  const json::string_view run_id(call.child.data(), call.child.size());
  for (json::value& item : state_.threads().runs().Items(call.id).value_or(json::array())) {
    const json::object& object = item.as_object();
    if (steps ? object.at("object") == "thread.run.step" && object.at("run_id") == run_id
              : object.at("object") == "thread.run") {
      listed.push_back(std::move(item));
    }
  }
  SucceedJson(answer, ObjectPage(listed, list, QueryValue(route.query, "before").value_or("")),
              fault);
}

void RunsHandler::Modify(const AssistantsCall& call, ApiAnswer& answer, absl::string_view fault) {
  ModifyInput modify;
  if (std::optional<OpenAiError> error = ParseModify(answer.request().body, modify)) {
    return FailOpenAi(answer, *error);
  }
  std::optional<json::object> run = Find(answer, call.id, call.child, "thread.run");
  if (!run.has_value()) return;
  if (modify.metadata.has_value()) {
    (*run)["metadata"] = *std::move(modify.metadata);
    if (state_.threads().runs().ReplaceItem(call.id, call.child, MakeConversationItem(*run, "")) !=
        ConversationsStore::Lookup::kFound) {
      return FailOpenAi(answer, NoObjectFound("run", call.child));  // evicted meanwhile
    }
  }
  SucceedJson(answer, json::serialize(*run), fault);
}

}  // namespace spillway::mock
