// What a Responses API create request (POST /openai/v1/responses) asks for: the body's fields
// that shape the answer, its input items as input_items will list them, and its prompt size.
#pragma once

#include <boost/json/array.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

struct ResponsesRequest {
  std::string model;  // empty when absent
  std::optional<std::string> instructions;
  std::optional<std::string> previous_response_id;
  // `conversation`, given as "conv_..." or {"id":"conv_..."}; never with previous_response_id.
  std::optional<std::string> conversation_id;
  std::optional<int64_t> max_output_tokens;
  bool store = true;
  bool stream = false;
  bool background = false;
  // This turn's own prompt: instructions and input (earlier turns are the handler's to add).
  int64_t input_tokens = 1;
  uint64_t input_hash = 0;
  // Messages as {"id","type":"message","status","role","content":[parts]} (a string input
  // is one user message; string contents become one input_text part); other items as given.
  // Every item has an id (input_items.h).
  boost::json::array input_items;
  std::vector<std::string> input_texts;  // input_texts[i]: what input_items[i] adds to the prompt
};

// Parses a create body into `request`; on failure, the 400 to answer.
std::optional<OpenAiError> ParseResponsesRequest(absl::string_view body, ResponsesRequest& request);

}  // namespace spillway::mock
