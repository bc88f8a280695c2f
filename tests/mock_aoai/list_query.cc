// See list_query.h.
#include "tests/mock_aoai/list_query.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace spillway::mock {
namespace {

constexpr int64_t kMaxListLimit = 100;

}  // namespace

std::optional<absl::string_view> QueryValue(absl::string_view query, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (absl::ConsumePrefix(&pair, name) && absl::ConsumePrefix(&pair, "=")) {
      return pair;
    }
  }
  return std::nullopt;
}

OpenAiError InvalidQuery(absl::string_view param, absl::string_view value,
                         absl::string_view expected) {
  OpenAiError error;
  error.message = absl::StrCat("Invalid '", param, "': '", value, "'. Expected ", expected, ".");
  error.param = std::string(param);
  error.code = "invalid_value";
  return error;
}

std::optional<OpenAiError> ParseListQuery(absl::string_view query, ListQuery& list) {
  list = ListQuery{};
  if (const std::optional<absl::string_view> given = QueryValue(query, "limit");
      given.has_value() &&
      (!absl::SimpleAtoi(*given, &list.limit) || list.limit < 1 || list.limit > kMaxListLimit)) {
    return InvalidQuery("limit", *given, "an integer between 1 and 100");
  }
  const absl::string_view order = QueryValue(query, "order").value_or("desc");
  if (order != "asc" && order != "desc") {
    return InvalidQuery("order", order, "one of 'asc' or 'desc'");
  }
  list.ascending = order == "asc";
  list.after = QueryValue(query, "after").value_or("");
  return std::nullopt;
}

}  // namespace spillway::mock
