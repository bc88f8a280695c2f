// Finds the JSON key "usage" in response bytes: a search every relayed response and every SSE
// event pays for, whether or not the backend reported usage.
#pragma once

#include <cstddef>

#include "absl/strings/string_view.h"

namespace spillway {

inline constexpr absl::string_view kUsageKey = "\"usage\"";

// Where the first "usage" key (its opening quote) is in `text`, or npos.
std::size_t FindUsageKey(absl::string_view text);

}  // namespace spillway
