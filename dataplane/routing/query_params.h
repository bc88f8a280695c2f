// Reading and rewriting a request target's query string, for the operations that name their
// route there (Realtime: `deployment=` on /openai/realtime, `model=` on /openai/v1/realtime and
// /openai/v1/realtime/calls) and for the client key a browser can only send there (`api-key=`).
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace spillway {

// The query parameter a client's key may arrive in (browsers cannot set WebSocket headers).
inline constexpr absl::string_view kApiKeyParam = "api-key";

// The value of the first `name` parameter of `target`'s query, percent-decoded ('+' is a
// space); nullopt when absent or when its encoding is broken (a stray '%').
std::optional<std::string> QueryParam(absl::string_view target, absl::string_view name);

// `target` for a backend: `route_param` set to `value` (percent-encoded where needed), the
// client's key parameter dropped, everything else kept byte for byte and in order.
std::string RewriteRouteParam(absl::string_view target, absl::string_view route_param,
                              absl::string_view value);

// `target` as it may be quoted in an error message or a log line: the value of any key
// parameter replaced by "***".
std::string RedactKey(absl::string_view target);

}  // namespace spillway
