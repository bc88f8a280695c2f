// See conversations_request.h. Texts follow OpenAI's validation messages (the metadata ones as
// the Responses API words them for its own `metadata`).
#include "tests/mock_aoai/conversations_request.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

constexpr size_t kMaxMetadataPairs = 16;
constexpr size_t kMaxMetadataKey = 64;
constexpr size_t kMaxMetadataValue = 512;

// "Invalid 'p': array too long. Expected an array with maximum length N, but got an array with
// length M instead.", and the same for strings.
OpenAiError TooLong(absl::string_view param, bool array, size_t max, size_t got) {
  const absl::string_view what = array ? "array" : "string";
  const absl::string_view a_what = array ? "an array" : "a string";
  OpenAiError error;
  error.message = absl::StrCat("Invalid '", param, "': ", what, " too long. Expected ", a_what,
                               " with maximum length ", max, ", but got ", a_what, " with length ",
                               got, " instead.");
  error.param = std::string(param);
  error.code = absl::StrCat(what, "_above_max_length");
  return error;
}

std::optional<OpenAiError> ReadItems(const json::value& value, InputItems& items) {
  if (const json::array* array = value.if_array();
      array != nullptr && array->size() > kMaxItemsPerRequest) {
    return TooLong("items", /*array=*/true, kMaxItemsPerRequest, array->size());
  }
  return ParseInputItems(value, "items", /*allow_string=*/false, items);
}

}  // namespace

std::optional<OpenAiError> ParseObjectBody(absl::string_view body, bool empty_ok,
                                           json::value& out) {
  if (empty_ok && absl::StripAsciiWhitespace(body).empty()) {
    out = json::object();
    return std::nullopt;
  }
  boost::system::error_code ec;
  out = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !out.is_object()) {
    return UnparsableBody();
  }
  return std::nullopt;
}

std::optional<OpenAiError> ParseMetadata(const json::value& value, json::object& metadata) {
  if (value.is_null()) {
    metadata = json::object();
    return std::nullopt;
  }
  const json::object* object = value.if_object();
  if (object == nullptr) {
    return InvalidType("metadata", "a metadata object", value);
  }
  if (object->size() > kMaxMetadataPairs) {
    OpenAiError error;
    error.message =
        absl::StrCat("Invalid 'metadata': too many properties. Expected an object with at most ",
                     kMaxMetadataPairs, " properties, but got an object with ", object->size(),
                     " properties instead.");
    error.param = "metadata";
    error.code = "object_above_max_properties";
    return error;
  }
  for (const json::key_value_pair& pair : *object) {
    const absl::string_view key(pair.key().data(), pair.key().size());
    const std::string param = absl::StrCat("metadata.", key);
    if (key.size() > kMaxMetadataKey) {
      OpenAiError error;
      error.message = absl::StrCat("Invalid 'metadata': key '", key.substr(0, kMaxMetadataKey),
                                   "...' is too long. Expected keys of at most ", kMaxMetadataKey,
                                   " characters.");
      error.param = "metadata";
      error.code = "invalid_value";
      return error;
    }
    if (!pair.value().is_string()) {
      return InvalidType(param, "a string", pair.value());
    }
    if (pair.value().get_string().size() > kMaxMetadataValue) {
      return TooLong(param, /*array=*/false, kMaxMetadataValue, pair.value().get_string().size());
    }
  }
  metadata = *object;
  return std::nullopt;
}

OpenAiError ConversationNotFound(absl::string_view id) {
  OpenAiError error;
  error.status = 404;
  error.message = absl::StrCat("Conversation with id '", id, "' not found.");
  return error;
}

OpenAiError ItemNotFound(absl::string_view item_id) {
  OpenAiError error;
  error.status = 404;
  error.message = absl::StrCat("Item with id '", item_id, "' not found.");
  return error;
}

std::optional<OpenAiError> ParseConversationCreate(absl::string_view body,
                                                   ConversationCreateRequest& request) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  const json::object& object = parsed.get_object();
  request = ConversationCreateRequest{};
  if (const json::value* items = object.if_contains("items");
      items != nullptr && !items->is_null()) {
    if (auto error = ReadItems(*items, request.items)) return error;
  }
  if (const json::value* metadata = object.if_contains("metadata"); metadata != nullptr) {
    if (auto error = ParseMetadata(*metadata, request.metadata)) return error;
  }
  return std::nullopt;
}

std::optional<OpenAiError> ParseConversationUpdate(absl::string_view body, json::object& metadata) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  const json::value* given = parsed.get_object().if_contains("metadata");
  if (given == nullptr) {
    return MissingParameter("metadata");
  }
  return ParseMetadata(*given, metadata);
}

std::optional<OpenAiError> ParseConversationItems(absl::string_view body, InputItems& items) {
  json::value parsed;
  if (auto error = ParseObjectBody(body, /*empty_ok=*/true, parsed)) return error;
  const json::value* given = parsed.get_object().if_contains("items");
  if (given == nullptr || given->is_null()) {
    return MissingParameter("items");
  }
  return ReadItems(*given, items);
}

}  // namespace spillway::mock
