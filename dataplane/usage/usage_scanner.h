// Finds the backend-reported `usage` in a response as it streams past, without buffering
// the body: it keeps only the tail, where Azure puts usage (the end of a completion JSON,
// or the last SSE event before [DONE]).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

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
  // Usage is the last member of a completion and the last event of a stream, a few hundred
  // bytes (Azure puts it last); every open stream holds this much (10k streams: 20 MB).
  static constexpr std::size_t kTailBytes = 2048;

  void Feed(absl::string_view bytes);
  // Parses the last complete "usage" object seen in the tail.
  Usage Finish() const;

 private:
  std::string tail_;
};

}  // namespace spillway
