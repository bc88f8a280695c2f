// Exact token counts for streams: a streaming chat completion that did not ask for
// stream_options.include_usage gets it added on the way to the backend, and the extra usage
// chunk is stripped again on the way back (sse_usage_stripper.h).
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "dataplane/routing/request_facts.h"

namespace spillway {

// Azure accepts stream_options from this api-version on; older ones answer 400 to it, so
// their streams are relayed untouched (and their usage stays unknown, as Azure reports none).
inline constexpr absl::string_view kFirstApiVersionWithStreamOptions = "2024-09-01";

// Whether the agent should ask the backend for usage the client did not ask for. `target`
// is the upstream path with its query ("/chat/completions?api-version=..." or
// "/openai/v1/chat/completions"). Only streaming chat completions qualify.
bool ShouldAddStreamUsage(const RequestFacts& facts, absl::string_view target);

// `body` (a JSON object, already parsed once by ReadRequestFacts) with
// stream_options.include_usage set to true; empty if it cannot be edited. Without an existing
// stream_options the client's bytes are kept and one member is appended; otherwise the body is
// edited with Boost.JSON.
std::string AddStreamUsage(absl::string_view body);

}  // namespace spillway
