// What a Responses API create request (POST /openai/v1/responses) asks for: the body's fields
// that shape the answer, its input items as input_items will list them, and its prompt size.
#pragma once

#include <boost/json/array.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway::mock {

// An error in the OpenAI shape the Responses API answers with:
// {"error":{"message":...,"type":...,"param":...,"code":...}}, param and code null when empty.
struct OpenAiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};

struct ResponsesRequest {
  std::string model;  // empty when absent
  std::optional<std::string> instructions;
  std::optional<std::string> previous_response_id;
  std::optional<int64_t> max_output_tokens;
  bool store = true;
  bool stream = false;
  bool background = false;
  // This turn's own prompt: instructions and input (earlier turns are the handler's to add).
  int64_t input_tokens = 1;
  uint64_t input_hash = 0;
  // Messages as {"id","type":"message","status","role","content":[parts]} (a string input
  // is one user message; string contents become one input_text part); other items as given.
  // Every item has an id.
  boost::json::array input_items;
};

// Parses a create body into `request`; on failure, the 400 to answer.
std::optional<OpenAiError> ParseResponsesRequest(absl::string_view body, ResponsesRequest& request);

}  // namespace spillway::mock
