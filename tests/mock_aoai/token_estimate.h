// Prompt-token estimation: the one rule spillway-mock-aoai uses both to charge a request up
// front and to report `usage.prompt_tokens`, so tests can predict both from the request text.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace spillway::mock {

// About 4 characters (UTF-8 code points) per token, rounded up, and at least 1: Azure counts
// a message as at least one token even when its text is empty.
int64_t EstimateTextTokens(absl::string_view text);

// The prompt of a request is a list of pieces (one per chat message, prompt string or
// embedding input); each piece is estimated on its own and the sum is at least 1.
int64_t EstimatePromptTokens(absl::Span<const absl::string_view> pieces);

}  // namespace spillway::mock
