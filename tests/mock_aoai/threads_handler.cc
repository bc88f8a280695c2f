// See threads_handler.h. A thread is a conversation of ConversationsStore whose items are its
// messages, so the bounds and the history a run counts are the conversations' own.
#include "tests/mock_aoai/threads_handler.h"

#include <boost/json/serialize.hpp>
#include <string>
#include <utility>

#include "absl/time/time.h"
#include "tests/mock_aoai/assistants_store.h"
#include "tests/mock_aoai/assistants_wire.h"
#include "tests/mock_aoai/list_query.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

// The 404 for a lookup of `message_id` in `thread_id` that found nothing.
OpenAiError Missing(ConversationsStore::Lookup lookup, absl::string_view thread_id,
                    absl::string_view message_id) {
  return lookup == ConversationsStore::Lookup::kNoConversation
             ? NoObjectFound("thread", thread_id)
             : NoObjectFound("message", message_id);
}

// The text of a message object's text parts.
std::string MessageText(const json::object& message) {
  std::string text;
  for (const json::value& part : message.at("content").as_array()) {
    const json::object& object = part.as_object();
    if (object.at("type") == "text") {
      text += object.at("text").at("value").as_string();
    }
  }
  return text;
}

}  // namespace

std::vector<ConversationItem> MessageItems(const std::vector<MessageInput>& messages,
                                           absl::string_view thread_id, int64_t created_at) {
  std::vector<ConversationItem> items;
  items.reserve(messages.size());
  for (const MessageInput& message : messages) {
    items.push_back(MakeConversationItem(
        MessageObject(message, NewObjectId("msg_"), thread_id, created_at), message.text));
  }
  return items;
}

void ThreadsHandler::Handle(const Route& route, const AssistantsCall& call, ApiAnswer& answer,
                            absl::string_view fault) {
  ThreadsStore& threads = state_.threads();
  switch (call.action) {
    case AssistantsAction::kCreateThread:
      return CreateThread(answer, fault);
    case AssistantsAction::kGetThread: {
      const std::optional<ThreadInfo> thread = threads.Get(call.id);
      if (!thread.has_value()) return FailOpenAi(answer, NoObjectFound("thread", call.id));
      return SucceedJson(answer, json::serialize(ThreadObject(*thread)), fault);
    }
    case AssistantsAction::kModifyThread:
      return ModifyThread(call.id, answer, fault);
    case AssistantsAction::kDeleteThread:
      if (!threads.Delete(call.id)) return FailOpenAi(answer, NoObjectFound("thread", call.id));
      return SucceedJson(answer, DeletedAssistantsObject(call.id, "thread.deleted"), fault);
    case AssistantsAction::kCreateMessage:
      return CreateMessage(call.id, answer, fault);
    case AssistantsAction::kListMessages:
      return ListMessages(route, call.id, answer, fault);
    case AssistantsAction::kGetMessage: {
      json::object message;
      const ConversationsStore::Lookup found =
          threads.messages().GetItem(call.id, call.child, &message);
      if (found != ConversationsStore::Lookup::kFound) {
        return FailOpenAi(answer, Missing(found, call.id, call.child));
      }
      return SucceedJson(answer, json::serialize(message), fault);
    }
    case AssistantsAction::kModifyMessage:
      return ModifyMessage(call, answer, fault);
    case AssistantsAction::kDeleteMessage:
      return DeleteMessage(call, answer, fault);
    default:
      return;
  }
}

void ThreadsHandler::CreateThread(ApiAnswer& answer, absl::string_view fault) {
  ThreadInput input;
  if (std::optional<OpenAiError> error = ParseThreadCreate(answer.request().body, input)) {
    FailOpenAi(answer, *error);
    return;
  }
  ThreadInfo thread;
  thread.info.id = NewObjectId("thread_");
  thread.info.created_at = absl::ToUnixSeconds(answer.arrival());
  thread.info.metadata = std::move(input.metadata);
  thread.tool_resources = std::move(input.tool_resources);
  const std::string body = json::serialize(ThreadObject(thread));
  std::vector<ConversationItem> messages =
      MessageItems(input.messages, thread.info.id, thread.info.created_at);
  state_.threads().Create(std::move(thread), std::move(messages));
  SucceedJson(answer, body, fault);
}

