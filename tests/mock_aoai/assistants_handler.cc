// See assistants_handler.h. Assistants themselves: an assistant's model must name a deployment of
// this mock, as on Azure, where an assistant's model is a deployment name.
#include "tests/mock_aoai/assistants_handler.h"

#include <boost/json/serialize.hpp>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "tests/mock_aoai/assistants_request.h"
#include "tests/mock_aoai/assistants_wire.h"
#include "tests/mock_aoai/list_query.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

// The model a create or modify names, if any, when it is no deployment of this mock.
std::optional<OpenAiError> CheckModel(MockState& state, const json::object& fields) {
  const json::value* model = fields.if_contains("model");
  if (model == nullptr || state.Find(std::string(model->get_string())) != nullptr) {
    return std::nullopt;
  }
  return ModelNotFound(std::string(model->get_string()));
}

}  // namespace

void AssistantsHandler::Handle(const Route& route, ApiAnswer& answer) {
  if (!answer.Authorize("")) {
    return;
  }
  // /openai/v1 is unversioned; the dated surface needs its api-version like the classic one.
  if (route.v1 && IsDatedApiVersion(route.api_version)) {
    answer.Fail(400, "", "BadRequest", "API version not supported");
    return;
  }
  if (!route.v1 && !route.has_api_version) {
    answer.Fail(404, "", "404", "Resource not found");
    return;
  }
  const AssistantsCall call = MatchAssistantsCall(answer.request().method, route.assistants_path);
  using Action = AssistantsAction;
  if (call.action == Action::kNone) {
    answer.Fail(404, "", "404", "Resource not found");
    return;
  }
  // A run takes the faults of its deployment, known once its assistant is.
  if (call.action == Action::kCreateRun || call.action == Action::kCreateThreadAndRun) {
    runs_.Create(route, call, answer);
    return;
  }
  // Before any lookup: an outage answers whatever the id.
  absl::string_view fault;
  if (answer.TakeFault(AssistantsOperation(call.action), route.api_version, fault)) {
    return;
  }
  switch (call.action) {
    case Action::kCreateAssistant:
      return Create(answer, fault);
    case Action::kListAssistants:
      return List(route, answer, fault);
    case Action::kGetAssistant:
      return Retrieve(call.id, answer, fault);
    case Action::kModifyAssistant:
      return Modify(call.id, answer, fault);
    case Action::kDeleteAssistant:
      return Delete(call.id, answer, fault);
    case Action::kCreateThread:
    case Action::kGetThread:
    case Action::kModifyThread:
    case Action::kDeleteThread:
    case Action::kCreateMessage:
    case Action::kListMessages:
    case Action::kGetMessage:
    case Action::kModifyMessage:
    case Action::kDeleteMessage:
      return threads_.Handle(route, call, answer, fault);
    default:
      return runs_.Handle(route, call, answer, fault);
  }
}

void AssistantsHandler::Create(ApiAnswer& answer, absl::string_view fault) {
  json::object fields;
  if (std::optional<OpenAiError> error =
          ParseAssistantFields(answer.request().body, /*create=*/true, fields)) {
    FailOpenAi(answer, *error);
    return;
  }
  if (std::optional<OpenAiError> error = CheckModel(state_, fields)) {
    FailOpenAi(answer, *error);
    return;
  }
  json::object assistant =
      AssistantObject(NewObjectId("asst_"), absl::ToUnixSeconds(answer.arrival()), fields);
  const std::string body = json::serialize(assistant);
  state_.assistants().Put(std::move(assistant));
  SucceedJson(answer, body, fault);
}

void AssistantsHandler::List(const Route& route, ApiAnswer& answer, absl::string_view fault) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route.query, list)) {
    FailOpenAi(answer, *error);
    return;
  }
  SucceedJson(
      answer,
      ObjectPage(state_.assistants().All(), list, QueryValue(route.query, "before").value_or("")),
      fault);
}

void AssistantsHandler::Retrieve(absl::string_view id, ApiAnswer& answer, absl::string_view fault) {
  const std::optional<json::object> assistant = state_.assistants().Get(id);
  if (!assistant.has_value()) {
    FailOpenAi(answer, NoObjectFound("assistant", id));
    return;
  }
  SucceedJson(answer, json::serialize(*assistant), fault);
}

void AssistantsHandler::Modify(absl::string_view id, ApiAnswer& answer, absl::string_view fault) {
  json::object fields;
  if (std::optional<OpenAiError> error =
          ParseAssistantFields(answer.request().body, /*create=*/false, fields)) {
    FailOpenAi(answer, *error);
    return;
  }
  std::optional<json::object> assistant = state_.assistants().Get(id);
  if (!assistant.has_value()) {
    FailOpenAi(answer, NoObjectFound("assistant", id));
    return;
  }
  if (std::optional<OpenAiError> error = CheckModel(state_, fields)) {
    FailOpenAi(answer, *error);
    return;
  }
  ApplyFields(*assistant, fields);
  const std::string body = json::serialize(*assistant);
  if (!state_.assistants().Replace(*std::move(assistant))) {
    FailOpenAi(answer, NoObjectFound("assistant", id));  // deleted meanwhile
    return;
  }
  SucceedJson(answer, body, fault);
}

void AssistantsHandler::Delete(absl::string_view id, ApiAnswer& answer, absl::string_view fault) {
  if (!state_.assistants().Delete(id)) {
    FailOpenAi(answer, NoObjectFound("assistant", id));
    return;
  }
  SucceedJson(answer, DeletedAssistantsObject(id, "assistant.deleted"), fault);
}

}  // namespace spillway::mock
