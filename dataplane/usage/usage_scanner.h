// Finds the backend-reported `usage` in a response as it streams past, without buffering
// the body: it keeps only the last usage object (a "usage" key's object value), which Azure
// puts at the end of a completion JSON, or in the last SSE event before [DONE].
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/usage/usage_key.h"

namespace spillway {

struct Usage {
  bool reported = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t total_tokens = 0;
  int64_t cached_tokens = 0;
};

class UsageScanner {
 public:
  // The most kept from a "usage" key on: a usage object is a few hundred bytes, and every open
  // stream may hold this much once one came (10k streams: 20 MB).
  static constexpr std::size_t kTailBytes = 2048;

  // Returns where the first "usage" key lying whole in `bytes` starts and whether `bytes` hold
  // a CR: a stripper given the same bytes skips its own searches up to there.
  ReadScan Feed(absl::string_view bytes);
  // Parses the last usage object seen (a "usage" key's value; "usage": null does not count).
  Usage Finish() const;

 private:
  // Where the value after a key that ends at bytes[after] starts, if it is an object: kNone if
  // it is something else, kLater if `bytes` ends first.
  static constexpr std::size_t kNone = absl::string_view::npos;
  static constexpr std::size_t kLater = kNone - 1;
  static std::size_t ObjectAfter(absl::string_view bytes, std::size_t after);
  // Where in carry_ a key starts whose rest begins `bytes`, or kNone.
  std::size_t KeyBegunBefore(absl::string_view bytes) const;
  // Adds `bytes` to the kept ones, up to kTailBytes.
  void Extend(absl::string_view bytes);

  // From the '{' of the last usage object seen, at most kTailBytes; empty before one. Usage
  // comes last in every answer the agent relays, so nothing before it is needed (and a stream
  // without one keeps nothing: a 2 KB copy of every stream's end was kept before).
  std::string tail_;
  // A key was seen and its value has not come yet.
  bool pending_ = false;
  // The stream's last bytes, short of a key: a key cut in two by a read is found from them.
  char carry_[kUsageKey.size() - 1] = {};
  std::size_t carry_size_ = 0;
};

}  // namespace spillway
