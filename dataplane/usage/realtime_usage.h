// A Realtime session's usage: the backend reports each response's tokens in its
// `response.done` event (response.usage: input_tokens, output_tokens, total_tokens,
// input_token_details.cached_tokens); a session's usage is their sum.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "dataplane/usage/usage_scanner.h"

namespace spillway {

class RealtimeUsage {
 public:
  // One text message from the backend. A `response.done` event with a usage object adds it
  // to the session's sums and returns it; any other message (or a malformed one) returns
  // nullopt and is otherwise ignored.
  std::optional<Usage> OnBackendMessage(absl::string_view text);

  // The sums so far (prompt = input tokens, completion = output tokens); `reported` once a
  // response.done carried usage.
  const Usage& total() const { return total_; }
  int64_t responses() const { return responses_; }

 private:
  Usage total_;
  int64_t responses_ = 0;
};

}  // namespace spillway
