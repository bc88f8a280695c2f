// See realtime_usage.h. Most messages are audio and text deltas: a substring search skips
// them; only a message that may be a response.done (one per response) is parsed, into a DOM,
// since its usage may sit anywhere in a large object.
#include "dataplane/usage/realtime_usage.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace spillway {
namespace {

namespace json = boost::json;

int64_t Count(const json::object& object, json::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr) {
    return 0;
  }
  if (value->is_int64()) {
    return std::max<int64_t>(0, value->get_int64());
  }
  if (value->is_uint64()) {
    return static_cast<int64_t>(std::min<uint64_t>(value->get_uint64(), INT64_MAX));
  }
  return 0;
}

}  // namespace

std::optional<Usage> RealtimeUsage::OnBackendMessage(absl::string_view text) {
  if (text.find("\"response.done\"") == absl::string_view::npos) {
    return std::nullopt;
  }
  boost::system::error_code ec;
  const json::value event = json::parse(json::string_view(text.data(), text.size()), ec);
  const json::object* object = ec ? nullptr : event.if_object();
  if (object == nullptr) {
    return std::nullopt;
  }
  const json::value* type = object->if_contains("type");
  if (type == nullptr || !type->is_string() || type->get_string() != "response.done") {
    return std::nullopt;
  }
  const json::value* response = object->if_contains("response");
  const json::value* usage = response != nullptr && response->is_object()
                                 ? response->get_object().if_contains("usage")
                                 : nullptr;
  if (usage == nullptr || !usage->is_object()) {
    return std::nullopt;  // a response cancelled before it began may carry "usage": null
  }
  const json::object& counts = usage->get_object();
  Usage one;
  one.reported = true;
  one.prompt_tokens = Count(counts, "input_tokens");
  one.completion_tokens = Count(counts, "output_tokens");
  one.total_tokens = counts.contains("total_tokens") ? Count(counts, "total_tokens")
                                                     : one.prompt_tokens + one.completion_tokens;
  if (const json::value* details = counts.if_contains("input_token_details");
      details != nullptr && details->is_object()) {
    one.cached_tokens = Count(details->get_object(), "cached_tokens");
  }
  total_.reported = true;
  total_.prompt_tokens += one.prompt_tokens;
  total_.completion_tokens += one.completion_tokens;
  total_.total_tokens += one.total_tokens;
  total_.cached_tokens += one.cached_tokens;
  ++responses_;
  return one;
}

}  // namespace spillway
