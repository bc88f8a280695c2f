// See request_facts.h. Boost.JSON parses into a monotonic arena sized for typical bodies,
// so the parse allocates little; the walk only counts characters of text fields.
#include "dataplane/request_facts.h"

#include <algorithm>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/str_cat.h"

namespace spillway {
namespace {

namespace json = boost::json;

int64_t TextChars(const json::value& v, int64_t* messages) {
  if (v.is_string()) {
    return static_cast<int64_t>(v.get_string().size());
  }
  int64_t chars = 0;
  if (v.is_array()) {
    for (const json::value& item : v.get_array()) {
      chars += TextChars(item, messages);
    }
  } else if (v.is_object()) {
    const json::object& o = v.get_object();
    if (o.contains("role")) {
      ++*messages;
    }
    for (const char* key : {"content", "text", "name", "arguments"}) {
      if (const json::value* part = o.if_contains(key)) {
        chars += TextChars(*part, messages);
      }
    }
  }
  return chars;
}

int64_t IntField(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) {
    return 0;
  }
  if (v->is_int64()) {
    return v->get_int64();
  }
  if (v->is_uint64()) {
    return static_cast<int64_t>(std::min<uint64_t>(v->get_uint64(), INT64_MAX));
  }
  return 0;
}

}  // namespace

int64_t EstimateTokensFromChars(int64_t chars, int64_t messages) {
  return (chars + 3) / 4 + 4 * messages + (chars > 0 || messages > 0 ? 1 : 0);
}

absl::StatusOr<RequestFacts> ReadRequestFacts(absl::string_view body) {
  RequestFacts facts;
  if (body.empty()) {
    return facts;
  }
  unsigned char arena[4096];
  json::monotonic_resource resource(arena, sizeof(arena));
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(body.data(), body.size()), ec, &resource);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not valid JSON: ", ec.message()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError("request body must be a JSON object");
  }
  const json::object& o = root.get_object();
  if (const json::value* model = o.if_contains("model"); model != nullptr && model->is_string()) {
    facts.model = std::string(model->get_string());
  }
  if (const json::value* stream = o.if_contains("stream"); stream != nullptr) {
    facts.stream = stream->is_bool() && stream->get_bool();
  }
  if (const json::value* options = o.if_contains("stream_options");
      options != nullptr && options->is_object()) {
    const json::value* usage = options->get_object().if_contains("include_usage");
    facts.include_usage = usage != nullptr && usage->is_bool() && usage->get_bool();
  }
  if (const json::value* previous = o.if_contains("previous_response_id");
      previous != nullptr && previous->is_string()) {
    facts.previous_response_id = std::string(previous->get_string());
  }
  int64_t messages = 0;
  int64_t chars = 0;
  for (const char* key : {"messages", "prompt", "input", "instructions"}) {
    if (const json::value* text = o.if_contains(key)) {
      chars += TextChars(*text, &messages);
    }
  }
  facts.prompt_tokens_estimate = EstimateTokensFromChars(chars, messages);
  facts.max_output_tokens =
      std::max({IntField(o, "max_tokens"), IntField(o, "max_completion_tokens"),
                IntField(o, "max_output_tokens")});
  facts.choices = std::max<int64_t>({1, IntField(o, "n"), IntField(o, "best_of")});
  return facts;
}

absl::StatusOr<std::string> ReplaceModel(absl::string_view body, absl::string_view model) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !root.is_object()) {
    return absl::InvalidArgumentError("request body is not a JSON object");
  }
  root.get_object()["model"] = json::string_view(model.data(), model.size());
  return json::serialize(root);
}

}  // namespace spillway
