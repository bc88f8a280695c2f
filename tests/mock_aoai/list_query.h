// The query of the stateful APIs' list endpoints (a response's input_items, a conversation's
// items): ?limit=1..100 (default 20), order=asc|desc (default desc), after=<item id>, validated
// with OpenAI's messages.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"
#include "tests/mock_aoai/openai_error.h"

namespace spillway::mock {

// The value of `name` in a query string (no percent-decoding: the mock's ids need none).
std::optional<absl::string_view> QueryValue(absl::string_view query, absl::string_view name);

// "Invalid 'param': 'value'. Expected <expected>." (invalid_value)
OpenAiError InvalidQuery(absl::string_view param, absl::string_view value,
                         absl::string_view expected);

struct ListQuery {
  int64_t limit = 20;
  bool ascending = false;
  absl::string_view after;  // a view into the query; empty: from the start
};

// On failure, the 400 to answer.
std::optional<OpenAiError> ParseListQuery(absl::string_view query, ListQuery& list);

}  // namespace spillway::mock
