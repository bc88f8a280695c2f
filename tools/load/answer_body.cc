// See answer_body.h.
#include "tools/load/answer_body.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace spillway::load {
namespace json = boost::json;
namespace {

std::optional<int64_t> Count(const json::object& object, absl::string_view key) {
  const json::value* v = object.if_contains({key.data(), key.size()});
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return std::nullopt;
}

Usage UsageOf(const json::object& object) {
  Usage usage;
  const json::value* v = object.if_contains("usage");
  if (v != nullptr && v->is_object()) {
    usage.prompt_tokens = Count(v->get_object(), "prompt_tokens");
    usage.completion_tokens = Count(v->get_object(), "completion_tokens");
  }
  return usage;
}

bool NonEmptyString(const json::object& object, json::string_view key) {
  const json::value* v = object.if_contains(key);
  return v != nullptr && v->is_string() && !v->get_string().empty();
}

// Whether a chunk carries output: a delta with content, a refusal, reasoning or tool calls
// (chat), or text (completions). Azure's first chunk (prompt filter results, no choices) and a
// role-only delta do not.
bool CarriesToken(const json::object& chunk) {
  const json::value* choices = chunk.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return false;
  for (const json::value& choice : choices->get_array()) {
    const json::object* c = choice.if_object();
    if (c == nullptr) continue;
    if (NonEmptyString(*c, "text")) return true;
    const json::value* delta = c->if_contains("delta");
    if (delta == nullptr || !delta->is_object()) continue;
    const json::object& d = delta->get_object();
    if (NonEmptyString(d, "content") || NonEmptyString(d, "refusal") ||
        NonEmptyString(d, "reasoning_content")) {
      return true;
    }
    const json::value* tools = d.if_contains("tool_calls");
    if (tools != nullptr && tools->is_array() && !tools->get_array().empty()) return true;
  }
  return false;
}

}  // namespace

Usage ParseCompletionUsage(absl::string_view text) {
  boost::system::error_code ec;
  const json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !value.is_object()) {
    return {};
  }
  return UsageOf(value.get_object());
}

bool SseTiming::Feed(absl::string_view bytes, Clock::time_point at) {
  while (!bytes.empty() && !oversized_) {
    const size_t end = bytes.find('\n');
    if (end == absl::string_view::npos) {
      line_.append(bytes.data(), bytes.size());
      oversized_ = line_.size() > kMaxEventBytes;
      break;
    }
    if (line_.empty()) {
      Line(bytes.substr(0, end), at);  // the common case: the whole line is in this read
    } else {
      line_.append(bytes.data(), end);
      Line(line_, at);
      line_.clear();
    }
    bytes.remove_prefix(end + 1);
  }
  return !oversized_;
}

void SseTiming::Line(absl::string_view line, Clock::time_point at) {
  absl::ConsumeSuffix(&line, "\r");
  if (line.empty()) {
    Dispatch(at);
    return;
  }
  absl::string_view value = line;
  if (absl::ConsumePrefix(&value, "data:")) {
    absl::ConsumePrefix(&value, " ");
    if (!data_.empty()) data_ += '\n';
    data_.append(value.data(), value.size());
    oversized_ = data_.size() > kMaxEventBytes;
  } else if (absl::ConsumePrefix(&value, "event:")) {
    absl::ConsumePrefix(&value, " ");
    error_name_ = value == "error";
  }
  // Comments (":...") and id/retry fields say nothing about timing.
}

void SseTiming::Dispatch(Clock::time_point at) {
  if (error_name_) {
    error_event_ = true;
  }
  error_name_ = false;
  if (data_.empty()) {
    return;
  }
  if (data_ == "[DONE]") {
    done_ = true;
    data_.clear();
    return;
  }
  // A chunk is a few hundred bytes: parsed into stack memory, no allocation per event.
  unsigned char buffer[4096];
  json::monotonic_resource memory(buffer, sizeof(buffer));
  boost::system::error_code ec;
  const json::value value = json::parse(json::string_view(data_), ec, &memory);
  data_.clear();
  if (ec || !value.is_object()) {
    return;
  }
  const json::object& chunk = value.get_object();
  if (const json::value* error = chunk.if_contains("error");
      error != nullptr && !error->is_null()) {
    error_event_ = true;
  }
  if (const Usage usage = UsageOf(chunk); usage.completion_tokens || usage.prompt_tokens) {
    usage_ = usage;
  }
  if (CarriesToken(chunk)) {
    if (first_token_.has_value()) {
      on_gap_(std::chrono::duration_cast<std::chrono::microseconds>(at - last_token_));
    } else {
      first_token_ = at;
    }
    last_token_ = at;
    ++token_events_;
  }
}

}  // namespace spillway::load
