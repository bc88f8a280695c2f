// What a Conversations API request body asks for: create ({"items":[...],"metadata":{...}},
// both optional, the body too), update ({"metadata":{...}}) and add items ({"items":[...]}),
// validated as the service does (at most 20 items at a time; metadata of at most 16 string
// pairs, keys up to 64 characters, values up to 512).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <optional>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/input_items.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

inline constexpr size_t kMaxItemsPerRequest = 20;

struct ConversationCreateRequest {
  boost::json::object metadata;  // {} when absent or null
  InputItems items;
};

// 404 "Conversation with id '...' not found.", param and code null: what the service answers
// to an unknown id on every Conversations endpoint and to a Responses create's `conversation`
// (seen from api.openai.com).
OpenAiError ConversationNotFound(absl::string_view id);
// 404 "Item with id '...' not found." for an item its conversation does not hold.
OpenAiError ItemNotFound(absl::string_view item_id);

// The body as a JSON object (an empty one is {} when `empty_ok`); on failure, the 400 to answer.
// Shared with the Assistants API, which validates the same way.
std::optional<OpenAiError> ParseObjectBody(absl::string_view body, bool empty_ok,
                                           boost::json::value& out);
// A `metadata` value: an object of at most 16 string pairs, or null (= {}).
std::optional<OpenAiError> ParseMetadata(const boost::json::value& value,
                                         boost::json::object& metadata);

// On failure, the 400 to answer.
std::optional<OpenAiError> ParseConversationCreate(absl::string_view body,
                                                   ConversationCreateRequest& request);
// `metadata` is required; null clears it.
std::optional<OpenAiError> ParseConversationUpdate(absl::string_view body,
                                                   boost::json::object& metadata);
// `items` is required.
std::optional<OpenAiError> ParseConversationItems(absl::string_view body, InputItems& items);

}  // namespace spillway::mock