void ThreadsHandler::ModifyThread(absl::string_view id, ApiAnswer& answer,
                                  absl::string_view fault) {
  ModifyInput modify;
  if (std::optional<OpenAiError> error = ParseModify(answer.request().body, modify)) {
    FailOpenAi(answer, *error);
    return;
  }
  const std::optional<ThreadInfo> thread =
      state_.threads().Update(id, std::move(modify.metadata), std::move(modify.tool_resources));
  if (!thread.has_value()) {
    FailOpenAi(answer, NoObjectFound("thread", id));
    return;
  }
  SucceedJson(answer, json::serialize(ThreadObject(*thread)), fault);
}

void ThreadsHandler::CreateMessage(absl::string_view thread_id, ApiAnswer& answer,
                                   absl::string_view fault) {
  MessageInput input;
  if (std::optional<OpenAiError> error = ParseMessageCreate(answer.request().body, input)) {
    FailOpenAi(answer, *error);
    return;
  }
  std::vector<ConversationItem> items =
      MessageItems({input}, thread_id, absl::ToUnixSeconds(answer.arrival()));
  const std::string body = json::serialize(items.front().item);
  if (!state_.threads().messages().Append(thread_id, std::move(items))) {
    FailOpenAi(answer, NoObjectFound("thread", thread_id));
    return;
  }
  SucceedJson(answer, body, fault);
}

void ThreadsHandler::ListMessages(const Route& route, absl::string_view thread_id,
                                  ApiAnswer& answer, absl::string_view fault) {
  ListQuery list;
  if (std::optional<OpenAiError> error = ParseListQuery(route.query, list)) {
    FailOpenAi(answer, *error);
    return;
  }
  std::optional<json::array> messages = state_.threads().messages().Items(thread_id);
  if (!messages.has_value()) {
    FailOpenAi(answer, NoObjectFound("thread", thread_id));
    return;
  }
  // ?run_id= keeps the messages that run made.
  if (const std::optional<absl::string_view> run_id = QueryValue(route.query, "run_id")) {
    json::array made;
    for (json::value& message : *messages) {
      if (message.as_object().at("run_id") ==
          json::value(json::string_view(run_id->data(), run_id->size()))) {
        made.push_back(std::move(message));
      }
    }
    *messages = std::move(made);
  }
  SucceedJson(answer, ObjectPage(*messages, list, QueryValue(route.query, "before").value_or("")),
              fault);
}

void ThreadsHandler::ModifyMessage(const AssistantsCall& call, ApiAnswer& answer,
                                   absl::string_view fault) {
  ModifyInput modify;
  if (std::optional<OpenAiError> error = ParseModify(answer.request().body, modify)) {
    FailOpenAi(answer, *error);
    return;
  }
  ConversationsStore& messages = state_.threads().messages();
  json::object message;
  ConversationsStore::Lookup found = messages.GetItem(call.id, call.child, &message);
  if (found == ConversationsStore::Lookup::kFound && modify.metadata.has_value()) {
    message["metadata"] = *std::move(modify.metadata);
    // Weighed by its text again, as when it was added (only the metadata changed).
    ConversationItem item = MakeConversationItem(message, MessageText(message));
    found = messages.ReplaceItem(call.id, call.child, std::move(item));
  }
  if (found != ConversationsStore::Lookup::kFound) {
    FailOpenAi(answer, Missing(found, call.id, call.child));
    return;
  }
  SucceedJson(answer, json::serialize(message), fault);
}

void ThreadsHandler::DeleteMessage(const AssistantsCall& call, ApiAnswer& answer,
                                   absl::string_view fault) {
  ConversationInfo unused;
  const ConversationsStore::Lookup found =
      state_.threads().messages().DeleteItem(call.id, call.child, &unused);
  if (found != ConversationsStore::Lookup::kFound) {
    FailOpenAi(answer, Missing(found, call.id, call.child));
    return;
  }
  SucceedJson(answer, DeletedAssistantsObject(call.child, "thread.message.deleted"), fault);
}

}  // namespace spillway::mock
