// See usage_scanner.h.
#include "dataplane/usage/usage_scanner.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <string_view>

#include "dataplane/routing/json_sax.h"
#include "dataplane/usage/usage_key.h"

namespace spillway {
namespace {

namespace json = boost::json;

// Boost.JSON's SAX interface over the usage object: takes the four counts without building
// a DOM, which cost ~10k instructions per request (most of the scanner, callgrind).
class UsageHandler : public JsonSaxDefaults {
 public:
  explicit UsageHandler(Usage* usage) : usage_(usage) {}

  bool on_array_begin(json::error_code&) { return Enter(false); }
  bool on_array_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_object_begin(json::error_code&) { return Enter(next_is_details_); }
  bool on_object_end(std::size_t, json::error_code&) { return Leave(); }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return Value(); }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    key_.append(part.data(), part.size());
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    // A key that arrived whole is compared where it lies; only a key split across buffers is
    // assembled. std::string_view compares sizes first (std::string == "literal" measures the
    // literal and compares bytes for every name): ~300 instructions per request (callgrind).
    std::string_view key(part.data(), part.size());
    if (!key_.empty()) {
      key_.append(part.data(), part.size());
      key = key_;
    }
    target_ = nullptr;
    // The Responses API names the same counts input/output tokens.
    next_is_details_ =
        depth_ == 1 && (key == "prompt_tokens_details" || key == "input_tokens_details");
    if (depth_ == 1) {
      if (key == "prompt_tokens" || key == "input_tokens") {
        target_ = &usage_->prompt_tokens;
      } else if (key == "completion_tokens" || key == "output_tokens") {
        target_ = &usage_->completion_tokens;
      } else if (key == "total_tokens") {
        target_ = &usage_->total_tokens;
      }
    } else if (depth_ == 2 && in_details_ && key == "cached_tokens") {
      target_ = &usage_->cached_tokens;
    }
    key_.clear();
    return true;
  }
  bool on_int64(int64_t value, json::string_view, json::error_code&) { return Set(value); }
  bool on_uint64(uint64_t value, json::string_view, json::error_code&) {
    return Set(static_cast<int64_t>(std::min<uint64_t>(value, INT64_MAX)));
  }
  bool on_double(double, json::string_view, json::error_code&) { return Value(); }
  bool on_bool(bool, json::error_code&) { return Value(); }
  bool on_null(json::error_code&) { return Value(); }

 private:
  bool Enter(bool details) {
    ++depth_;
    if (depth_ == 2) {
      in_details_ = details;
    }
    next_is_details_ = false;
    target_ = nullptr;
    return true;
  }
  bool Leave() {
    if (depth_ == 2) {
      in_details_ = false;
    }
    --depth_;
    return true;
  }
  bool Set(int64_t value) {
    if (target_ != nullptr) {
      *target_ = value;
    }
    return Value();
  }
  bool Value() {
    target_ = nullptr;
    next_is_details_ = false;
    return true;
  }

  Usage* usage_;
  int depth_ = 0;
  bool in_details_ = false;       // inside usage.prompt_tokens_details (input_tokens_details)
  bool next_is_details_ = false;  // the value about to open is prompt_tokens_details
  int64_t* target_ = nullptr;     // where the next number goes
  std::string key_;               // short keys: stays in the small-string buffer
};

}  // namespace

void UsageScanner::Feed(absl::string_view bytes) {
  if (bytes.size() >= kTailBytes) {
    tail_.assign(bytes.data() + bytes.size() - kTailBytes, kTailBytes);
    return;
  }
  if (tail_.size() + bytes.size() > kTailBytes) {
    tail_.erase(0, tail_.size() + bytes.size() - kTailBytes);
  }
  if (tail_.size() + bytes.size() > tail_.capacity()) {
    // Exactly the tail's size at most: a doubling string would hold up to twice that for the
    // life of every long stream.
    tail_.reserve(
        std::min(kTailBytes, std::max(tail_.size() + bytes.size(), 2 * tail_.capacity())));
  }
  tail_.append(bytes.data(), bytes.size());
}

Usage UsageScanner::Finish() const {
  // Backwards from the end: usage comes last.
  std::size_t end = tail_.size();
  for (;;) {
    const std::size_t at = FindLastUsageKey(tail_, end);
    if (at == std::string::npos) {
      break;
    }
    end = at;
    // The value must be an object: "usage": null (stream chunks before the last) is skipped.
    const std::size_t open = tail_.find_first_not_of(" \t\r\n:", at + kUsageKey.size());
    if (open == std::string::npos || tail_[open] != '{') {
      continue;
    }
    // The parser stops at the end of the object: whatever follows is not its business.
    Usage parsed;
    json::basic_parser<UsageHandler> parser(json::parse_options{}, &parsed);
    json::error_code ec;
    parser.write_some(false, tail_.data() + open, tail_.size() - open, ec);
    if (!ec && parser.done()) {
      parsed.reported = true;
      return parsed;
    }
  }
  return Usage{};
}

}  // namespace spillway
