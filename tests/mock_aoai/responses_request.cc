// See responses_request.h. Unlike the completion parser, this one keeps what it parsed (the
// input items outlive the request in the store), so it uses Boost.JSON's default memory.
// Error texts follow OpenAI's validation messages, which SDKs surface as they are.
#include "tests/mock_aoai/responses_request.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/http_reply.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::string_view View(json::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::string_view KindName(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a decimal";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

OpenAiError InvalidType(absl::string_view param, absl::string_view expected,
                        const json::value& got) {
  OpenAiError error;
  error.message = absl::StrCat("Invalid type for '", param, "': expected ", expected, ", but got ",
                               KindName(got), " instead.");
  error.param = std::string(param);
  error.code = "invalid_type";
  return error;
}

// An optional string field; null counts as absent.
std::optional<OpenAiError> ReadString(const json::object& body, absl::string_view key,
                                      std::optional<std::string>& out) {
  const json::value* value = body.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (!value->is_string()) {
    return InvalidType(key, "a string", *value);
  }
  out = std::string(View(value->get_string()));
  return std::nullopt;
}

std::optional<OpenAiError> ReadBool(const json::object& body, absl::string_view key, bool& out) {
  const json::value* value = body.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (!value->is_bool()) {
    return InvalidType(key, "a boolean", *value);
  }
  out = value->get_bool();
  return std::nullopt;
}

std::string NewId(absl::string_view prefix) {
  std::string id(prefix);
  AppendRandomHex(id, 32);
  return id;
}

// The text a part or item contributes to the prompt.
void CollectText(const json::value& content, std::vector<std::string>& pieces) {
  if (content.is_string()) {
    pieces.emplace_back(View(content.get_string()));
    return;
  }
  if (const json::array* parts = content.if_array()) {
    std::string text;
    for (const json::value& part : *parts) {
      if (const json::object* object = part.if_object()) {
        if (const json::value* t = object->if_contains("text"); t != nullptr && t->is_string()) {
          absl::StrAppend(&text, View(t->get_string()));
        }
      }
    }
    pieces.push_back(std::move(text));
  }
}

// A message item in the shape input_items lists: id, type, status, role, content parts.
json::object MessageItem(const json::object& given, absl::string_view role,
                         const json::value* content) {
  json::object item;
  const json::value* id = given.if_contains("id");
  item["id"] =
      id != nullptr && id->is_string() ? json::value(id->get_string()) : json::value(NewId("msg_"));
  item["type"] = "message";
  item["status"] = "completed";
  item["role"] = json::string_view(role.data(), role.size());
  if (content != nullptr && content->is_string()) {
    json::object part;
    part["type"] = role == "assistant" ? "output_text" : "input_text";
    part["text"] = content->get_string();
    if (role == "assistant") {
      part["annotations"] = json::array();
    }
    json::array parts;
    parts.emplace_back(std::move(part));
    item["content"] = std::move(parts);
  } else if (content != nullptr && content->is_array()) {
    item["content"] = content->get_array();
  } else {
    item["content"] = json::array();
  }
  return item;
}

