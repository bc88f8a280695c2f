// Finds the JSON key "usage" in response bytes: a search every relayed response and every SSE
// event pays for, whether or not the backend reported usage.
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

namespace spillway {

inline constexpr absl::string_view kUsageKey = "\"usage\"";

// Where the first "usage" key (its opening quote) is in `text`, or npos.
std::size_t FindUsageKey(absl::string_view text);

// As FindUsageKey, and sets *carriage_return when `text` holds a '\r' among the bytes looked at
// (all of them when it returns npos; never cleared). The SSE stripper needs to know whether a
// read has one, and the usage scanner's pass over every byte is where that costs nothing.
std::size_t FindUsageKeyNotingCr(absl::string_view text, bool* carriage_return);

// What one pass over a read found, so a second pass over the same bytes can be skipped: where
// the first "usage" key lying whole in it starts (npos: none), and whether it may hold a CR.
// The default promises nothing.
struct ReadScan {
  std::size_t first_key = 0;
  bool may_have_cr = true;
};

}  // namespace spillway
