// See token_estimate.h.
#include "tests/mock_aoai/token_estimate.h"

#include <algorithm>

namespace spillway::mock {

int64_t EstimateTextTokens(absl::string_view text) {
  int64_t code_points = 0;
  for (const char c : text) {
    // Continuation bytes (10xxxxxx) do not start a code point.
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++code_points;
    }
  }
  return std::max<int64_t>(1, (code_points + 3) / 4);
}

int64_t EstimatePromptTokens(absl::Span<const absl::string_view> pieces) {
  int64_t total = 0;
  for (const absl::string_view piece : pieces) {
    total += EstimateTextTokens(piece);
  }
  return std::max<int64_t>(1, total);
}

}  // namespace spillway::mock