std::optional<OpenAiError> ReadInput(const json::value& input, ResponsesRequest& request,
                                     std::vector<std::string>& pieces) {
  if (input.is_string()) {
    json::object given;
    request.input_items.push_back(MessageItem(given, "user", &input));
    pieces.emplace_back(View(input.get_string()));
    return std::nullopt;
  }
  if (!input.is_array()) {
    return InvalidType("input", "one of a string or array of input items", input);
  }
  const json::array& items = input.get_array();
  request.input_items.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const json::object* item = items[i].if_object();
    if (item == nullptr) {
      return InvalidType(absl::StrCat("input[", i, "]"), "an object", items[i]);
    }
    const json::value* type = item->if_contains("type");
    const json::value* role = item->if_contains("role");
    if (type != nullptr && !type->is_string()) {
      return InvalidType(absl::StrCat("input[", i, "].type"), "a string", *type);
    }
    const bool message = type == nullptr || type->get_string() == "message";
    if (message) {
      if (role == nullptr || !role->is_string()) {
        OpenAiError error;
        error.message = absl::StrCat("Missing required parameter: 'input[", i, "].role'.");
        error.param = absl::StrCat("input[", i, "].role");
        error.code = "missing_required_parameter";
        return error;
      }
      const json::value* content = item->if_contains("content");
      request.input_items.push_back(MessageItem(*item, View(role->get_string()), content));
      if (content != nullptr) {
        CollectText(*content, pieces);
      } else {
        pieces.emplace_back();
      }
      continue;
    }
    // Tool outputs, function calls, references...: kept as given, with an id.
    json::object copy = *item;
    if (!copy.contains("id")) {
      copy["id"] = NewId("item_");
    }
    if (const json::value* output = item->if_contains("output"); output != nullptr) {
      CollectText(*output, pieces);
    } else if (const json::value* arguments = item->if_contains("arguments");
               arguments != nullptr && arguments->is_string()) {
      pieces.emplace_back(View(arguments->get_string()));
    } else {
      pieces.push_back(json::serialize(*item));
    }
    request.input_items.push_back(std::move(copy));
  }
  return std::nullopt;
}

}  // namespace

std::optional<OpenAiError> ParseResponsesRequest(absl::string_view body,
                                                 ResponsesRequest& request) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !parsed.is_object()) {
    OpenAiError error;
    error.message =
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON.)";
    return error;
  }
  const json::object& object = parsed.get_object();
  request = ResponsesRequest{};

  std::optional<std::string> model;
  if (auto error = ReadString(object, "model", model)) return error;
  request.model = model.value_or("");
  if (auto error = ReadString(object, "instructions", request.instructions)) return error;
  if (auto error = ReadString(object, "previous_response_id", request.previous_response_id)) {
    return error;
  }
  if (request.previous_response_id.has_value() &&
      request.previous_response_id->compare(0, 4, "resp") != 0) {
    OpenAiError error;
    error.message = absl::StrCat("Invalid 'previous_response_id': '", *request.previous_response_id,
                                 "'. Expected an ID that begins with 'resp'.");
    error.param = "previous_response_id";
    error.code = "invalid_value";
    return error;
  }
  if (auto error = ReadBool(object, "store", request.store)) return error;
  if (auto error = ReadBool(object, "stream", request.stream)) return error;
  if (auto error = ReadBool(object, "background", request.background)) return error;
  if (const json::value* max = object.if_contains("max_output_tokens");
      max != nullptr && !max->is_null()) {
    if (!max->is_int64() && !(max->is_uint64() && max->get_uint64() < (1ull << 62))) {
      return InvalidType("max_output_tokens", "an integer", *max);
    }
    const int64_t value = max->to_number<int64_t>();
    if (value < 1) {
      OpenAiError error;
      error.message = absl::StrCat(
          "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 1, "
          "but got ",
          value, " instead.");
      error.param = "max_output_tokens";
      error.code = "integer_below_min_value";
      return error;
    }
    request.max_output_tokens = value;
  }

  std::vector<std::string> pieces;
  if (request.instructions.has_value()) {
    pieces.push_back(*request.instructions);
  }
  if (const json::value* input = object.if_contains("input"); input != nullptr) {
    if (auto error = ReadInput(*input, request, pieces)) return error;
  }
  std::vector<absl::string_view> views(pieces.begin(), pieces.end());
  request.input_tokens = EstimatePromptTokens(views);
  uint64_t hash = kFnvOffset;
  for (const absl::string_view piece : views) {
    hash = Fnv1a(hash, piece);
    hash = Fnv1a(hash, "\x1e");  // as the completion parser: ["ab"] and ["a","b"] differ
  }
  request.input_hash = hash;
  return std::nullopt;
}

}  // namespace spillway::mock
