// See assistants_request.h. Texts follow OpenAI's validation messages; fields the mock does not
// act on are checked for their type only.
#include "tests/mock_aoai/assistants_request.h"

#include <boost/json/value.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/conversations_request.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

// The value of `key`, or null when absent or null.
const json::value* Given(const json::object& body, absl::string_view key) {
  const json::value* value = body.if_contains(Js(key));
  return value == nullptr || value->is_null() ? nullptr : value;
}

std::optional<OpenAiError> ReadString(const json::object& body, absl::string_view key,
                                      std::optional<std::string>& out) {
  const json::value* value = Given(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) return InvalidType(key, "a string", *value);
  out = std::string(value->get_string());
  return std::nullopt;
}

std::optional<OpenAiError> ReadNumber(const json::object& body, absl::string_view key,
                                      std::optional<double>& out) {
  const json::value* value = Given(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_number()) return InvalidType(key, "a number", *value);
  out = value->to_number<double>();
  return std::nullopt;
}

std::optional<OpenAiError> ReadPositive(const json::object& body, absl::string_view key,
                                        std::optional<int64_t>& out) {
  const json::value* value = Given(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_int64() || value->get_int64() < 1) {
    return InvalidType(key, "a positive integer", *value);
  }
  out = value->get_int64();
  return std::nullopt;
}

std::optional<OpenAiError> ReadArray(const json::object& body, absl::string_view key,
                                     std::optional<json::array>& out) {
  const json::value* value = Given(body, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_array()) return InvalidType(key, "an array", *value);
  out = value->get_array();
  return std::nullopt;
}

std::optional<OpenAiError> ReadObject(const json::object& body, absl::string_view key,
                                      std::optional<json::object>& out) {
  const json::value* value = body.if_contains(Js(key));
  if (value == nullptr) return std::nullopt;
  if (value->is_null()) {
    out = json::object();
    return std::nullopt;
  }
  if (!value->is_object()) return InvalidType(key, "an object", *value);
  out = value->get_object();
  return std::nullopt;
}

std::optional<OpenAiError> ReadMetadata(const json::object& body, json::object& metadata) {
  const json::value* value = body.if_contains("metadata");
  return value == nullptr ? std::nullopt : ParseMetadata(*value, metadata);
}

// One part of a message's content: {"type":"text","text":"..."} becomes the message object's
// {"type":"text","text":{"value":"...","annotations":[]}}; image parts are kept as given.
std::optional<OpenAiError> ReadPart(const json::value& part, const std::string& param,
                                    MessageInput& message) {
  const json::object* object = part.if_object();
  const json::value* type = object == nullptr ? nullptr : object->if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return MissingParameter(absl::StrCat(param, ".type"));
  }
  if (type->get_string() != "text") {
    message.content.push_back(part);
    return std::nullopt;
  }
  const json::value* text = object->if_contains("text");
  if (text == nullptr || !text->is_string()) {
    return InvalidType(absl::StrCat(param, ".text"), "a string",
                       text == nullptr ? json::value(nullptr) : *text);
  }
  message.text += text->get_string();
  message.content.push_back(json::object{
      {"type", "text"}, {"text", {{"value", text->get_string()}, {"annotations", json::array()}}}});
  return std::nullopt;
}

// A message object as given; `param` names it in errors ("messages[0]").
std::optional<OpenAiError> ReadMessage(const json::value& given, absl::string_view param,
                                       MessageInput& message) {
  const json::object* body = given.if_object();
  if (body == nullptr) return InvalidType(param, "an object", given);
  const std::string prefix = param.empty() ? "" : absl::StrCat(param, ".");
  const json::value* role = Given(*body, "role");
  if (role == nullptr) return MissingParameter(absl::StrCat(prefix, "role"));
  if (!role->is_string() || (role->get_string() != "user" && role->get_string() != "assistant")) {
    OpenAiError error = InvalidType(absl::StrCat(prefix, "role"), "'user' or 'assistant'", *role);
    if (role->is_string()) {
      error.message = absl::StrCat("Invalid value: '", std::string(role->get_string()),
                                   "'. Supported values are: 'user' and 'assistant'.");
      error.code = "invalid_value";
    }
    return error;
  }
  message.role = std::string(role->get_string());
  const json::value* content = Given(*body, "content");
  if (content == nullptr) return MissingParameter(absl::StrCat(prefix, "content"));
  if (content->is_string()) {
    if (auto error = ReadPart(json::object{{"type", "text"}, {"text", *content}}, "", message)) {
      return error;
    }
  } else if (const json::array* parts = content->if_array()) {
    for (size_t i = 0; i < parts->size(); ++i) {
      if (auto error = ReadPart((*parts)[i], absl::StrCat(prefix, "content[", i, "]"), message)) {
        return error;
      }
    }
  } else {
    return InvalidType(absl::StrCat(prefix, "content"), "a string or an array", *content);
  }
  std::optional<json::array> attachments;
  if (auto error = ReadArray(*body, "attachments", attachments)) return error;
  message.attachments = attachments.value_or(json::array());
  return ReadMetadata(*body, message.metadata);
}

