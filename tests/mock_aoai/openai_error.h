// Errors in the OpenAI shape that the Responses and Conversations APIs answer with (Azure passes
// them through): {"error":{"message":...,"type":...,"param":...,"code":...}}, and the
// validation messages both APIs share, which SDKs surface as they are.
#pragma once

#include <boost/json/value.hpp>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway::mock {

// param and code are written as null when empty.
struct OpenAiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};

// {"error":{"message":...,"type":...,"param":...,"code":...}}
void AppendOpenAiError(std::string& out, const OpenAiError& error);

// "a string", "an integer", "an object"...: how OpenAI names a JSON value's kind.
absl::string_view JsonKindName(const boost::json::value& value);

// "Invalid type for 'param': expected <expected>, but got <kind> instead." (invalid_type)
OpenAiError InvalidType(absl::string_view param, absl::string_view expected,
                        const boost::json::value& got);
// "Missing required parameter: 'param'." (missing_required_parameter)
OpenAiError MissingParameter(absl::string_view param);
// The body is not JSON (or not a JSON object).
OpenAiError UnparsableBody();

}  // namespace spillway::mock
