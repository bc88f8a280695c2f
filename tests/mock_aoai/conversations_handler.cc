// See conversations_handler.h. Requests are recorded under the deployment "" (as a 401 is):
// the stats log tells them apart by path and conversation_id.
#include "tests/mock_aoai/conversations_handler.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tests/mock_aoai/conversations_request.h"
#include "tests/mock_aoai/conversations_store.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/list_query.h"
#include "tests/mock_aoai/responses_wire.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

// As the service's: "conv_" and 48 hex digits.
std::string NewConversationId() {
  std::string id = "conv_";
  AppendRandomHex(id, 48);
  return id;
}

std::string ConversationObject(const ConversationInfo& info) {
  json::object object;
  object["id"] = Js(info.id);
  object["object"] = "conversation";
  object["created_at"] = info.created_at;
  object["metadata"] = info.metadata;
  return json::serialize(object);
}

std::string DeletedConversation(absl::string_view id) {
  json::object object;
  object["id"] = Js(id);
  object["object"] = "conversation.deleted";
  object["deleted"] = true;
  return json::serialize(object);
}

std::vector<ConversationItem> ToConversationItems(const InputItems& items) {
  std::vector<ConversationItem> made;
  made.reserve(items.items.size());
  for (size_t i = 0; i < items.items.size(); ++i) {
    made.push_back(MakeConversationItem(items.items[i].as_object(), items.texts[i]));
  }
  return made;
}

enum class Action {
  kCreate,
  kRetrieve,
  kUpdate,
  kDelete,
  kListItems,
  kAddItems,
  kRetrieveItem,
  kDeleteItem,
  kNone
};

// The operation names a 429 fault's message uses, Azure style.
constexpr absl::string_view kOperations[] = {
    "Conversations_Create",  "Conversations_Get",        "Conversations_Update",
    "Conversations_Delete",  "ConversationItems_List",   "ConversationItems_Create",
    "ConversationItems_Get", "ConversationItems_Delete",
};

// Which action `method` on the path after ".../conversations" asks for, and the ids it names.
Action MatchAction(absl::string_view method, absl::string_view path, absl::string_view& id,
                   absl::string_view& item_id) {
  if (path.empty()) {
    return method == "POST" ? Action::kCreate : Action::kNone;
  }
  path.remove_prefix(1);  // the '/'
  const size_t slash = path.find('/');
  id = path.substr(0, slash);
  if (id.empty()) {
    return Action::kNone;
  }
  if (slash == absl::string_view::npos) {
    if (method == "GET") return Action::kRetrieve;
    if (method == "POST") return Action::kUpdate;
    if (method == "DELETE") return Action::kDelete;
    return Action::kNone;
  }
  absl::string_view rest = path.substr(slash + 1);
  if (!absl::ConsumePrefix(&rest, "items")) {
    return Action::kNone;
  }
  if (rest.empty()) {
    if (method == "GET") return Action::kListItems;
    if (method == "POST") return Action::kAddItems;
    return Action::kNone;
  }
  if (!absl::ConsumePrefix(&rest, "/") || rest.empty() || absl::StrContains(rest, '/')) {
    return Action::kNone;
  }
  item_id = rest;
  if (method == "GET") return Action::kRetrieveItem;
  if (method == "DELETE") return Action::kDeleteItem;
  return Action::kNone;
}

}  // namespace

void ConversationsHandler::Handle(const Route& route, ApiAnswer& answer) {
  if (!answer.Authorize("")) {
    return;
  }
  // /openai/v1 is unversioned: a dated api-version is refused.
  if (IsDatedApiVersion(route.api_version)) {
    answer.Fail(400, "", "BadRequest", "API version not supported");
    return;
  }
  absl::string_view id;
  absl::string_view item_id;
  const Action action = MatchAction(answer.request().method, route.conversations_path, id, item_id);
  if (action == Action::kNone) {
    answer.Fail(404, "", "404", "Resource not found");
    return;
  }
  answer.trace().conversation_id = id;
  // Before any lookup: an outage answers whatever the id.
  absl::string_view fault;
  if (answer.TakeFault(kOperations[static_cast<int>(action)], route.api_version, fault)) {
    return;
  }
  switch (action) {
    case Action::kCreate:
      Create(answer, fault);
      return;
    case Action::kRetrieve:
      Retrieve(id, answer, fault);
      return;
    case Action::kUpdate:
      Update(id, answer, fault);
      return;
    case Action::kDelete:
      Delete(id, answer, fault);
      return;
    case Action::kListItems:
      ListItems(route, id, answer, fault);
      return;
    case Action::kAddItems:
      AddItems(id, answer, fault);
      return;
    case Action::kRetrieveItem:
      RetrieveItem(id, item_id, answer, fault);
      return;
    case Action::kDeleteItem:
      DeleteItem(id, item_id, answer, fault);
      return;
    case Action::kNone:
      return;
  }
}

