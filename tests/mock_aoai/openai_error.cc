// See openai_error.h. Texts follow the service's own wording.
#include "tests/mock_aoai/openai_error.h"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "absl/strings/str_cat.h"

namespace spillway::mock {
namespace {

namespace json = boost::json;

json::string_view Js(absl::string_view s) { return json::string_view(s.data(), s.size()); }

}  // namespace

void AppendOpenAiError(std::string& out, const OpenAiError& error) {
  json::object body;
  body["message"] = Js(error.message);
  body["type"] = Js(error.type);
  body["param"] = error.param.empty() ? json::value(nullptr) : json::value(Js(error.param));
  body["code"] = error.code.empty() ? json::value(nullptr) : json::value(Js(error.code));
  out += json::serialize(json::object{{"error", std::move(body)}});
}

absl::string_view JsonKindName(const json::value& value) {
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
                               JsonKindName(got), " instead.");
  error.param = std::string(param);
  error.code = "invalid_type";
  return error;
}

OpenAiError MissingParameter(absl::string_view param) {
  OpenAiError error;
  error.message = absl::StrCat("Missing required parameter: '", param, "'.");
  error.param = std::string(param);
  error.code = "missing_required_parameter";
  return error;
}

OpenAiError UnparsableBody() {
  OpenAiError error;
  error.message =
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
      "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
      "sent was not valid JSON.)";
  return error;
}

}  // namespace spillway::mock
