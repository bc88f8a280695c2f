// Input items as the Responses API's `input` and the Conversations API's `items` take them:
// messages (a string content becomes one input_text part, or output_text for the assistant)
// and other items (tool calls and outputs, references...) kept as given. Every item gets an id
// ("msg_<32 hex>" for messages, "item_<32 hex>" for others) unless it came with one, and the
// text it adds to the prompt, for token estimates.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

struct InputItems {
  // {"id","type":"message","status":"completed","role","content":[parts]}, or as given.
  boost::json::array items;
  std::vector<std::string> texts;  // texts[i]: what items[i] adds to the prompt
};

// Appends the items of `input` (an array of items, or, when `allow_string`, a string that is one
// user message) to `out`; on failure, the 400 to answer. `param` names `input` in errors
// ("input", "items").
std::optional<OpenAiError> ParseInputItems(const boost::json::value& input, absl::string_view param,
                                           bool allow_string, InputItems& out);

}  // namespace spillway::mock