void ConversationsHandler::Create(ApiAnswer& answer, absl::string_view fault) {
  ConversationCreateRequest request;
  if (std::optional<OpenAiError> error = ParseConversationCreate(answer.request().body, request)) {
    Fail(answer, *error);
    return;
  }
  ConversationInfo info;
  info.id = NewConversationId();
  info.created_at = absl::ToUnixSeconds(answer.arrival());
  info.metadata = std::move(request.metadata);
  const std::string body = ConversationObject(info);
  const std::string id = info.id;  // the trace's view must outlive the record below
  answer.trace().conversation_id = id;
  state_.conversations().Create(std::move(info), ToConversationItems(request.items));
  Succeed(answer, body, fault);
}

void ConversationsHandler::Retrieve(absl::string_view id, ApiAnswer& answer,
                                    absl::string_view fault) {
  const std::optional<ConversationInfo> info = state_.conversations().Get(id);
  if (!info.has_value()) {
    Fail(answer, ConversationNotFound(id));
    return;
  }
  Succeed(answer, ConversationObject(*info), fault);
}

void ConversationsHandler::Update(absl::string_view id, ApiAnswer& answer,
                                  absl::string_view fault) {
  json::object metadata;
  if (std::optional<OpenAiError> error = ParseConversationUpdate(answer.request().body, metadata)) {
    Fail(answer, *error);
    return;
  }
  const std::optional<ConversationInfo> info =
      state_.conversations().UpdateMetadata(id, std::move(metadata));
  if (!info.has_value()) {
    Fail(answer, ConversationNotFound(id));
    return;
  }
  Succeed(answer, ConversationObject(*info), fault);
}

void ConversationsHandler::Delete(absl::string_view id, ApiAnswer& answer,
                                  absl::string_view fault) {
  if (!state_.conversations().Delete(id)) {
    Fail(answer, ConversationNotFound(id));
    return;
  }
  Succeed(answer, DeletedConversation(id), fault);
}

void ConversationsHandler::ListItems(const Route& route, absl::string_view id, ApiAnswer& answer,
                                     absl::string_view fault) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route.query, list)) {
    Fail(answer, *error);
    return;
  }
  const std::optional<json::array> items = state_.conversations().Items(id);
  if (!items.has_value()) {
    Fail(answer, ConversationNotFound(id));
    return;
  }
  Succeed(answer, InputItemsPage(*items, list.ascending, list.limit, list.after), fault);
}

void ConversationsHandler::AddItems(absl::string_view id, ApiAnswer& answer,
                                    absl::string_view fault) {
  InputItems items;
  if (std::optional<OpenAiError> error = ParseConversationItems(answer.request().body, items)) {
    Fail(answer, *error);
    return;
  }
  // The answer lists what was added, in the order given.
  const int64_t count = static_cast<int64_t>(items.items.size());
  const std::string body = InputItemsPage(items.items, /*ascending=*/true, count, "");
  if (!state_.conversations().Append(id, ToConversationItems(items))) {
    Fail(answer, ConversationNotFound(id));
    return;
  }
  Succeed(answer, body, fault);
}

void ConversationsHandler::RetrieveItem(absl::string_view id, absl::string_view item_id,
                                        ApiAnswer& answer, absl::string_view fault) {
  json::object item;
  switch (state_.conversations().GetItem(id, item_id, &item)) {
    case ConversationsStore::Lookup::kNoConversation:
      Fail(answer, ConversationNotFound(id));
      return;
    case ConversationsStore::Lookup::kNoItem:
      Fail(answer, ItemNotFound(item_id));
      return;
    case ConversationsStore::Lookup::kFound:
      Succeed(answer, json::serialize(item), fault);
      return;
  }
}

void ConversationsHandler::DeleteItem(absl::string_view id, absl::string_view item_id,
                                      ApiAnswer& answer, absl::string_view fault) {
  ConversationInfo info;
  switch (state_.conversations().DeleteItem(id, item_id, &info)) {
    case ConversationsStore::Lookup::kNoConversation:
      Fail(answer, ConversationNotFound(id));
      return;
    case ConversationsStore::Lookup::kNoItem:
      Fail(answer, ItemNotFound(item_id));
      return;
    case ConversationsStore::Lookup::kFound:
      Succeed(answer, ConversationObject(info), fault);
      return;
  }
}

void ConversationsHandler::Fail(ApiAnswer& answer, const OpenAiError& error) {
  std::string& body = answer.scratch();
  body.clear();
  AppendOpenAiError(body, error);
  answer.Json(error.status, nullptr, body);
  answer.Record("", error.status, false);
}

void ConversationsHandler::Succeed(ApiAnswer& answer, absl::string_view body,
                                   absl::string_view fault) {
  answer.Json(200, nullptr, body);
  answer.Record("", 200, false, fault);
}

}  // namespace spillway::mock
