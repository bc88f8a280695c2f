// See usage_scanner.h.
#include "dataplane/usage/usage_scanner.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <cstring>
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

std::size_t UsageScanner::ObjectAfter(absl::string_view bytes, std::size_t after) {
  const std::size_t value = bytes.find_first_not_of(" \t\r\n:", after);
  if (value == absl::string_view::npos) {
    return kLater;
  }
  return bytes[value] == '{' ? value : kNone;
}

static_assert(std::string_view(kUsageKey.data(), kUsageKey.size()).find('"', 1) ==
                  kUsageKey.size() - 1,
              "KeyBegunBefore: a carried part of the key holds its opening quote only");

std::size_t UsageScanner::KeyBegunBefore(absl::string_view bytes) const {
  // Only the last quote carried can begin a key this read completes: what is carried of the key
  // is shorter than it, so holds its opening quote only. (Events end in `"}\n\n`: a quote is
  // nearly always among the last bytes, so testing for one saved nothing.)
  std::size_t at = carry_size_;
  while (at > 0 && carry_[at - 1] != '"') {
    --at;
  }
  if (at == 0) {
    return kNone;
  }
  --at;
  const std::size_t before = carry_size_ - at;  // of the key, carried
  if (before + bytes.size() >= kUsageKey.size() &&
      absl::string_view(carry_ + at, before) == kUsageKey.substr(0, before) &&
      bytes.substr(0, kUsageKey.size() - before) == kUsageKey.substr(before)) {
    return at;
  }
  return kNone;
}

ReadScan UsageScanner::Feed(absl::string_view bytes) {
  ReadScan scan{absl::string_view::npos, false};
  if (bytes.empty()) {
    return scan;
  }
  std::size_t object = kNone;  // where in `bytes` the last usage object starts
  // A key's value, in the order the keys came: an object supersedes the one before it.
  auto value = [&](std::size_t found) {
    pending_ = found == kLater;
    if (found < bytes.size()) {
      object = found;
    }
  };
  if (pending_) {
    value(ObjectAfter(bytes, 0));
  }
  if (const std::size_t begun = KeyBegunBefore(bytes); begun != kNone) {
    value(ObjectAfter(bytes, kUsageKey.size() - (carry_size_ - begun)));
  }
  // Keys wholly in this read; the searches together look at every byte, for the CR too.
  scan.first_key = FindUsageKeyNotingCr(bytes, &scan.may_have_cr);
  for (std::size_t at = scan.first_key; at != absl::string_view::npos;) {
    value(ObjectAfter(bytes, at + kUsageKey.size()));
    const std::size_t next = FindUsageKeyNotingCr(bytes.substr(at + 1), &scan.may_have_cr);
    at = next == absl::string_view::npos ? next : at + 1 + next;
  }
  if (object < bytes.size()) {
    tail_.assign(bytes.data() + object, std::min(kTailBytes, bytes.size() - object));
  } else if (!tail_.empty()) {
    Extend(bytes);  // the last object may go on in this read
  }
  // The last bytes, for a key this read ends in the middle of.
  const std::size_t keep = std::min(sizeof(carry_), carry_size_ + bytes.size());
  const std::size_t from_bytes = std::min(keep, bytes.size());
  std::memmove(carry_, carry_ + carry_size_ - (keep - from_bytes), keep - from_bytes);
  std::memcpy(carry_ + (keep - from_bytes), bytes.data() + bytes.size() - from_bytes, from_bytes);
  carry_size_ = keep;
  return scan;
}

void UsageScanner::Extend(absl::string_view bytes) {
  tail_.append(bytes.data(), std::min(kTailBytes - tail_.size(), bytes.size()));
}

Usage UsageScanner::Finish() const {
  if (tail_.empty()) {
    return Usage{};
  }
  // The parser stops at the end of the object: whatever follows is not its business.
  Usage parsed;
  json::basic_parser<UsageHandler> parser(json::parse_options{}, &parsed);
  json::error_code ec;
  parser.write_some(false, tail_.data(), tail_.size(), ec);
  if (!ec && parser.done()) {
    parsed.reported = true;
    return parsed;
  }
  return Usage{};
}

}  // namespace spillway
