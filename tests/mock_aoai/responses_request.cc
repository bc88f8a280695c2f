// See responses_request.h. Unlike the completion parser, this one keeps what it parsed (the
// input items outlive the request in the store), so it uses Boost.JSON's default memory.
// Error texts follow OpenAI's validation messages, which SDKs surface as they are.
#include "tests/mock_aoai/responses_request.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tests/mock_aoai/input_items.h"
#include "tests/mock_aoai/request.h"
#include "tests/mock_aoai/token_estimate.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

absl::string_view View(json::string_view s) { return absl::string_view(s.data(), s.size()); }

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

// `conversation`: the id itself or {"id": ...}; null counts as absent.
std::optional<OpenAiError> ReadConversation(const json::object& body,
                                            std::optional<std::string>& out) {
  const json::value* value = body.if_contains("conversation");
  if (value == nullptr || value->is_null()) {
    return std::nullopt;
  }
  if (value->is_string()) {
    out = std::string(View(value->get_string()));
    return std::nullopt;
  }
  if (!value->is_object()) {
    return InvalidType("conversation", "one of a string or an object", *value);
  }
  const json::value* id = value->get_object().if_contains("id");
  if (id == nullptr || id->is_null()) {
    return MissingParameter("conversation.id");
  }
  if (!id->is_string()) {
    return InvalidType("conversation.id", "a string", *id);
  }
  out = std::string(View(id->get_string()));
  return std::nullopt;
}

}  // namespace

std::optional<OpenAiError> ParseResponsesRequest(absl::string_view body,
                                                 ResponsesRequest& request) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !parsed.is_object()) {
    return UnparsableBody();
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
  if (auto error = ReadConversation(object, request.conversation_id)) return error;
  if (request.conversation_id.has_value() && request.previous_response_id.has_value()) {
    // The service's text, its shortening of 'previous_response_id' and its empty '' included
    // (seen from api.openai.com in October 2025).
    OpenAiError error;
    error.message =
        "Mutually exclusive parameters: ''. Ensure you are only providing one of: 'pre..._id' or "
        "'conversation'.";
    error.code = "mutually_exclusive_parameters";
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

  if (const json::value* input = object.if_contains("input"); input != nullptr) {
    InputItems items;
    if (auto error = ParseInputItems(*input, "input", /*allow_string=*/true, items)) return error;
    request.input_items = std::move(items.items);
    request.input_texts = std::move(items.texts);
  }
  std::vector<absl::string_view> views;
  views.reserve(request.input_texts.size() + 1);
  if (request.instructions.has_value()) {
    views.push_back(*request.instructions);
  }
  views.insert(views.end(), request.input_texts.begin(), request.input_texts.end());
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