std::optional<OpenAiError> ReadMessages(const json::object& body, absl::string_view key,
                                        std::vector<MessageInput>& messages) {
  std::optional<json::array> given;
  if (auto error = ReadArray(body, key, given)) return error;
  if (!given.has_value()) return std::nullopt;
  for (size_t i = 0; i < given->size(); ++i) {
    MessageInput message;
    if (auto error = ReadMessage((*given)[i], absl::StrCat(key, "[", i, "]"), message)) {
      return error;
    }
    messages.push_back(std::move(message));
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadThread(const json::object& body, ThreadInput& thread) {
  if (auto error = ReadMessages(body, "messages", thread.messages)) return error;
  if (auto error = ReadMetadata(body, thread.metadata)) return error;
  std::optional<json::object> tool_resources;
  if (auto error = ReadObject(body, "tool_resources", tool_resources)) return error;
  thread.tool_resources = tool_resources.value_or(json::object());
  return std::nullopt;
}

}  // namespace

OpenAiError NoObjectFound(absl::string_view kind, absl::string_view id) {
  OpenAiError error;
  error.status = 404;
  error.message = absl::StrCat("No ", kind, " found with id '", id, "'.");
  return error;
}

OpenAiError ModelNotFound(absl::string_view model) {
  OpenAiError error;
  error.message = absl::StrCat("The requested model '", model, "' does not exist.");
  error.param = "model";
  error.code = "model_not_found";
  return error;
}

std::optional<OpenAiError> ParseAssistantFields(absl::string_view body, bool create,
                                                json::object& fields) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/!create, parsed)) return error;
  const json::object& object = parsed.get_object();
  fields = json::object();
  std::optional<std::string> model;
  if (auto error = ReadString(object, "model", model)) return error;
  if (model.has_value()) {
    fields["model"] = Js(*model);
  } else if (create) {
    return MissingParameter("model");
  }
  // Nullable strings stay null when given so.
  for (const absl::string_view key : {"name", "description", "instructions"}) {
    std::optional<std::string> text;
    if (auto error = ReadString(object, key, text)) return error;
    if (text.has_value()) {
      fields[Js(key)] = Js(*text);
    } else if (object.contains(Js(key))) {
      fields[Js(key)] = nullptr;
    }
  }
  std::optional<json::array> tools;
  if (auto error = ReadArray(object, "tools", tools)) return error;
  if (tools.has_value()) fields["tools"] = *std::move(tools);
  std::optional<json::object> tool_resources;
  if (auto error = ReadObject(object, "tool_resources", tool_resources)) return error;
  if (tool_resources.has_value()) fields["tool_resources"] = *std::move(tool_resources);
  if (object.contains("metadata")) {
    json::object metadata;
    if (auto error = ReadMetadata(object, metadata)) return error;
    fields["metadata"] = std::move(metadata);
  }
  for (const absl::string_view key : {"temperature", "top_p"}) {
    std::optional<double> number;
    if (auto error = ReadNumber(object, key, number)) return error;
    if (number.has_value()) fields[Js(key)] = *number;
  }
  if (const json::value* format = Given(object, "response_format")) {
    if (!format->is_string() && !format->is_object()) {
      return InvalidType("response_format", "'auto' or an object", *format);
    }
    fields["response_format"] = *format;
  }
  return std::nullopt;
}

std::optional<OpenAiError> ParseMessageCreate(absl::string_view body, MessageInput& message) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  message = MessageInput{};
  return ReadMessage(parsed, "", message);
}

std::optional<OpenAiError> ParseThreadCreate(absl::string_view body, ThreadInput& thread) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  thread = ThreadInput{};
  return ReadThread(parsed.get_object(), thread);
}

std::optional<OpenAiError> ParseModify(absl::string_view body, ModifyInput& modify) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  const json::object& object = parsed.get_object();
  modify = ModifyInput{};
  if (object.contains("metadata")) {
    modify.metadata.emplace();
    if (auto error = ReadMetadata(object, *modify.metadata)) return error;
  }
  return ReadObject(object, "tool_resources", modify.tool_resources);
}

std::optional<OpenAiError> ParseRunCreate(absl::string_view body, bool with_thread, RunInput& run) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  const json::object& object = parsed.get_object();
  run = RunInput{};
  std::optional<std::string> assistant_id;
  if (auto error = ReadString(object, "assistant_id", assistant_id)) return error;
  if (!assistant_id.has_value()) return MissingParameter("assistant_id");
  run.assistant_id = *std::move(assistant_id);
  if (auto error = ReadString(object, "model", run.model)) return error;
  if (auto error = ReadString(object, "instructions", run.instructions)) return error;
  std::optional<std::string> additional;
  if (auto error = ReadString(object, "additional_instructions", additional)) return error;
  run.additional_instructions = additional.value_or("");
  if (auto error = ReadMessages(object, "additional_messages", run.additional_messages)) {
    return error;
  }
  if (auto error = ReadArray(object, "tools", run.tools)) return error;
  if (auto error = ReadMetadata(object, run.metadata)) return error;
  if (auto error = ReadPositive(object, "max_prompt_tokens", run.max_prompt_tokens)) return error;
  if (auto error = ReadPositive(object, "max_completion_tokens", run.max_completion_tokens)) {
    return error;
  }
  if (auto error = ReadNumber(object, "temperature", run.temperature)) return error;
  if (auto error = ReadNumber(object, "top_p", run.top_p)) return error;
  if (const json::value* stream = Given(object, "stream")) {
    if (!stream->is_bool()) return InvalidType("stream", "a boolean", *stream);
    run.stream = stream->get_bool();
  }
  if (!with_thread) {
    return std::nullopt;
  }
  run.thread.emplace();
  std::optional<json::object> thread;
  if (auto error = ReadObject(object, "thread", thread)) return error;
  return thread.has_value() ? ReadThread(*thread, *run.thread) : std::nullopt;
}

}  // namespace spillway::mock
