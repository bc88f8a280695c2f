// See usage_scanner.h.
#include "dataplane/usage_scanner.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace spillway {
namespace {

int64_t Int(const boost::json::object& o, const char* key) {
  const boost::json::value* v = o.if_contains(key);
  return v != nullptr && v->is_int64() ? v->get_int64() : 0;
}

}  // namespace

void UsageScanner::Feed(absl::string_view bytes) {
  if (bytes.size() >= kTailBytes) {
    tail_.assign(bytes.data() + bytes.size() - kTailBytes, kTailBytes);
    return;
  }
  if (tail_.size() + bytes.size() > kTailBytes) {
    tail_.erase(0, tail_.size() + bytes.size() - kTailBytes);
  }
  tail_.append(bytes.data(), bytes.size());
}

Usage UsageScanner::Finish() const {
  Usage usage;
  constexpr absl::string_view kKey = "\"usage\"";
  std::size_t at = tail_.rfind(kKey.data(), std::string::npos, kKey.size());
  while (at != std::string::npos) {
    const std::size_t open = tail_.find('{', at + kKey.size());
    if (open == std::string::npos) {
      break;
    }
    // Match braces to find the object's end; strings inside usage hold no braces.
    int depth = 0;
    std::size_t close = open;
    for (; close < tail_.size(); ++close) {
      depth += tail_[close] == '{' ? 1 : tail_[close] == '}' ? -1 : 0;
      if (depth == 0) {
        break;
      }
    }
    if (close < tail_.size()) {
      boost::system::error_code ec;
      boost::json::value v =
          boost::json::parse(boost::json::string_view(tail_.data() + open, close - open + 1), ec);
      if (!ec && v.is_object()) {
        const boost::json::object& o = v.get_object();
        usage.reported = true;
        usage.prompt_tokens = Int(o, "prompt_tokens");
        usage.completion_tokens = Int(o, "completion_tokens");
        usage.total_tokens = Int(o, "total_tokens");
        if (const auto* details = o.if_contains("prompt_tokens_details");
            details != nullptr && details->is_object()) {
          usage.cached_tokens = Int(details->get_object(), "cached_tokens");
        }
        return usage;
      }
    }
    if (at == 0) {
      break;
    }
    at = tail_.rfind(kKey.data(), at - 1, kKey.size());  // "usage": null in an earlier chunk
  }
  return usage;
}

}  // namespace spillway
